"""How a job ended: its execution.log and what Slurm still says (pure)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest

from adapter.backends.base import SlurmJob
from adapter.jobs.outcome import (
    EXIT_MAX,
    EXIT_MIN,
    MESSAGES,
    ExecutionLogInvalid,
    Outcome,
    decide,
    execution_runs,
    invalid_log_outcome,
    parse_execution_log,
    preempted_runs,
)
from adapter.jobs.script import helper_lines
from tests.unit.clusters.factories import job

CAP = "24 hours"
LIMIT = "7 days"


def slurm(state: str, exit_status: int | None = None) -> SlurmJob:
    return job(42, "c1-012345", state, ("n1",), exit_status=exit_status, comment="bai:x")


def ev(event: str, run: object = 0, **fields: Any) -> dict[str, Any]:
    return {"time": "2026-01-01T00:00:00Z", "event": event, "run": run, **fields}


def end(exit_code: object, error: str = "", **fields: Any) -> dict[str, Any]:
    return ev("end", exit=exit_code, error=error, **fields)


def decided(
    job: SlurmJob | None,
    events: list[dict[str, Any]],
    *,
    terminated: bool = False,
    cluster_gone: bool = False,
    capped: bool = False,
    mount_error: str = "",
) -> Outcome | None:
    """decide() with this file's cap and limit, and no terminate, deleted cluster or cap
    unless a test asks for one."""
    return decide(
        job,
        events,
        terminated=terminated,
        cluster_gone=cluster_gone,
        capped=capped,
        cap=CAP,
        limit=LIMIT,
        mount_error=mount_error,
    )


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
    outcome = decided(
        case.slurm,
        case.events,
        terminated=case.terminated,
        cluster_gone=case.cluster_gone,
        capped=case.capped,
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
    assert decided(slurm(state), events, terminated=True, cluster_gone=True) is None


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


@pytest.mark.parametrize(
    ("events", "first", "after", "expected"),
    [
        # run 0 preempted, run 1 running: one preemption, found though run 1 logged since
        ([ev("start"), ev("notice", signal="USR1"), ev("start", run=1)], 0, 1, 1),
        # two preempted runs, counted once each (a run's notice may come twice)
        (
            [ev("start"), ev("notice"), ev("notice"), ev("start", run=1), ev("notice", run=1)],
            0,
            2,
            2,
        ),
        # only the runs in the window: run 0 was counted before
        ([ev("start"), ev("notice"), ev("start", run=1), ev("notice", run=1)], 1, 2, 1),
        # a requeue with no notice (scontrol requeue, a node failure) is no preemption
        ([ev("start"), ev("start", run=1)], 0, 1, 0),
        # the running run's notice (a signal before its time limit) is not a preemption
        ([ev("start"), ev("start", run=1), ev("notice", run=1)], 0, 1, 0),
    ],
)
def test_preempted_runs_are_found_in_every_run_of_the_log(
    events: list[dict[str, Any]], first: int, after: int, expected: int
) -> None:
    assert preempted_runs(execution_runs(lines(*events)), first, after) == expected


def test_execution_runs_split_at_each_start() -> None:
    text = lines(ev("job_prep", exit=0), ev("start"), ev("start", run=1), end(0, run=1))
    assert execution_runs(text) == [
        [ev("job_prep", exit=0)],  # before any start (garbage the user wrote, say)
        [ev("start")],
        [ev("start", run=1), end(0, run=1)],
    ]
    assert execution_runs("") == [[]]


def test_requeued_job_uses_only_the_last_run() -> None:
    # Run 0 was preempted after logging a failure-looking end; run 1 succeeded.
    text = lines(START, end(143, "JobFailed"), ev("start", run=1, nodes=1), end(0))
    outcome = decided(slurm("COMPLETED", 0), parse_execution_log(text))
    assert outcome == Outcome("succeeded", 0)


def test_truncated_end_line_falls_back_to_slurm() -> None:
    text = lines(START) + '{"time":"2026-01-01T00:00:00Z","event":"end","exit":0,"err'
    events = parse_execution_log(text)
    assert events == [START]
    outcome = decided(slurm("TIMEOUT"), events, capped=True)
    assert outcome is not None
    assert [e["code"] for e in outcome.errors] == ["LowPriorityTimeLimitExceeded"]


def test_log_written_by_the_rendered_helpers_is_parsed() -> None:
    """The JSON the script's bai_log/bai_end print is what parse_execution_log reads."""
    helpers = [
        line
        for line in helper_lines()
        if not line.startswith(("trap ", "mapfile ", "bai_log start"))
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


# -- a hostile execution.log (the job's user can write anything there)


def raw(*objects: object) -> str:
    """Lines of JSON exactly as given (not necessarily objects, not necessarily valid events)."""
    return "".join(json.dumps(o) + "\n" for o in objects)


@dataclass(frozen=True)
class Hostile:
    text: str
    events: list[dict[str, Any]] | None = None  # what it parses to; None when it is invalid
    invalid: tuple[str, ...] = ()  # parts of the ExecutionLogInvalid message


BIG = 1024 * 1024
HOSTILE: dict[str, Hostile] = {
    "empty": Hostile("", []),
    "only newlines": Hostile("\n\n\r\n", []),
    "exit is a string": Hostile(
        raw(START, ev("job_prep", exit=0), end("abc")),
        invalid=("line 3: exit is 'abc', not an integer",),
    ),
    "exit is a float": Hostile(
        raw(START, end(1.5)),
        invalid=("line 2: exit is 1.5, not an integer",),
    ),
    "exit is a bool": Hostile(
        raw(START, end(True)), invalid=("line 2: exit is true, not an integer",)
    ),
    "exit is null": Hostile(
        raw(START, end(None)),
        invalid=("line 2: exit is null, not an integer",),
    ),
    "exit is a list": Hostile(
        raw(START, end([0])),
        invalid=("line 2: exit is a list, not an integer",),
    ),
    "exit is NaN": Hostile(
        json.dumps(START) + '\n{"event":"end","exit":NaN,"error":""}\n',
        invalid=("line 2: exit is nan, not an integer",),
    ),
    "exit is a huge integer": Hostile(
        raw(START, end(10**30)), invalid=("line 2: exit is 10000000000", "not an integer in")
    ),
    "exit just out of 32 bits": Hostile(raw(START, end(2**31)), invalid=("line 2: exit is",)),
    "exit at the 32-bit bounds": Hostile(
        raw(end(2**31 - 1), end(-(2**31))), [end(2**31 - 1), end(-(2**31))]
    ),
    "exit of more digits than Python parses: the line is skipped": Hostile(
        json.dumps(START) + '\n{"event":"end","exit":' + "9" * 5000 + "}\n", [START]
    ),
    "error is not a string": Hostile(
        raw(START, ev("end", exit=1, error=7)), invalid=("line 2: error is 7, not a string",)
    ),
    "error is an object": Hostile(
        raw(START, ev("end", exit=1, error={"code": "x"})),
        invalid=("line 2: error is an object, not a string",),
    ),
    "error with a space and a newline": Hostile(
        raw(START, end(1, "Job Failed\n")),
        invalid=("line 2: error is 'Job Failed\\n', not a word",),
    ),
    "error with non-ASCII letters": Hostile(
        raw(START, end(1, "JobFailéd")), invalid=("line 2: error is 'JobFailéd'",)
    ),
    "error of 65 letters": Hostile(
        raw(START, end(1, "A" * 65)), invalid=("line 2: error is 'AAAA", "at most 64")
    ),
    "error of 64 letters is a word": Hostile(raw(end(1, "A" * 64)), [end(1, "A" * 64)]),
    "event is not a string": Hostile(
        raw(START, {"event": 1, "exit": 0}), invalid=("line 2: event is 1, not a string",)
    ),
    "event is missing": Hostile(raw({"exit": 0}), invalid=("line 1: event is missing",)),
    "run is a string": Hostile(
        raw(ev("start", run="0")),
        invalid=("line 1: run is '0', not an integer",),
    ),
    "nodes is a bool": Hostile(
        raw(ev("start", nodes=False)), invalid=("line 1: nodes is false, not an integer",)
    ),
    "signal is a number": Hostile(
        raw(START, ev("signal", signal=15)), invalid=("line 2: signal is 15",)
    ),
    "signal is long": Hostile(
        raw(START, ev("signal", signal="T" * 100)),
        invalid=("line 2: signal is 'TTTT", "...", "at most 16"),
    ),
    "detail is not a string": Hostile(
        raw(START, end(1, "VolumeMountFailed", detail=["x"])),
        invalid=("line 2: detail is a list, not a string",),
    ),
    "a wrong field in an earlier run still makes the log invalid": Hostile(
        raw(end("x"), START, end(0)),
        invalid=("line 1: exit is 'x'",),
    ),
    "lines that are JSON but not objects are skipped": Hostile(
        raw([], 3, "x", None, True, [START]) + lines(START, end(0)), [START, end(0)]
    ),
    "binary garbage": Hostile(b"\x00\xff\xfe\n\x89PNG\r\n\x1a\n".decode(errors="replace"), []),
    "binary garbage around real events": Hostile(
        b"\x00\xff\n".decode(errors="replace") + lines(START, end(0)) + "\x00\ufffd",
        [START, end(0)],
    ),
    "a 1 MB line of garbage": Hostile("x" * BIG + "\n" + lines(START), [START]),
    "a 1 MB line of nesting deeper than the parser goes": Hostile(
        "[" * BIG + "\n" + "{" * (BIG // 2) + "\n" + lines(START), [START]
    ),
    "a 1 MB detail is cut to 500 characters": Hostile(
        lines(START, end(1, "VolumeMountFailed", detail="d" * BIG)),
        [START, end(1, "VolumeMountFailed", detail="d" * 500)],
    ),
    "a 1 MB exit string is quoted briefly": Hostile(
        raw(START, end("7" * BIG)),
        invalid=("line 2: exit is '7777", "'..., not an integer"),
    ),
    "an error code bai does not write is kept as data": Hostile(
        raw(START, end(0, "ExecutionLogInvalid")), [START, end(0, "ExecutionLogInvalid")]
    ),
    "extra fields are kept": Hostile(
        raw(START, end(0, extra={"a": [1]})), [START, end(0, extra={"a": [1]})]
    ),
    "a line separator inside a string does not split the line": Hostile(
        raw(START, end(1, "JobFailed", detail="a\u2028b\x85c")),
        [START, end(1, "JobFailed", detail="a\u2028b\x85c")],
    ),
}


def decide_all_ways(events: list[dict[str, Any]]) -> None:
    """decide() gives an outcome for these events, whatever Slurm says and whatever the flags."""
    slurms = [None] + [
        slurm(state, code)
        for state in ("COMPLETED", "FAILED", "TIMEOUT", "NODE_FAIL", "CANCELLED", "OUT_OF_MEMORY")
        for code in (None, 0, 1)
    ]
    for s in slurms:
        for terminated, cluster_gone, capped in [(False, False, False), (True, True, True)]:
            outcome = decided(
                s,
                events,
                terminated=terminated,
                cluster_gone=cluster_gone,
                capped=capped,
                mount_error="x\n" * 3000,
            )
            assert outcome is not None
            assert outcome.state in {"succeeded", "failed"}
            assert outcome.exit_code is None or EXIT_MIN <= outcome.exit_code <= EXIT_MAX
            for e in outcome.errors:
                assert e["code"] in MESSAGES
                assert "{" not in e["message"] and len(e["message"]) < 1000


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_execution_log_parses_or_is_invalid(name: str) -> None:
    case = HOSTILE[name]
    if case.events is None:
        with pytest.raises(ExecutionLogInvalid) as raised:
            parse_execution_log(case.text)
        message = str(raised.value)
        for part in case.invalid:
            assert part in message
        assert len(message) < 200 and message.isprintable()
        # What the service then records for the job is a complete, bounded message.
        outcome = invalid_log_outcome(slurm("COMPLETED", 0), message)
        assert outcome.errors[0]["message"].count(message) == 1
        return
    events = parse_execution_log(case.text)
    assert events == case.events
    decide_all_ways(events)


# Events parse_execution_log can return that the script would not write: decide() copes.
ODD_EVENTS: dict[str, list[dict[str, Any]]] = {
    "no events": [],
    "an end without exit or error": [START, {"event": "end"}],
    "an end whose error needs placeholders bai does not pass": [
        START,
        end(1, "ExecutionLogInvalid"),
        end(1, "VolumeMountFailed"),
    ],
    "an end whose error is another outcome's code": [START, end(0, "ClusterDeleted")],
    "an end whose error is an unknown word": [START, end(7, "Gibberish")],
    "an end with exit 0 and an error": [START, end(0, "JobPreparationFailed")],
    "the 32-bit bounds": [START, end(-(2**31), "JobFailed")],
    "several ends": [START, end(0), end(1, "JobFailed"), end(2**31 - 1)],
    "events without a start": [ev("notice", signal="USR1"), ev("weird", nodes=-5)],
}


@pytest.mark.parametrize("name", list(ODD_EVENTS))
def test_decide_copes_with_any_parsed_log(name: str) -> None:
    events = ODD_EVENTS[name]
    assert parse_execution_log(lines(*events)) == events  # the parser lets them through
    decide_all_ways(events)


def test_only_the_scripts_own_error_codes_are_reported() -> None:
    outcome = decided(slurm("FAILED", 1), [START, end(1, "ExecutionLogInvalid")])
    assert outcome is not None
    assert [e["code"] for e in outcome.errors] == ["JobFailed"]


def test_mount_error_is_cleaned_and_capped() -> None:
    mount_error = "\n\t first\r\nsecond\x00\x1b[31mred\x7f\x85\u2028\u202eevil\ud800 " + "z" * 5000
    outcome = decided(
        slurm("FAILED", 1),
        [START, end(1, "VolumeMountFailed")],
        mount_error=mount_error,
    )
    assert outcome is not None
    message = outcome.errors[0]["message"]
    detail = message.removeprefix("A volume could not be mounted: ")
    assert detail.startswith("first  second  [31mred    evil  zzz")
    assert len(detail) == 500 and detail.endswith("z")
    assert message.isprintable()
    message.encode()  # no lone surrogate left


def test_a_mount_error_of_only_control_characters_falls_back() -> None:
    outcome = decided(
        slurm("FAILED", 1),
        [START, end(1, "VolumeMountFailed")],
        mount_error="\n\x00\r\t\x1b",
    )
    assert outcome is not None
    assert "see the job's execution.log" in outcome.errors[0]["message"]


@pytest.mark.parametrize(
    ("job", "exit_code"),
    [(None, -1), (slurm("COMPLETED"), -1), (slurm("COMPLETED", 0), 0), (slurm("FAILED", 3), 3)],
)
def test_invalid_log_outcome(job: SlurmJob | None, exit_code: int) -> None:
    outcome = invalid_log_outcome(job, "a symlink, not a regular file")
    assert outcome == Outcome(
        "failed",
        exit_code,
        [
            {
                "code": "ExecutionLogInvalid",
                "message": "bai could not use the job's execution log (a symlink, not a regular "
                "file); the job's own processes changed or replaced it, so its outcome is "
                "unknown",
                "details": None,
            }
        ],
    )


def test_invalid_log_outcome_cleans_its_detail() -> None:
    outcome = invalid_log_outcome(None, "bad\nline\x00" + "x" * 5000)
    message = outcome.errors[0]["message"]
    assert "(bad line x" in message and message.isprintable() and len(message) < 700


def test_a_failed_job_names_the_file_that_says_why() -> None:
    """A job's own failure points at its stderr, from the script's end record or from Slurm's
    exit status alone; without a known file the message is Batch AI's."""
    where = "/mnt/afs/sub/rg/jobs/job1/u/stdouterr/stderr.txt"
    for slurm_job, events in (
        (slurm("FAILED", 2), [START, end(2, "JobFailed")]),
        (slurm("FAILED", 2), [START]),
    ):
        outcome = decide(
            slurm_job,
            events,
            terminated=False,
            cluster_gone=False,
            capped=False,
            cap="24h",
            limit="7d",
            stderr=where,
        )
        assert outcome is not None and outcome.errors is not None
        [err] = outcome.errors
        assert err["code"] == "JobFailed"
        assert err["message"] == f"Job failed with non-zero exit code 2; see {where} for why"
        assert {"name": "stderr", "value": where} in err["details"]
    plain = decide(
        slurm("FAILED", 2),
        [START, end(2, "JobFailed")],
        terminated=False,
        cluster_gone=False,
        capped=False,
        cap="24h",
        limit="7d",
    )
    assert plain is not None and plain.errors is not None
    assert plain.errors[0]["message"] == "Job failed with non-zero exit code 2"


def test_one_table_maps_every_slurm_state() -> None:
    """Every state Slurm ends a job in has its Batch AI outcome, every other is queued or
    running, and the states Slurm kills in are those whose error is not the job's own."""
    from adapter.backends.base import TERMINAL_JOB_STATES
    from adapter.jobs.outcome import KILLED_BY_SLURM, SLURM_STATES, live_state

    finals = {s for s, (state, _) in SLURM_STATES.items() if state in ("succeeded", "failed")}
    assert finals == TERMINAL_JOB_STATES
    assert {
        "TIMEOUT",
        "NODE_FAIL",
        "BOOT_FAIL",
        "CANCELLED",
        "PREEMPTED",
        "DEADLINE",
    } == KILLED_BY_SLURM
    assert [live_state(s) for s in ("PENDING", "REQUEUED", "RUNNING", "COMPLETING")] == [
        "queued",
        "queued",
        "running",
        "running",
    ]
    assert live_state("A_STATE_FROM_A_NEWER_SLURM") == "running"
    for state in TERMINAL_JOB_STATES:
        outcome = decided(slurm(state, 1), [START])
        assert outcome is not None and outcome.state == SLURM_STATES[state][0], state
        if outcome.state == "failed":
            assert outcome.errors[0]["code"] == SLURM_STATES[state][1], state
