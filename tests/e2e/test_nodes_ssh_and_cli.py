"""SSH to every node bai reports, and the `bai` CLI end to end."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncssh
import pytest

from tests.e2e.service import Api, Service, bai, bai_ok, counts

pytestmark = pytest.mark.slurm


def _forget_key(user: str, public: str) -> None:
    keys = Path(f"/home/{user}/.ssh/authorized_keys")
    if keys.exists():
        keys.write_text("".join(k + "\n" for k in keys.read_text().splitlines() if k != public))


async def test_every_reported_node_answers_ssh_as_itself(admin: Api, workspace: str) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519", comment="bai-e2e")
    public = key.export_public_key().decode().strip()
    try:
        admin.cluster(
            workspace,
            "ssh",
            {
                "vmSize": "t4x1",
                "vmPriority": "lowpriority",
                "scaleSettings": {"manual": {"targetNodeCount": 2}},
                "userAccountSettings": {"adminUserName": "alice", "adminUserSshPublicKey": public},
            },
        )
        admin.wait_cluster(workspace, "ssh", lambda p: counts(p)["idle"] == 2)

        logins = admin.call(
            "POST",
            admin.path("workspaces", workspace, "clusters", "ssh", "listRemoteLoginInformation"),
        ).json()["value"]

        assert sorted(n["nodeId"] for n in logins) == ["gpu-t4-1", "gpu-t4-2"]
        ports = {n["ssh_port"] for n in json.loads(Path("/etc/bai/nodes.json").read_text())}
        for login in logins:
            assert login["port"] in ports
            async with asyncssh.connect(
                login["ipAddress"],
                port=login["port"],
                username="alice",
                client_keys=[key],
                known_hosts=None,
            ) as conn:
                result = await conn.run("echo $BAI_NODE_NAME; id -un", check=True)
            assert str(result.stdout).split() == [login["nodeId"], "alice"]
    finally:
        _forget_key("alice", public)


def test_cli_cluster_lifecycle(service: Service, admin: Api) -> None:
    token = service.token("alice")

    ok = functools.partial(bai_ok, service, token, admin.rg)

    ok("workspace", "create", "-n", "cliws")
    created = ok(
        "cluster",
        "create",
        "-n",
        "c",
        "-w",
        "cliws",
        "-s",
        "t4x1",
        "--vm-priority",
        "lowpriority",
        "-t",
        "1",
        "-u",
        "alice",
        "-o",
        "json",
    )
    assert created["properties"]["userAccountSettings"]["adminUserName"] == "alice"
    assert created["properties"]["currentNodeCount"] == 1
    table = ok("cluster", "list", "-w", "cliws")
    assert "lowpriority" in table and "steady" in table and " c " in table

    resized = ok("cluster", "resize", "-n", "c", "-w", "cliws", "-t", "2", "-o", "json")
    assert resized["properties"]["scaleSettings"]["manual"]["targetNodeCount"] == 2
    nodes = ok("cluster", "node", "list", "-c", "c", "-w", "cliws", "-o", "json")
    assert [n["nodeId"] for n in nodes] == ["gpu-t4-1", "gpu-t4-2"]
    assert {n["ipAddress"] for n in nodes} == {"127.0.1.11", "127.0.1.12"}
    auto = ok(
        "cluster", "auto-scale", "-n", "c", "-w", "cliws", "--min", "0", "--max", "1", "-o", "json"
    )
    assert auto["properties"]["scaleSettings"]["autoScale"]["maximumNodeCount"] == 1
    assert "Name" in ok("cluster", "show", "-n", "c", "-w", "cliws")

    ok("cluster", "delete", "-n", "c", "-w", "cliws", "-y")
    gone = bai(service, token, admin.rg, "cluster", "show", "-n", "c", "-w", "cliws")
    assert gone.returncode == 1 and "ResourceNotFound" in gone.stderr


def test_cli_errors_are_one_line_with_the_fix(service: Service, admin: Api) -> None:
    token = service.token("alice")
    assert bai(service, token, admin.rg, "workspace", "create", "-n", "errws").returncode == 0
    bad = bai(
        service,
        token,
        admin.rg,
        "cluster",
        "create",
        "-n",
        "c",
        "-w",
        "errws",
        "-s",
        "STANDARD_ND40",
        "-t",
        "1",
    )
    assert bad.returncode == 1
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith("error: BadRequest: vmSize 'STANDARD_ND40' is not a node type")
    assert "Known node types: a100x2" in line and "STANDARD_NC6 -> t4x1" in line

    lonely = bai(
        service,
        token,
        admin.rg,
        "cluster",
        "create",
        "-n",
        "c",
        "-w",
        "errws",
        "-s",
        "t4x1",
        "--min",
        "1",
    )
    assert lonely.returncode == 1 and "give --min and --max together" in lonely.stderr

    # Off the cluster's hosts: no BAI_URL, and no client.conf naming one.
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as empty:
        no_env = subprocess.run(
            [str(Path(sys.executable).parent / "bai"), "workspace", "list"],
            env={"PATH": os.environ["PATH"], "BAI_CLIENT_CONF": empty.name},
            capture_output=True,
            text=True,
        )
    assert no_env.returncode == 1 and ". .dev/env" in no_env.stderr
