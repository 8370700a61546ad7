"""The old official SDK, azure-mgmt-batchai 2.0.0, drives bai unchanged (tests/e2e/sdk2_flow.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.service import Api, Service

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
SDK2 = ROOT / ".venv" / "sdk2"
FLOW = Path(__file__).with_name("sdk2_flow.py")


def test_the_2_0_0_sdk_runs_a_job_from_workspace_to_deletion(service: Service, admin: Api) -> None:
    if not (SDK2 / ".installed").exists():
        pytest.fail(f"azure-mgmt-batchai 2.0.0 is not installed in {SDK2}: run `make venv`")
    env = {
        **os.environ,
        "PYTHONPATH": str(SDK2),
        "BAI_URL": service.url,
        "BAI_CA": service.ca,
        "BAI_TOKEN": service.token("alice"),
        "BAI_SUBSCRIPTION": admin.sub,
        # The admin fixture's fresh t- group: its teardown removes whatever a failure left.
        "BAI_RESOURCE_GROUP": admin.rg,
    }
    result = subprocess.run(
        [sys.executable, str(FLOW), "--admin-user", "alice"],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert result.returncode == 0, f"sdk2_flow.py failed:\n{result.stderr}"
    seen = json.loads(result.stdout)

    sdk = seen["sdk"]
    assert sdk["batchai"] == "2.0.0" and sdk["batchaiFile"].startswith(str(SDK2))
    assert (sdk["msrest"], sdk["msrestazure"]) == ("0.7.1", "0.6.4.post1")

    assert seen["workspace"] == {
        "name": "ws2",
        "location": "onprem",
        "state": "succeeded",
        "createdTags": {"sdk": "2.0.0"},
        "tags": {"sdk": "2.0.0", "step": "updated"},
    }
    assert seen["workspaces"] == ["ws2"]
    assert seen["experiment"] == {"state": "succeeded"} and seen["experiments"] == ["exp2"]
    assert seen["cluster"] == {
        "name": "low2",
        "vmSize": "t4x1",
        "vmPriority": "lowpriority",
        "state": "succeeded",
        "allocationState": "steady",
        "currentNodeCount": 1,
    }
    assert seen["clusters"] == ["low2"]
    [login] = seen["clusterLogins"]
    assert login["nodeId"] and login["ipAddress"] and login["port"] > 0
    # The job ran on the cluster's one node, which the job's own listing names too.
    assert seen["jobLogins"] == [login]

    assert seen["job"] == {
        "name": "job2",
        "submittedState": "succeeded",
        "state": "succeeded",
        "executionState": "succeeded",
        "toolType": "custom",
        "exitCode": 0,
        "errors": [],
        "maxWallClockSeconds": 600.0,
        "cluster": True,
    }
    assert seen["jobs"] == ["job2"]
    assert seen["stdout"] == "hello 2.0.0\n" and seen["result"] == "result\n"

    # One file a page (maxresults=1), every later page by POSTing the nextLink.
    stdouterr = seen["stdouterrPages"]
    assert all(len(p) == 1 for p in stdouterr)
    assert {"stdout.txt", "stderr.txt", "execution.log"} <= {p[0] for p in stdouterr}
    assert sorted(p[0] for p in seen["outputPages"]) == ["more.txt", "result.txt"]
    paged = re.compile(r"/listOutputFiles\?.*maxresults=1\b")
    listings = [r for r in seen["requests"] if paged.search(r)]
    assert len(listings) == len(stdouterr) + len(seen["outputPages"])
    assert all(r.startswith("POST ") and r.endswith(" 200") for r in listings)
    assert sum("skiptoken" in r for r in listings) == len(listings) - 2

    for kind in ("job", "cluster", "experiment", "workspace"):
        assert seen[f"{kind}AfterDelete"] == {"status": 404, "code": "ResourceNotFound"}, kind
    assert seen["workspacesAfter"] == []
    # The deletes were long-running: 202, then the SDK polled the operation until it was done.
    assert any(r.startswith("DELETE ") and r.endswith(" 202") for r in seen["requests"])
    assert any(r.startswith("GET operationstatuses/") for r in seen["requests"])
    assert not [r for r in seen["requests"] if r.rsplit(" ", 1)[1].startswith("5")]
