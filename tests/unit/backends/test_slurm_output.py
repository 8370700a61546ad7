"""Parsers over output recorded from real clusters of both releases: the dev cluster's 22.05
(tests/fixtures/slurm-22.05/record.py) and a 24.11 one (tests/fixtures/slurm-24.11/record24.py),
each table row checked against both where the release does not change the answer."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from adapter.backends.base import SlurmJob
from adapter.backends.slurm_output import (
    decode_exit_code,
    is_unavailable,
    nodes_argv,
    parse_nodes_json,
    parse_sbatch_parsable,
    parse_scontrol_partitions,
    parse_squeue_json,
    parse_version,
)
from adapter.errors import BackendError

FIXTURES = Path(__file__).parents[2] / "fixtures"
REC = FIXTURES / "slurm-22.05"
RELEASES = ["22.05", "24.11"]
# Where each recording put its jobs: the node of the first four, and of the preemptor.
FIRST_NODE = {"22.05": ("gpu-a100-1",), "24.11": ("n24-t4-1",)}
BUSY_NODE = {"22.05": ("gpu-a100-2",), "24.11": ("n24-t4-2",)}


def recorded(release: str, name: str) -> str:
    return (FIXTURES / f"slurm-{release}" / name).read_text()


@pytest.fixture(scope="module", params=RELEASES)
def release(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def jobs(release: str) -> dict[str, SlurmJob]:
    by_id = {j.job_id: j for j in parse_squeue_json(recorded(release, "squeue.json"))}
    ids = json.loads(recorded(release, "jobs.json"))
    return {label: by_id[job_id] for label, job_id in ids.items()}


@pytest.mark.parametrize(
    ("label", "state", "exit_status", "signal", "restarts", "where"),
    [
        ("ok", "COMPLETED", 0, None, 0, FIRST_NODE),
        ("failed", "FAILED", 7, None, 0, FIRST_NODE),
        ("killed", "FAILED", None, 9, 0, {"22.05": ("gpu-a100-2",), "24.11": ("n24-t4-1",)}),
        ("timeout", "TIMEOUT", None, 15, 0, {"22.05": ("gpu-a100-2",), "24.11": ("n24-t4-1",)}),
        ("requeued", "PENDING", None, None, 1, {}),
        ("preemptor", "RUNNING", None, None, 0, BUSY_NODE),
        ("pending", "PENDING", None, None, 0, {}),
        ("cancelled", "CANCELLED", 0, None, 0, {}),
    ],
)
def test_squeue_json_job_states(
    jobs: dict[str, SlurmJob],
    release: str,
    label: str,
    state: str,
    exit_status: int | None,
    signal: int | None,
    restarts: int,
    where: dict[str, tuple[str, ...]],
) -> None:
    job = jobs[label]
    assert (job.state, job.exit_status, job.term_signal) == (state, exit_status, signal)
    assert (job.restart_count, job.nodes) == (restarts, where.get(release, ()))


def test_squeue_json_fields(jobs: dict[str, SlurmJob]) -> None:
    job = jobs["timeout"]
    assert job.user == "alice" and job.partition == "rec-dedicated"
    assert job.time_limit_minutes == 1 and job.state_reason == "TimeLimit"
    assert isinstance(job.start_time, datetime) and isinstance(job.end_time, datetime)
    assert job.end_time > job.start_time
    assert jobs["pending"].start_time is None and jobs["pending"].end_time is None
    assert jobs["requeued"].requeue is True
    assert jobs["ok"].finished and not jobs["preemptor"].finished


def test_sinfo_json_nodes() -> None:
    nodes = {n.name: n for n in parse_nodes_json((REC / "sinfo.json").read_text())}
    assert sorted(nodes) == ["gpu-a100-1", "gpu-a100-2", "gpu-a100-3", "gpu-t4-1", "gpu-t4-2"]
    busy = nodes["gpu-a100-2"]
    assert (busy.address, busy.port, busy.state) == ("127.0.1.2", 6822, "MIXED")
    assert (busy.gpu_type, busy.gpus, busy.gpus_used) == ("a100", 2, 2)
    assert busy.partitions == ("pool", "rec-dedicated", "rec-low") and busy.usable
    assert busy.features == ("a100x2",) and busy.cpus == 2 and busy.real_memory_mb == 2048
    assert nodes["gpu-t4-1"].flags == {"NOT_RESPONDING"} and not nodes["gpu-t4-1"].usable
    drained = nodes["gpu-t4-2"]
    assert drained.flags == {"DRAIN"} and drained.reason == "bai: setup task failed"
    assert not drained.usable and drained.gres == "gpu:t4:1"
    assert nodes["gpu-a100-3"].usable and nodes["gpu-a100-3"].gpus_used == 0


def test_scontrol_show_nodes_json_of_24_11() -> None:
    """From 23.02 the per-node list is `scontrol show nodes --json`: state lists, numbers as
    objects (slurm-24.11/scontrol_show_nodes.json)."""
    text = recorded("24.11", "scontrol_show_nodes.json")
    nodes = {n.name: n for n in parse_nodes_json(text)}
    assert sorted(nodes) == ["n24-a100-1", "n24-a100-2", "n24-t4-1", "n24-t4-2"]
    busy = nodes["n24-t4-2"]
    assert (busy.address, busy.port, busy.state, busy.flags) == (
        "127.0.2.22",
        6942,
        "ALLOCATED",
        frozenset(),
    )
    assert (busy.gpu_type, busy.gpus, busy.gpus_used) == ("t4", 1, 1)
    assert busy.partitions == ("pool", "rec-dedicated", "rec-low") and busy.usable
    assert busy.cpus == 2 and busy.real_memory_mb == 2048
    drained = nodes["n24-t4-1"]
    assert (drained.state, drained.flags) == ("IDLE", frozenset({"DRAIN"}))
    assert drained.reason == "bai: setup task failed" and not drained.usable
    assert drained.gres == "gpu:t4:1" and drained.gpus_used == 0
    down = nodes["n24-a100-2"]
    assert down.state == "DOWN" and not down.usable


@pytest.mark.parametrize(
    ("text", "release", "argv"),
    [
        ("slurm-wlm 22.05.8\n", (22, 5), ["sinfo", "--json"]),
        ("slurm 23.02.7\n", (23, 2), ["scontrol", "show", "nodes", "--json"]),
        (recorded("24.11", "sinfo_version.txt"), (24, 11), ["scontrol", "show", "nodes", "--json"]),
    ],
)
def test_the_node_list_command_follows_the_release(
    text: str, release: tuple[int, int], argv: list[str]
) -> None:
    assert parse_version(text) == release and nodes_argv(release) == argv


def test_an_unreadable_version_is_an_error_showing_it() -> None:
    with pytest.raises(BackendError, match="no Slurm release: 'sinfo: error'"):
        parse_version("sinfo: error\n")


def test_scontrol_partitions() -> None:
    parts = {
        p.name: p
        for p in parse_scontrol_partitions((REC / "scontrol_show_partition.txt").read_text())
    }
    assert parts["pool"].state == "INACTIVE"
    assert parts["pool"].nodes == ("gpu-a100-1", "gpu-a100-2", "gpu-a100-3", "gpu-t4-1", "gpu-t4-2")
    low = parts["rec-low"]
    assert (low.priority_tier, low.preempt_mode, low.grace_time_seconds, low.max_time) == (
        1,
        "REQUEUE",
        2,
        "1-00:00:00",
    )
    assert parts["rec-empty"].nodes == ()
    assert parse_scontrol_partitions("No partitions in the system\n") == []


def test_controller_down_outputs_are_recognised() -> None:
    # 22.05: squeue --json exits 0 with the error inside the JSON.
    with pytest.raises(BackendError, match="Unspecified error"):
        parse_squeue_json((REC / "squeue_controller_down.json").read_text())
    # 24.11: nothing on stdout, the reason on stderr.
    assert recorded("24.11", "squeue_controller_down.json") == ""
    assert is_unavailable(recorded("24.11", "squeue_controller_down.stderr"))
    for release in RELEASES:
        assert is_unavailable(recorded(release, "scontrol_controller_down.stderr"))
        refused = recorded(release, "sbatch_time_limit.stderr")
        assert "Requested time limit is invalid" in refused and not is_unavailable(refused)


V38 = '{"meta": {"plugin": {"type": "openapi/v0.0.38"}}'


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("", "not JSON: ''"),
        ("not json", "not JSON: 'not json'"),
        ("[]", "not an object: '[]'"),
        ('{"meta": {"plugin": {"type": "openapi/v0.0.41"}}, "jobs": []}', "'openapi/v0.0.41'"),
        (V38 + "}", "no 'jobs' list"),
        (V38 + ', "jobs": [{"job_state": "RUNNING"}]}', "KeyError('job_id')): {\"job_state\""),
    ],
)
def test_unreadable_output_is_an_error_showing_it(text: str, shown: str) -> None:
    with pytest.raises(BackendError) as err:
        parse_squeue_json(text)
    assert shown in str(err.value)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [(0, (0, None)), (1792, (7, None)), (9, (None, 9)), (15, (None, 15)), (256 * 255, (255, None))],
)
def test_decode_exit_code(raw: int, decoded: tuple[int | None, int | None]) -> None:
    assert decode_exit_code(raw) == decoded


def test_sbatch_parsable() -> None:
    assert parse_sbatch_parsable("42\n") == 42
    assert parse_sbatch_parsable("42;baidev\n") == 42
    with pytest.raises(BackendError, match="no job id"):
        parse_sbatch_parsable("sbatch: warning: something\n")
