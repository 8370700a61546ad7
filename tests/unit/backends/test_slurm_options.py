"""A job's Slurm options as data, and its two renderings: the `#SBATCH` lines sbatch reads
(the command path) and the `job_desc_msg_t` fields libslurm gets (the in-process path).

That the two give the same Slurm job is shown on the dev cluster (tests/slurm/test_libslurm.py).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from adapter.backends import CliBackend, CommandResult
from adapter.backends.libslurm import Libslurm, LibslurmBackend, job_desc_fields
from adapter.backends.slurm_options import SlurmOptions, check_script, script_directives
from adapter.errors import BackendError, InvalidRequest
from adapter.jobs.script import render_job, render_job_script, slurm_options
from tests.unit.jobs.test_golden import CASES

GOLDEN = Path(__file__).parents[1] / "jobs" / "golden"
UID = "0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
SPOOL = f"/var/lib/bai/spool/jobs/{UID}"

LOW = SlurmOptions(
    job_name="job1",
    partition="lowc-6789ab",
    nodes=1,
    exclusive=True,
    gres="gpu:t4:1",
    time_minutes=1440,
    nice=2000,
    comment=f"bai:{UID}",
    chdir=SPOOL,
    output=f"{SPOOL}/slurm.out",
    requeue=True,
    signal="USR1",
    signal_seconds=30,
)
# Slurm's constants, as the binding gives them (slurm.h, 22.05).
LIB = SimpleNamespace(NICE_OFFSET=0x80000000, JOB_SHARED_NONE=0, KILL_JOB_BATCH=1)


def script(options: SlurmOptions, body: str = "true") -> str:
    return "\n".join(["#!/bin/bash", "# a note", *options.directives(), "", body, ""])


# -- the value and its #SBATCH lines -------------------------------------------------------------


def test_a_low_priority_job_is_these_options() -> None:
    assert slurm_options(CASES["low_priority_capped"]()) == LOW


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_golden_scripts_directives_are_their_options_rendered(case: str) -> None:
    options, text = render_job(CASES[case]())
    golden = (GOLDEN / f"{case}.sh").read_text()

    assert text == render_job_script(CASES[case]())
    assert script_directives(golden) == options.directives()
    assert [ln for ln in golden.splitlines() if ln.startswith("#SBATCH")] == options.directives()
    check_script(options, text)


def test_every_option_renders_as_one_sbatch_line_in_a_fixed_order() -> None:
    options = SlurmOptions(
        job_name="j",
        partition="p",
        nodelist="n1",
        reservation="r",
        nodes=2,
        exclusive=True,
        gres="gpu:a100:2",
        time_minutes=90,
        nice=0,
        comment="bai:x",
        chdir="/d",
        output="/d/%j.out",
        error="/d/%j.err",
        requeue=False,
        signal="TERM",
        signal_seconds=0,
    )

    assert options.directives() == [
        "#SBATCH --job-name=j",
        "#SBATCH --partition=p",
        "#SBATCH --nodelist=n1",
        "#SBATCH --reservation=r",
        "#SBATCH --nodes=2",
        "#SBATCH --exclusive",
        "#SBATCH --gres=gpu:a100:2",
        "#SBATCH --time=90",
        "#SBATCH --nice=0",
        "#SBATCH --comment=bai:x",
        "#SBATCH --chdir=/d",
        "#SBATCH --output=/d/%j.out",
        "#SBATCH --error=/d/%j.err",
        "#SBATCH --no-requeue",
        "#SBATCH --signal=B:TERM@0",
    ]
    assert options.signal_number == signal.SIGTERM


def test_no_options_leave_everything_to_slurm() -> None:
    assert SlurmOptions().directives() == [] and SlurmOptions().signal_number is None


def test_options_survive_a_json_record() -> None:
    stored = json.loads(json.dumps(LOW.to_json()))

    assert SlurmOptions.from_json(stored) == LOW
    assert stored["signal"] == "USR1" and stored["time_minutes"] == 1440


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"signal": "SIGUSR1"}, "is not a signal name"),
        ({"signal": "NOPE"}, "is not a signal name"),
        ({"signal": "USR1", "signal_seconds": 70000}, "is not 0 to 65535"),
    ],
)
def test_a_signal_libslurm_could_not_send_is_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        SlurmOptions(**changes)


def test_a_line_break_in_a_value_is_refused_when_rendered() -> None:
    with pytest.raises(InvalidRequest, match="line break"):
        SlurmOptions(comment="a\n#SBATCH --uid=0").directives()


# -- the check that script and options agree ------------------------------------------------------


def test_directives_are_read_up_to_the_first_command() -> None:
    text = "#!/bin/bash\n\n#SBATCH -p a\n# note\n  #SBATCH -N 1\necho\n#SBATCH -p later\n"

    assert script_directives(text) == ["#SBATCH -p a", "  #SBATCH -N 1"]


@pytest.mark.parametrize(
    "text",
    [
        script(LOW).replace("#SBATCH --nice=2000\n", ""),  # a line missing
        script(LOW).replace("# a note", "#SBATCH --mem=1G"),  # one more
        script(LOW).replace("# a note", "#SLURM --mem=1G"),  # sbatch reads #SLURM too
        script(LOW, "#SBATCH --qos=high\ntrue"),  # before the first command: read
        script(LOW).replace("--nodes=1", "--nodes=2"),
        "#!/bin/bash\ntrue\n",
    ],
)
def test_a_script_saying_other_options_is_refused(text: str) -> None:
    with pytest.raises(BackendError, match="are not those of its options"):
        check_script(LOW, text)


def test_a_directive_after_the_first_command_is_the_scripts_business() -> None:
    check_script(LOW, script(LOW, "true\n#SBATCH --qos=high"))


@pytest.mark.parametrize("name", ["my job", "it's", 'a"b', "a#b", "a\\b", "a\tb"])
def test_a_value_sbatch_would_read_otherwise_is_refused(name: str) -> None:
    options = SlurmOptions(job_name=name)

    with pytest.raises(BackendError, match="sbatch would not read --job-name"):
        check_script(options, script(options))


# -- the command path ------------------------------------------------------------------------------


class SbatchRunner:
    """Answers sbatch as Slurm does; records what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], str | None, str | None]] = []

    async def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        stdin: str | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        self.calls.append((tuple(argv), user, stdin))
        return CommandResult(tuple(argv), 0, "4242\n", "")

    async def read_text(self, path: str) -> str | None:
        return None

    async def write_text(
        self, path: str, text: str, mode: int = 0o644, owner: str | None = None
    ) -> None:
        raise AssertionError("not used")

    async def remove(self, path: str) -> None:
        raise AssertionError("not used")


