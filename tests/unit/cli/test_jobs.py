"""The pure parts of `bai job`: cluster ids, the job body, wait's exit code, progress lines."""

from __future__ import annotations

from typing import Any

import pytest

from adapter.cli.client import CliError, Scope
from adapter.cli.jobs import cluster_id, job_body, progress_line, wait_exit_code

SCOPE = Scope("sub-1", "rg1")
WS = "/subscriptions/sub-1/resourceGroups/rg1/providers/Microsoft.BatchAI/workspaces/ws1"


def test_cluster_name_is_in_the_jobs_workspace() -> None:
    assert cluster_id("gpus", SCOPE, "ws1") == f"{WS}/clusters/gpus"


def test_cluster_arm_id_is_used_as_is() -> None:
    other = (
        "/subscriptions/s2/resourceGroups/rg2/providers/Microsoft.BatchAI/workspaces/w/clusters/c"
    )
    assert cluster_id(other, SCOPE, "ws1") == other


@pytest.mark.parametrize("bad", ["", "ws1/gpus", "resourceGroups/rg1/clusters/gpus"])
def test_cluster_that_is_neither_name_nor_id_fails(bad: str) -> None:
    with pytest.raises(CliError, match="cluster name"):
        cluster_id(bad, SCOPE, "ws1")


def test_body_drops_schema_and_applies_flags() -> None:
    raw: dict[str, Any] = {
        "$schema": "x",
        "properties": {"nodeCount": 1, "customToolkitSettings": {}},
    }
    body = job_body(raw, "gpus", 4, SCOPE, "ws1")
    assert body == {
        "properties": {
            "nodeCount": 4,
            "customToolkitSettings": {},
            "cluster": {"id": f"{WS}/clusters/gpus"},
        }
    }
    assert raw["properties"]["nodeCount"] == 1  # the file's data is not changed in place


def test_body_keeps_the_files_cluster_without_c() -> None:
    raw = {"properties": {"cluster": {"id": "/subscriptions/s/x"}, "nodeCount": 2}}
    assert job_body(raw, None, None, SCOPE, "ws1") == raw


@pytest.mark.parametrize("raw", [{"properties": {}}, {"properties": {"cluster": {}}}, {}])
def test_body_without_any_cluster_asks_for_c(raw: dict[str, Any]) -> None:
    with pytest.raises(CliError, match="-c/--cluster"):
        job_body(raw, None, None, SCOPE, "ws1")


@pytest.mark.parametrize("raw", [[], "text", {"properties": []}])
def test_body_that_is_not_an_object_fails(raw: Any) -> None:
    with pytest.raises(CliError, match="JSON object"):
        job_body(raw, "gpus", None, SCOPE, "ws1")


def test_nodes_must_be_positive() -> None:
    with pytest.raises(CliError, match="--nodes 0"):
        job_body({"properties": {}}, "gpus", 0, SCOPE, "ws1")


def _job(state: str, info: dict[str, Any] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"executionState": state}
    if info is not None:
        props["executionInfo"] = info
    return {"properties": props}


@pytest.mark.parametrize(
    ("job", "code"),
    [
        (_job("queued"), None),
        (_job("running", {"preemptionCount": 2}), None),
        (_job("terminating"), None),
        (_job("succeeded", {"exitCode": 0}), 0),
        (_job("failed", {"exitCode": 2}), 2),
        (_job("failed", {"exitCode": -1}), -1),
        (_job("failed", {"exitCode": 0}), 1),
        (_job("failed", {"exitCode": None}), 1),
        (_job("failed", {"exitCode": 256}), 1),
        (_job("failed", {"exitCode": True}), 1),
        (_job("failed"), 1),
        ({}, None),
    ],
)
def test_wait_exit_code(job: dict[str, Any], code: int | None) -> None:
    assert wait_exit_code(job) == code


def test_progress_lines() -> None:
    assert progress_line(3.7, "job1", "queued", None) == "[0:00:03] job1: queued"
    assert progress_line(3725, "job1", "running", 1) == "[1:02:05] job1: running, preempted 1 time"
    assert progress_line(60, "j", "queued", 3) == "[0:01:00] j: queued, preempted 3 times"
