"""Munge against the running service and the host's munged: the `bai` CLI without a token, run
as alice and as bob, is each of them; a replayed, expired or made-up credential is a 401; a
token still works; root by munge is never an admin and follows auth.allow_system_users."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter import munge
from tests.e2e.service import API, Api, Service

BAI = str(Path(sys.executable).parent / "bai")
WORKSPACES = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.BatchAI/workspaces"
)


def as_user(user: str) -> list[str]:
    entry = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--"]


def munge_as(user: str, *args: str) -> str:
    """A credential `munge -n` makes as `user`."""
    made = subprocess.run(
        [*as_user(user), "munge", "-n", *args], capture_output=True, text=True, timeout=10
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture
def client_conf(service: Service) -> Iterator[Path]:
    """A client.conf naming the service under test, as Ansible writes /etc/bai/client.conf
    (in a directory every user can read: pytest's own tmp_path is root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="bai-e2e-munge-"))
    directory.chmod(0o755)
    conf = directory / "client.conf"
    conf.write_text(f"# the test service\nBAI_URL={service.url}\nBAI_CA={service.ca}\n")
    conf.chmod(0o644)
    yield conf
    shutil.rmtree(directory, ignore_errors=True)


def bai_as(user: str, conf: Path, rg: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The `bai` CLI run as `user` with no token: only the client file says where bai is."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": pwd.getpwnam(user).pw_dir,
        "BAI_CLIENT_CONF": str(conf),
        "BAI_RESOURCE_GROUP": rg,
        "COLUMNS": "200",
    }
    if "PYTHONPATH" in os.environ:  # the tree under test, when it is not the venv's own
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run(
        [*as_user(user), BAI, *args], env=env, capture_output=True, text=True, timeout=120
    )


def listed(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    items: list[dict[str, Any]] = json.loads(result.stdout)
    return sorted(item["name"] for item in items)


def status(service: Service, header: str) -> tuple[int, str]:
    response = httpx.get(
        service.url + WORKSPACES,
        params={"api-version": API},
        headers={"Authorization": header},
        verify=service.tls(),
        timeout=30,
    )
    if response.status_code >= 400:
        return response.status_code, response.json()["error"]["message"]
    return response.status_code, ""


def names(service: Service, header: str) -> list[str]:
    response = httpx.get(
        service.url + WORKSPACES,
        params={"api-version": API},
        headers={"Authorization": header},
        verify=service.tls(),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return sorted(ws["name"] for ws in response.json()["value"])


def test_the_cli_without_a_token_is_the_user_who_runs_it(
    service: Service, admin: Api, client_conf: Path
) -> None:
    ws = f"ws-{uuid.uuid4().hex[:6]}"
    made = bai_as("alice", client_conf, admin.rg, "workspace", "create", "-n", ws, "-o", "json")
    assert made.returncode == 0, made.stderr

    assert listed(bai_as("alice", client_conf, admin.rg, "workspace", "list", "-o", "json")) == [ws]
    assert listed(bai_as("bob", client_conf, admin.rg, "workspace", "list", "-o", "json")) == []
    shown = bai_as("bob", client_conf, admin.rg, "workspace", "show", "-n", ws)
    assert shown.returncode == 1 and "ResourceNotFound" in shown.stderr, shown.stderr
    gone = bai_as("bob", client_conf, admin.rg, "workspace", "delete", "-n", ws, "-y")
    assert gone.returncode == 1 and "ResourceNotFound" in gone.stderr, gone.stderr

    # The workspace munge made as alice's is her token's too; bob's token does not see it.
    alice = Api(service, service.token("alice"), rg=admin.rg)
    bob = Api(service, service.token("bob"), rg=admin.rg)
    assert [w["name"] for w in alice.call("GET", alice.path("workspaces")).json()["value"]] == [ws]
    assert bob.call("GET", bob.path("workspaces")).json()["value"] == []
    alice.close()
    bob.close()


def test_a_credential_counts_once_and_until_its_ttl(service: Service) -> None:
    cred = munge_as("alice")
    assert status(service, f"Munge {cred}") == (200, "")
    code, message = status(service, f"Munge {cred}")
    assert code == 401 and message.startswith("replayed credential: "), message
    assert "each request needs a new one" in message

    short = munge_as("bob", "--ttl", "1")
    time.sleep(2)
    code, message = status(service, f"Munge {short}")
    assert code == 401 and message.startswith("expired credential: "), message
    assert "with a ttl of 1 s" in message


@pytest.mark.parametrize("cred", ["garbage", "MUNGE:AwQFAACDRqfZ5QXlDN00m1zkIXku:", "cut"])
def test_a_made_up_or_cut_credential_is_refused(service: Service, cred: str) -> None:
    if cred == "cut":
        whole = munge_as("alice")
        cred = whole[: len(whole) // 2] + ":"
    code, message = status(service, f"Munge {cred}")
    assert code == 401 and message.startswith("invalid credential ("), message


def test_tokens_still_work_beside_munge(service: Service) -> None:
    token = service.token("alice")
    assert status(service, f"Bearer {token}") == (200, "")
    assert status(service, f"Bearer {token}") == (200, "")  # a token is not single-use
    code, message = status(service, "Basic YWxpY2U6eA==")
    assert code == 401 and "'Authorization: Munge <credential>'" in message


def test_root_by_munge_is_no_admin_and_only_when_allowed(
    service: Service, admin: Api, alice: Api
) -> None:
    ws = f"ws-{uuid.uuid4().hex[:6]}"
    alice.workspace(ws)
    assert ws in names(service, f"Bearer {service.token('root', admin=True)}")
    # The test service allows root (its admin tokens are root's): root by munge is root, but
    # not an admin, so alice's workspace is not root's to see.
    assert ws not in names(service, f"Munge {munge.encode()}")
    try:
        service.restart(BAI_AUTH__ALLOW_SYSTEM_USERS="[]")
        code, message = status(service, f"Munge {munge.encode()}")
        assert code == 403 and "'root''s, a system account (uid 0)" in message, message
        assert "auth.allow_system_users" in message
        assert status(service, f"Munge {munge_as('alice')}") == (200, "")
    finally:
        service.restart()