async def test_the_command_path_gives_sbatch_the_script_that_carries_the_options() -> None:
    runner = SbatchRunner()
    text = script(LOW)

    job_id = await CliBackend(runner).submit_job(LOW, text, user="alice")

    assert job_id == 4242
    assert runner.calls == [(("sbatch", "--parsable"), "alice", text)]


async def test_the_command_path_runs_no_sbatch_for_a_script_that_disagrees() -> None:
    runner = SbatchRunner()

    with pytest.raises(BackendError):
        await CliBackend(runner).submit_job(LOW, script(SlurmOptions()), user="alice")
    assert runner.calls == []


# -- the in-process path ---------------------------------------------------------------------------


def test_the_in_process_path_fills_the_fields_sbatch_fills() -> None:
    assert job_desc_fields(LOW, LIB) == {
        "name": "job1",
        "partition": "lowc-6789ab",
        "comment": f"bai:{UID}",
        "work_dir": SPOOL,
        "std_out": f"{SPOOL}/slurm.out",
        "min_nodes": 1,
        "max_nodes": 1,
        "time_limit": 1440,
        "nice": 0x80000000 + 2000,
        "shared": 0,
        "requeue": 1,
        "tres_per_node": "gres:gpu:t4:1",
        "warn_signal": int(signal.SIGUSR1),
        "warn_time": 30,
        "warn_flags": 1,
    }


def test_the_in_process_path_fills_node_reservation_error_and_no_requeue() -> None:
    options = SlurmOptions(
        nodelist="gpu-t4-1", reservation="r", error="/e", requeue=False, gres="gpu:1,mps:50"
    )

    assert job_desc_fields(options, LIB) == {
        "req_nodes": "gpu-t4-1",
        "reservation": "r",
        "std_err": "/e",
        "requeue": 0,
        "tres_per_node": "gres:gpu:1,gres:mps:50",
    }
    assert job_desc_fields(SlurmOptions(), LIB) == {}


class RecordingLibslurm:
    """Stands for the loaded binding: what it was asked to submit."""

    def __init__(self) -> None:
        self.submitted: list[tuple[SlurmOptions, str, str]] = []

    def submit(self, options: SlurmOptions, script: str, user: str) -> int:
        self.submitted.append((options, script, user))
        return 7


def in_process() -> tuple[LibslurmBackend, RecordingLibslurm, SbatchRunner]:
    lib, runner = RecordingLibslurm(), SbatchRunner()
    return LibslurmBackend(runner, cast(Libslurm, lib)), lib, runner


async def test_the_in_process_path_takes_the_options_as_they_are() -> None:
    backend, lib, runner = in_process()
    text = script(LOW)

    assert await backend.submit_job(LOW, text, user="alice") == 7
    assert lib.submitted == [(LOW, text, "alice")] and runner.calls == []


async def test_the_in_process_path_refuses_a_script_that_disagrees_before_slurm_hears() -> None:
    backend, lib, _ = in_process()

    with pytest.raises(BackendError):
        await backend.submit_job(LOW, script(LOW).replace("2000", "0"), user="alice")
    assert lib.submitted == []


async def test_a_script_that_comes_as_text_is_read_for_its_options() -> None:
    backend, lib, _ = in_process()
    text = script(LOW)

    await backend.submit(text, user="bob", args=["--job-name=other"])

    assert lib.submitted == [(replace(LOW, job_name="other"), text, "bob")]
