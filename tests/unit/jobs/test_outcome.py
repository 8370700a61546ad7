"""How a job ended: its execution.log and what Slurm still says (pure)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest

from adapter.backends.base import SlurmJob
from adapter.jobs.outcome import Outcome, decide, parse_execution_log
from adapter.jobs.script import _helpers
from tests.unit.clusters.factories import job

CAP = "24 hours"
LIMIT = "7 days"


def slurm(state: str, exit_status: int | None = None) -> SlurmJob:
    return job(42, "c1-012345", state, ("n1",), exit_status=exit_status, comment="bai:x")


def ev(event: str, run: int = 0, **fields: Any) -> dict[str, Any]:
    return {"time": "2026-01-01T00:00:00Z", "event": event, "run": run, **fields}


def end(exit_code: int, error: str = "", **fields: Any) -> dict[str, Any]:
    return ev("end", exit=exit_code, error=error, **fields)


START = ev("start", nodes=1)


@dataclass(frozen=True)
class Case:
    slurm: SlurmJob | None
    events: list[dict[str, Any]]
    state: str
    exit_code: int | None
    code: str | None  # the one error code, None when succeeded
    message_has: tuple[str, ...] = ()
    details: list[dict[str, str]] | None = None
    terminated: bool = False
    cluster_gone: bool = False
    capped: bool = False
    mount_error: str = ""


CASES: dict[str, Case] = {
    "succeeded": Case(slurm("COMPLETED", 0), [START, end(0)], "succeeded", 0, None),
    "exit 3 is JobFailed with the exit code": Case(
        slurm("FAILED", 3),
        [START, end(3, "JobFailed")],
        "failed",
        3,
        "JobFailed",
        ("non-zero exit code",),
        details=[{"name": "exitCode", "value": "3"}],
    ),
    "job preparation failed": Case(
        slurm("FAILED", 2),
        [START, ev("job_prep", exit=2), end(2, "JobPreparationFailed")],
        "failed",
        2,
        "JobPreparationFailed",
        ("exit code 2", "stdout-job_prep.txt", "stderr-job_prep.txt"),
    ),
    "volume mount failed names the volume": Case(
        slurm("FAILED", 1),
        [START, end(1, "VolumeMountFailed", detail="see /spool/mount-error")],
        "failed",
        1,
        "VolumeMountFailed",
        ("volume properties.mountVolumes.fileServers[0] (nfs): access denied",),
        mount_error="volume properties.mountVolumes.fileServers[0] (nfs): access denied",
    ),
    "volume mount failed without a mount-error file": Case(
        slurm("FAILED", 1),
        [START, end(1, "VolumeMountFailed")],
        "failed",
        1,
        "VolumeMountFailed",
        ("see the job's execution.log",),
    ),
    "capped low-priority job killed at the time limit": Case(
        slurm("TIMEOUT"),
        [START],
        "failed",
        None,
        "LowPriorityTimeLimitExceeded",
        ("at most 24 hours",),
        capped=True,
    ),
    "capped job whose script logged the time limit": Case(
        slurm("TIMEOUT", 143),
        [START, end(143, "LowPriorityTimeLimitExceeded")],
        "failed",
        143,
        "LowPriorityTimeLimitExceeded",
        ("at most 24 hours",),
        capped=True,
    ),
    "uncapped job killed at its maxWallClockTime": Case(
        slurm("TIMEOUT"),
        [START],
        "failed",
        None,
        "MaxWallClockTimeExceeded",
        ("constraints.maxWallClockTime (7 days)",),
    ),
    "node failure": Case(slurm("NODE_FAIL"), [START], "failed", None, "NodeFailure"),
    "boot failure is a node failure": Case(slurm("BOOT_FAIL"), [], "failed", None, "NodeFailure"),
    "terminated on request": Case(
        slurm("CANCELLED", 143),
        [START, end(143, "JobFailed")],
        "failed",
        143,
        "JobTerminated",
        ("terminated on request",),
        terminated=True,
    ),
    # A preempted run logs why it ended; terminated while requeued, the request is the outcome.
    "terminated while requeued after a preemption the run logged as its end": Case(
        slurm("CANCELLED", 143),
        [START, ev("signal", signal="TERM"), end(143, "LowPriorityTimeLimitExceeded")],
        "failed",
        143,
        "JobTerminated",
        terminated=True,
    ),
    "terminated before it started": Case(
        slurm("CANCELLED"), [], "failed", None, "JobTerminated", terminated=True
    ),
    "cancelled while the cluster is gone": Case(
        slurm("CANCELLED"), [START], "failed", None, "ClusterDeleted", cluster_gone=True
    ),
    # scancel's TERM reaches the batch shell, which traps it, and its child, which dies: the
    # script logs a JobFailed end before Slurm reports the job CANCELLED.
    "cancelled while the cluster is gone, after the script logged its end": Case(
        slurm("CANCELLED", 143),
        [START, ev("signal", signal="TERM"), end(143, "JobFailed")],
        "failed",
        143,
        "ClusterDeleted",
        cluster_gone=True,
    ),
    "cancelled outside bai, after the script logged its end": Case(
        slurm("CANCELLED", 143),
        [START, ev("signal", signal="TERM"), end(143, "JobFailed")],
        "failed",
        143,
        "JobCancelled",
    ),
    "node failure after the script logged its end": Case(
        slurm("NODE_FAIL", 1), [START, end(1, "JobFailed")], "failed", 1, "NodeFailure"
    ),
    "time limit before the script could tell it was the limit": Case(
        slurm("TIMEOUT", 143),
        [START, ev("signal", signal="TERM"), end(143, "JobFailed")],
        "failed",
        143,
        "MaxWallClockTimeExceeded",
    ),
    "cancelled outside bai": Case(slurm("CANCELLED"), [START], "failed", None, "JobCancelled"),
    "Slurm forgot the job and there is no log": Case(None, [], "failed", -1, "JobLost"),
    "Slurm forgot the job but the log says exit 0": Case(
        None, [START, end(0)], "succeeded", 0, None
    ),
    "Slurm forgot the job but the log says exit 5": Case(
        None,
        [START, end(5, "JobFailed")],
        "failed",
        5,
        "JobFailed",
        details=[{"name": "exitCode", "value": "5"}],
    ),
    "FAILED without an end record uses Slurm's exit status": Case(
        slurm("FAILED", 9),
        [START],
        "failed",
        9,
        "JobFailed",
        details=[{"name": "exitCode", "value": "9"}],
    ),
    "output directories could not be created": Case(
        slurm("FAILED", 1),
        [START, end(1, "OutputDirectoryFailed")],
        "failed",
        1,
        "OutputDirectoryFailed",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_decide(name: str) -> None:
    case = CASES[name]
    outcome = decide(
        case.slurm,
        case.events,
        terminated=case.terminated,
        cluster_gone=case.cluster_gone,
        capped=case.capped,
        cap=CAP,
        limit=LIMIT,
        mount_error=case.mount_error,
    )
    assert outcome is not None
    assert (outcome.state, outcome.exit_code) == (case.state, case.exit_code)
    if case.code is None:
        assert outcome.errors == []
        return
    assert [e["code"] for e in outcome.errors] == [case.code]
    message = outcome.errors[0]["message"]
    for part in case.message_has:
        assert part in message
    assert "{" not in message  # every placeholder was filled
    assert outcome.errors[0]["details"] == case.details


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "COMPLETING"])
def test_a_job_slurm_still_runs_has_no_outcome(state: str) -> None:
    events = [START, end(0)]  # even when the script already logged its end
    assert (
        decide(
            slurm(state),
            events,
            terminated=True,
            cluster_gone=True,
            capped=False,
            cap=CAP,
            limit=LIMIT,
        )
        is None
    )


def lines(*events: dict[str, Any]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        (lines(START, end(0)), [START, end(0)]),
        # requeued: the second run starts over; only its events count
        (
            lines(
                START,
                ev("notice", signal="USR1"),
                ev("start", run=1, nodes=1),
                end(0),
            ),
            [ev("start", run=1, nodes=1), end(0)],
        ),
        # killed while writing: the cut line is ignored
        (
            lines(START, ev("job_prep", exit=0)) + '{"time":"2026-01-01T00:',
            [START, ev("job_prep", exit=0)],
        ),
        # a cut line followed by a requeued run
        (
            lines(START)
            + '{"time":"2026","event":"en\n'
            + lines(ev("start", run=1), end(3, "JobFailed")),
            [ev("start", run=1), end(3, "JobFailed")],
        ),
        # not an object, or blank: ignored
        ("42\n\n[1]\n" + lines(START), [START]),
        # no newline at the end of a complete last line
        (json.dumps(START) + "\n" + json.dumps(end(0)), [START, end(0)]),
    ],
)
def test_parse_execution_log(text: str, expected: list[dict[str, Any]]) -> None:
    assert parse_execution_log(text) == expected


def test_requeued_job_uses_only_the_last_run() -> None:
    # Run 0 was preempted after logging a failure-looking end; run 1 succeeded.
    text = lines(START, end(143, "JobFailed"), ev("start", run=1, nodes=1), end(0))
    outcome = decide(
        slurm("COMPLETED", 0),
        parse_execution_log(text),
        terminated=False,
        cluster_gone=False,
        capped=False,
        cap=CAP,
        limit=LIMIT,
    )
    assert outcome == Outcome("succeeded", 0)


def test_truncated_end_line_falls_back_to_slurm() -> None:
    text = lines(START) + '{"time":"2026-01-01T00:00:00Z","event":"end","exit":0,"err'
    events = parse_execution_log(text)
    assert events == [START]
    outcome = decide(
        slurm("TIMEOUT"),
        events,
        terminated=False,
        cluster_gone=False,
        capped=True,
        cap=CAP,
        limit=LIMIT,
    )
    assert outcome is not None
    assert [e["code"] for e in outcome.errors] == ["LowPriorityTimeLimitExceeded"]


def test_log_written_by_the_rendered_helpers_is_parsed() -> None:
    """The JSON the script's bai_log/bai_end print is what parse_execution_log reads."""
    helpers = [
        line for line in _helpers() if not line.startswith(("trap ", "mapfile ", "bai_log start"))
    ]
    script = "\n".join(
        [
            "BAI_EXEC_LOG=/dev/stdout; BAI_STDOUTERR=/nonexistent; BAI_ENDED=",
            *helpers,
            'bai_log start "\\"nodes\\":2"',
            'bai_log job_prep "\\"exit\\":0"',
            'bai_end 1 VolumeMountFailed "\\"detail\\":\\"see /spool/mount-error\\""',
            "bai_end 0 ''",  # a second end is not written
        ]
    )
    result = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SLURM_RESTART_COUNT": "2"},
    )
    assert result.returncode == 0, result.stderr
    events = parse_execution_log(result.stdout)
    assert [e["event"] for e in events] == ["start", "job_prep", "end"]
    assert all(e["run"] == 2 for e in events)
    assert events[0]["nodes"] == 2 and events[1]["exit"] == 0
    assert (events[2]["exit"], events[2]["error"], events[2]["detail"]) == (
        1,
        "VolumeMountFailed",
        "see /spool/mount-error",
    )
