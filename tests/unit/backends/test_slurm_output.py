"""Parsers over output recorded from the real dev cluster (tests/fixtures/slurm-22.05/record.py)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from adapter.backends.base import SlurmJob
from adapter.backends.slurm_output import (
    decode_exit_code,
    is_unavailable,
    parse_sbatch_parsable,
    parse_scontrol_partitions,
    parse_sinfo_json,
    parse_squeue_json,
)
from adapter.errors import BackendError

REC = Path(__file__).parents[2] / "fixtures" / "slurm-22.05"
IDS = json.loads((REC / "jobs.json").read_text())


@pytest.fixture(scope="module")
def jobs() -> dict[str, SlurmJob]:
    by_id = {j.job_id: j for j in parse_squeue_json((REC / "squeue.json").read_text())}
    return {label: by_id[job_id] for label, job_id in IDS.items()}


@pytest.mark.parametrize(
    ("label", "state", "exit_status", "signal", "restarts", "nodes"),
    [
        ("ok", "COMPLETED", 0, None, 0, ("gpu-a100-1",)),
        ("failed", "FAILED", 7, None, 0, ("gpu-a100-1",)),
        ("killed", "FAILED", None, 9, 0, ("gpu-a100-2",)),
        ("timeout", "TIMEOUT", None, 15, 0, ("gpu-a100-2",)),
        ("requeued", "PENDING", None, None, 1, ()),
        ("preemptor", "RUNNING", None, None, 0, ("gpu-a100-2",)),
        ("pending", "PENDING", None, None, 0, ()),
        ("cancelled", "CANCELLED", 0, None, 0, ()),
    ],
)
def test_squeue_json_job_states(
    jobs: dict[str, SlurmJob],
    label: str,
    state: str,
    exit_status: int | None,
    signal: int | None,
    restarts: int,
    nodes: tuple[str, ...],
) -> None:
    job = jobs[label]
    assert (job.state, job.exit_status, job.term_signal) == (state, exit_status, signal)
    assert (job.restart_count, job.nodes) == (restarts, nodes)


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
    nodes = {n.name: n for n in parse_sinfo_json((REC / "sinfo.json").read_text())}
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
    with pytest.raises(BackendError, match="Unspecified error"):
        parse_squeue_json((REC / "squeue_controller_down.json").read_text())
    assert is_unavailable((REC / "scontrol_controller_down.stderr").read_text())
    assert not is_unavailable((REC / "sbatch_time_limit.stderr").read_text())


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
