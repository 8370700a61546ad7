"""How a job ended, from its own execution.log and what Slurm still says (pure).

The script writes execution.log itself (JSON lines: start, job_prep, notice, end ...), so an
outcome is known even when Slurm has forgotten the job; Slurm's state adds what the script cannot
see (killed by the time limit before it could write, node failure, cancellation).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from adapter.backends.base import SlurmJob

MESSAGES = {
    "JobFailed": "Job failed with non-zero exit code",
    "JobPreparationFailed": "Job preparation failed with exit code {exit}; see "
    "stdout-job_prep.txt and stderr-job_prep.txt",
    "VolumeMountFailed": "A volume could not be mounted: {detail}",
    "OutputDirectoryFailed": "The output directories could not be created",
    "LowPriorityTimeLimitExceeded": "The job ran into the time limit of low-priority clusters "
    "and was killed: low-priority jobs run at most {cap} (Batch AI's 24-hour limit). Checkpoint "
    "and resubmit, or use a dedicated cluster",
    "MaxWallClockTimeExceeded": "The job ran longer than constraints.maxWallClockTime ({limit}) "
    "and was killed",
    "NodeFailure": "A node of the job failed",
    "JobTerminated": "The job was terminated on request",
    "ClusterDeleted": "The job's cluster was deleted",
    "JobCancelled": "The job was cancelled in Slurm outside bai",
    "JobLost": "Slurm no longer knows the job and it left no execution log",
}


# Slurm ended the job itself: a non-zero exit the script logged is the effect, not the cause.
KILLED_BY_SLURM = frozenset(
    {"TIMEOUT", "NODE_FAIL", "BOOT_FAIL", "CANCELLED", "PREEMPTED", "DEADLINE"}
)


@dataclass(frozen=True)
class Outcome:
    state: str  # succeeded | failed
    exit_code: int | None
    errors: list[dict[str, Any]] = field(default_factory=list)


def parse_execution_log(text: str) -> list[dict[str, Any]]:
    """The events of the last run (a requeued job starts over with a new `start`)."""
    events: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if isinstance(event, dict):
            if event.get("event") == "start":
                events = []
            events.append(event)
    return events


def error(code: str, *, details: Sequence[tuple[str, str]] = (), **values: Any) -> dict[str, Any]:
    return {
        "code": code,
        "message": MESSAGES[code].format(**values),
        "details": [{"name": k, "value": v} for k, v in details] or None,
    }


def decide(
    slurm: SlurmJob | None,
    events: Sequence[dict[str, Any]],
    *,
    terminated: bool,
    cluster_gone: bool,
    capped: bool,
    cap: str,
    limit: str,
    mount_error: str = "",
) -> Outcome | None:
    """The outcome of a job that Slurm finished or forgot; None while it is not over."""
    if slurm is not None and not slurm.finished:
        return None
    end = next((e for e in reversed(events) if e.get("event") == "end"), None)
    slurm_exit = slurm.exit_status if slurm is not None else None
    state = slurm.state if slurm is not None else ""
    if end is not None:
        code, exit_code = str(end.get("error") or ""), int(end.get("exit", -1))
        if not code and exit_code == 0 and (slurm is None or slurm.state == "COMPLETED"):
            return Outcome("succeeded", 0)
        if terminated:  # asked for: whatever the killed run logged on its way out
            return Outcome("failed", exit_code, [error("JobTerminated")])
        if code == "VolumeMountFailed":
            return Outcome(
                "failed",
                exit_code,
                [error(code, detail=mount_error or "see the job's execution.log")],
            )
        if code in MESSAGES and code != "JobFailed":
            return Outcome("failed", exit_code, [error(code, exit=exit_code, cap=cap, limit=limit)])
        if exit_code != 0 and not terminated and state not in KILLED_BY_SLURM:
            return Outcome(
                "failed", exit_code, [error("JobFailed", details=[("exitCode", str(exit_code))])]
            )
    last_exit: int | None = int(end.get("exit", -1)) if end else slurm_exit
    if terminated:
        return Outcome("failed", last_exit, [error("JobTerminated")])
    if slurm is None and end is None:
        return Outcome("failed", -1, [error("JobLost")])
    if state == "TIMEOUT":
        code = "LowPriorityTimeLimitExceeded" if capped else "MaxWallClockTimeExceeded"
        return Outcome("failed", last_exit, [error(code, cap=cap, limit=limit)])
    if state in {"NODE_FAIL", "BOOT_FAIL"}:
        return Outcome("failed", last_exit, [error("NodeFailure")])
    if state in {"CANCELLED", "PREEMPTED", "DEADLINE"}:
        return Outcome(
            "failed", last_exit, [error("ClusterDeleted" if cluster_gone else "JobCancelled")]
        )
    if state == "COMPLETED":
        return Outcome("succeeded", 0)
    code_value = last_exit if last_exit is not None else -1
    return Outcome(
        "failed", code_value, [error("JobFailed", details=[("exitCode", str(code_value))])]
    )
