"""How a job ended, from its own execution.log and what Slurm still says (pure).

The script writes execution.log itself (JSON lines: start, job_prep, notice, end ...), so an
outcome is known even when Slurm has forgotten the job; Slurm's state adds what the script cannot
see (killed by the time limit before it could write, node failure, cancellation).

execution.log and mount-error belong to the job's user, who can write anything there (DESIGN.md
section 8): each event is checked against what the script writes, a malformed log is an error
(ExecutionLogInvalid) rather than a crash, and user text is cleaned and capped before it goes
into a message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapter.backends.base import SlurmJob
from adapter.records import ExecutionState, FinalState

MESSAGES = {
    "JobFailed": "Job failed with non-zero exit code{why}",
    "JobPreparationFailed": "Job preparation failed with exit code {exit}; see "
    "stdout-job_prep.txt and stderr-job_prep.txt",
    "VolumeMountFailed": "A volume could not be mounted: {detail}",
    "NodePreparationFailed": "A node of the job was not prepared by bai's Prolog: {detail}. "
    "Ask the operator to look at /var/log/bai/node-helper.log on the job's nodes",
    "SpoolInvalid": "bai could not prepare the job's spool directory: {detail}; the job's own "
    "files are in its way. Submit the job again under a new name",
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
    "SubmissionNotConfirmed": "bai sbatch recorded the job, but Slurm never showed it: the "
    "client stopped before sbatch answered. Submit it again",
    "ArrayTasksFailed": "Tasks {tasks} of the job array failed{exit}",
    "ExecutionLogInvalid": "bai could not use the job's execution log ({detail}); the job's "
    "own processes changed or replaced it, so its outcome is unknown",
}

# The error codes the script itself ends a run with (bai_end in script.py); any other word a
# user puts in `error` is not a cause bai reports.
SCRIPT_ERRORS = frozenset(
    {
        "JobFailed",
        "JobPreparationFailed",
        "VolumeMountFailed",
        "NodePreparationFailed",
        "OutputDirectoryFailed",
        "LowPriorityTimeLimitExceeded",
        "MaxWallClockTimeExceeded",
    }
)

# Bounds on what an execution.log event may hold (the script writes far less).
EXIT_MIN, EXIT_MAX = -(2**31), 2**31 - 1  # a signed 32-bit exit status
ERROR_MAX = 64  # chars of `error`, a word of ASCII letters
SIGNAL_MAX = 16  # chars of `signal` (the script writes TERM or USR1)
DETAIL_MAX = 500  # chars of `detail` kept; the rest is cut off
TEXT_MAX = 500  # chars of user-written text (mount-error) that go into a message
SHOW_MAX = 40  # chars of an offending value quoted in an ExecutionLogInvalid message
_ERROR_WORD = re.compile(r"[A-Za-z]*")
# Control characters (C0, DEL, C1), line and paragraph separators, lone surrogates and the
# invisible format characters (zero-width, bidi embeddings and overrides, BOM).
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)


# Slurm's job states and what Batch AI calls them: the state while the job lives, and for a
# job Slurm ended, the error it failed with when its own execution log says nothing (decide:
# the script's end record comes first). "queued" covers a job waiting for its first or next
# run; every other live state is "running". TIMEOUT's error is the cap's when the cap set the
# limit. A job.json job's CANCELLED is ClusterDeleted when its cluster went.
SLURM_STATES: dict[str, tuple[ExecutionState, str | None]] = {
    "PENDING": ("queued", None),
    "REQUEUED": ("queued", None),
    "REQUEUE_HOLD": ("queued", None),
    "REQUEUE_FED": ("queued", None),
    "CONFIGURING": ("running", None),
    "RUNNING": ("running", None),
    "COMPLETING": ("running", None),
    "SUSPENDED": ("running", None),
    "STOPPED": ("running", None),
    "RESIZING": ("running", None),
    "SIGNALING": ("running", None),
    "STAGE_OUT": ("running", None),
    "COMPLETED": ("succeeded", None),
    "FAILED": ("failed", "JobFailed"),
    "OUT_OF_MEMORY": ("failed", "JobFailed"),
    "TIMEOUT": ("failed", "MaxWallClockTimeExceeded"),
    "NODE_FAIL": ("failed", "NodeFailure"),
    "BOOT_FAIL": ("failed", "NodeFailure"),
    "CANCELLED": ("failed", "JobCancelled"),
    "PREEMPTED": ("failed", "JobCancelled"),
    "DEADLINE": ("failed", "JobCancelled"),
}

# Slurm ended the job itself: a non-zero exit the script logged is the effect, not the cause.
KILLED_BY_SLURM = frozenset(
    state for state, (_, code) in SLURM_STATES.items() if code not in (None, "JobFailed")
)


def live_state(slurm_state: str) -> ExecutionState:
    """queued or running: a live job's state in Batch AI's words (an unknown word is a state
    a newer Slurm added; the job is Slurm's, so running)."""
    return SLURM_STATES.get(slurm_state, ("running", None))[0]


@dataclass(frozen=True)
class Outcome:
    state: FinalState
    exit_code: int | None
    errors: list[dict[str, Any]] = field(default_factory=list)


class ExecutionLogInvalid(Exception):
    """An execution.log event holds a field the script would never write (the message names
    the line and the field)."""


def parse_execution_log(text: str) -> list[dict[str, Any]]:
    """The events of the last run (a requeued job starts over with a new `start`).

    A line that is not a JSON object (cut short by a kill, blank, garbage) is skipped; an object
    whose fields are not what the script writes raises ExecutionLogInvalid. Line numbers count
    newline-separated lines from 1, as an editor shows them.
    """
    return execution_runs(text)[-1]


def execution_runs(text: str) -> list[list[dict[str, Any]]]:
    """The events of every run the log holds, oldest first (never empty: a log with no event
    is one run of none); each `start` begins a run. Read as parse_execution_log reads."""
    runs: list[list[dict[str, Any]]] = [[]]
    for number, line in enumerate(text.split("\n"), 1):
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):
            # A line cut short by a kill, garbage, or JSON beyond the parser's limits (nesting
            # deeper than its recursion limit, an integer of more than 4300 digits).
            continue
        if not isinstance(event, dict):
            continue
        event = _checked(number, event)
        if event["event"] == "start" and runs[-1]:
            runs.append([])
        runs[-1].append(event)
    return runs


