"""The `bai job` and `bai experiment` verbs against the real service."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from tests.e2e.service import Api, Service, bai, bai_ok

pytestmark = pytest.mark.slurm


def test_job_cli_lifecycle(service: Service, admin: Api, tmp_path: Path) -> None:
    token = service.token("alice")

    ok = functools.partial(bai_ok, service, token, admin.rg)

    ok("workspace", "create", "-n", "w")
    ok(
        "cluster",
        "create",
        "-n",
        "c",
        "-w",
        "w",
        "-s",
        "t4x1",
        "--vm-priority",
        "lowpriority",
        "-t",
        "1",
        "-u",
        "alice",
    )
    ok("experiment", "create", "-n", "e", "-w", "w")
    assert "e" in ok("experiment", "list", "-w", "w")
    job_file = tmp_path / "job.json"
    job_file.write_text(
        json.dumps(
            {
                "$schema": "https://raw.githubusercontent.com/Azure/BatchAI/master/schemas/2018-05-01/job.json",
                "properties": {
                    "nodeCount": 1,
                    "customToolkitSettings": {
                        "commandLine": "for i in 1 2 3; do echo line $i; sleep 1; done"
                    },
                    "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
                    "mountVolumes": {
                        "azureFileShares": [
                            {
                                "azureFileUrl": "https://cli.file.core.windows.net/logs",
                                "relativeMountPath": "logs",
                            }
                        ]
                    },
                },
            }
        )
    )

    created = ok(
        "job",
        "create",
        "-n",
        "j",
        "-e",
        "e",
        "-w",
        "w",
        "-c",
        "c",
        "-f",
        str(job_file),
        "-o",
        "json",
    )
    assert created["properties"]["cluster"]["id"].endswith("/workspaces/w/clusters/c")
    streamed = ok("job", "file", "stream", "-j", "j", "-e", "e", "-w", "w", "-f", "stdout.txt")
    assert streamed.splitlines() == ["line 1", "line 2", "line 3"]
    waited = bai(
        service, token, admin.rg, "job", "wait", "-n", "j", "-e", "e", "-w", "w", "--interval", "1"
    )
    assert waited.returncode == 0, waited.stderr
    files = ok("job", "file", "list", "-j", "j", "-e", "e", "-w", "w", "-o", "json")
    assert {"stdout.txt", "stderr.txt", "execution.log"} <= {f["name"] for f in files}
    listing = ok("job", "list", "-e", "e", "-w", "w")
    assert "succeeded" in listing and "custom" in listing
    shown = ok("job", "show", "-n", "j", "-e", "e", "-w", "w", "-o", "json")
    assert shown["properties"]["executionInfo"]["exitCode"] == 0
    nodes = ok("job", "node", "list", "-j", "j", "-e", "e", "-w", "w", "-o", "json")
    cluster_nodes = ok("cluster", "node", "list", "-c", "c", "-w", "w", "-o", "json")
    assert [n["nodeId"] for n in nodes] == [n["nodeId"] for n in cluster_nodes]

    failing = tmp_path / "fail.json"
    body = json.loads(job_file.read_text())
    body["properties"]["customToolkitSettings"]["commandLine"] = "exit 7"
    failing.write_text(json.dumps(body))
    ok("job", "create", "-n", "f", "-e", "e", "-w", "w", "-c", "c", "-f", str(failing))
    result = bai(
        service, token, admin.rg, "job", "wait", "-n", "f", "-e", "e", "-w", "w", "--interval", "1"
    )
    assert result.returncode == 7 and "JobFailed" in result.stderr

    ok("job", "delete", "-n", "f", "-e", "e", "-w", "w", "-y")
    gone = bai(service, token, admin.rg, "job", "show", "-n", "f", "-e", "e", "-w", "w")
    assert gone.returncode == 1 and "ResourceNotFound" in gone.stderr
    ok("experiment", "delete", "-n", "e", "-w", "w", "-y")
    assert "e" not in ok("experiment", "list", "-w", "w", "-o", "json")


def test_job_create_without_a_cluster_says_what_to_do(
    service: Service, admin: Api, tmp_path: Path
) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({"properties": {"nodeCount": 1}}))
    result = bai(
        service,
        service.token("alice"),
        admin.rg,
        "job",
        "create",
        "-n",
        "j",
        "-e",
        "e",
        "-w",
        "w",
        "-f",
        str(job_file),
    )
    assert result.returncode == 1 and "-c" in result.stderr