def preempted_runs(runs: list[list[dict[str, Any]]], first: int, after: int) -> int:
    """How many of the runs numbered first..after-1 (SLURM_RESTART_COUNT, the events' `run`)
    logged the USR1 notice Slurm sends a low-priority job it preempts. Each run keeps its
    events in the log after it is requeued, so a count taken late still finds them."""
    preempted = set()
    for events in runs:
        for event in events:
            run = event.get("run")
            if event["event"] == "notice" and isinstance(run, int) and first <= run < after:
                preempted.add(run)
    return len(preempted)


def _checked(number: int, event: dict[str, Any]) -> dict[str, Any]:
    """The event, if its fields are what the script writes (`detail` cut to DETAIL_MAX)."""

    def bad(name: str, why: str) -> ExecutionLogInvalid:
        if name not in event:
            return ExecutionLogInvalid(f"line {number}: {name} is missing")
        return ExecutionLogInvalid(f"line {number}: {name} is {_show(event[name])}, {why}")

    if not isinstance(event.get("event"), str):
        raise bad("event", "not a string")
    if "exit" in event:
        value = event["exit"]
        if not _is_int(value):
            raise bad("exit", "not an integer")
        if not EXIT_MIN <= value <= EXIT_MAX:
            raise bad("exit", f"not an integer in {EXIT_MIN}..{EXIT_MAX}")
    if "error" in event:
        value = event["error"]
        if not isinstance(value, str):
            raise bad("error", "not a string")
        if len(value) > ERROR_MAX or not _ERROR_WORD.fullmatch(value):
            raise bad("error", f"not a word of at most {ERROR_MAX} ASCII letters")
    for name in ("run", "nodes"):
        if name in event and not _is_int(event[name]):
            raise bad(name, "not an integer")
    if "signal" in event:
        value = event["signal"]
        if not isinstance(value, str) or len(value) > SIGNAL_MAX:
            raise bad("signal", f"not a string of at most {SIGNAL_MAX} characters")
    if "detail" in event:
        value = event["detail"]
        if not isinstance(value, str):
            raise bad("detail", "not a string")
        if len(value) > DETAIL_MAX:
            event["detail"] = value[:DETAIL_MAX]
    return event


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: object) -> str:
    """A short, printable rendering of a JSON value from the log, for a message."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        shown = repr(value[:SHOW_MAX])  # repr escapes control and invisible characters
        return shown + ("..." if len(value) > SHOW_MAX else "")
    if isinstance(value, int | float):
        shown = repr(value)
        return shown if len(shown) <= SHOW_MAX else shown[:SHOW_MAX] + "..."
    return "a list" if isinstance(value, list) else "an object"


def clean_text(text: str, limit: int = TEXT_MAX) -> str:
    """User-written text made safe for a message: control, separator and invisible characters
    become spaces, the ends are stripped, and at most `limit` characters are kept."""
    return _CONTROL.sub(" ", text).strip()[:limit].rstrip()


def error(code: str, *, details: Sequence[tuple[str, str]] = (), **values: Any) -> dict[str, Any]:
    return {
        "code": code,
        "message": MESSAGES[code].format(**values),
        "details": [{"name": k, "value": v} for k, v in details] or None,
    }


def invalid_log_outcome(slurm: SlurmJob | None, detail: str) -> Outcome:
    """The outcome of a finished job whose execution log bai cannot use (malformed, too large,
    not a regular file, a symlink ...); `detail` says why, briefly."""
    exit_code = slurm.exit_status if slurm is not None and slurm.exit_status is not None else -1
    return Outcome("failed", exit_code, [error("ExecutionLogInvalid", detail=clean_text(detail))])


def _exit_of(event: Mapping[str, Any]) -> int:
    """The exit status an event logged; -1 when it logged none (or none bai could use)."""
    value = event.get("exit", -1)
    return value if _is_int(value) and EXIT_MIN <= value <= EXIT_MAX else -1


def _error_of(event: Mapping[str, Any]) -> str:
    """The error code an end event logged, if it is one the script writes; else ''."""
    value = event.get("error")
    return value if isinstance(value, str) and value in SCRIPT_ERRORS else ""


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
    stderr: str = "",
) -> Outcome | None:
    """The outcome of a job that Slurm finished or forgot; None while it is not over.

    `stderr` names the file(s) a failed job's processes wrote their errors to, for its message.
    `events` come from parse_execution_log and `mount_error` is the job's mount-error file:
    both are user-written, so only the script's own error codes count and the text is cleaned
    and capped before it goes into a message.
    """
    if slurm is not None and not slurm.finished:
        return None
    end = next(
        (e for e in reversed(events) if isinstance(e, Mapping) and e.get("event") == "end"), None
    )
    slurm_exit = slurm.exit_status if slurm is not None else None
    state = slurm.state if slurm is not None else ""
    if end is not None:
        code, exit_code = _error_of(end), _exit_of(end)
        if not code and exit_code == 0 and (slurm is None or slurm.state == "COMPLETED"):
            return Outcome("succeeded", 0)
        if terminated:  # asked for: whatever the killed run logged on its way out
            return Outcome("failed", exit_code, [error("JobTerminated")])
        if code in ("VolumeMountFailed", "NodePreparationFailed"):
            return Outcome(
                "failed",
                exit_code,
                [error(code, detail=clean_text(mount_error) or "see the job's execution.log")],
            )
        if code and code != "JobFailed":
            return Outcome("failed", exit_code, [error(code, exit=exit_code, cap=cap, limit=limit)])
        if exit_code != 0 and not terminated and state not in KILLED_BY_SLURM:
            return Outcome("failed", exit_code, [_failed(exit_code, stderr)])
    last_exit: int | None = _exit_of(end) if end is not None else slurm_exit
    if terminated:
        return Outcome("failed", last_exit, [error("JobTerminated")])
    if slurm is None and end is None:
        return Outcome("failed", -1, [error("JobLost")])
    final, ended = SLURM_STATES.get(state, ("failed", "JobFailed"))
    if final == "succeeded":
        return Outcome("succeeded", 0)
    if ended == "MaxWallClockTimeExceeded" and capped:
        ended = "LowPriorityTimeLimitExceeded"
    if ended == "JobCancelled" and cluster_gone:
        ended = "ClusterDeleted"
    if ended in (None, "JobFailed"):  # a live state of a job Slurm forgot: it failed somehow
        code_value = last_exit if last_exit is not None else -1
        return Outcome("failed", code_value, [_failed(code_value, stderr)])
    return Outcome("failed", last_exit, [error(ended, cap=cap, limit=limit)])


def _failed(exit_code: int, stderr: str) -> dict[str, Any]:
    """JobFailed, pointing at the job's stderr when it has one bai knows."""
    details = [("exitCode", str(exit_code))] + ([("stderr", stderr)] if stderr else [])
    why = f" {exit_code}; see {stderr} for why" if stderr else f" {exit_code}"
    return error("JobFailed", details=details, why=why)
