"""What `read_options` reads from a script that comes as text (a job.json job
recorded before bai kept its options): the `#SBATCH` lines, as sbatch reads them, into the
`SlurmOptions` in-process submission takes.

Every job bai submits now gives its options as data (test_slurm_options.py, and
tests/unit/clusters/test_setup_job.py for a node's setup job); the real submissions are compared
with sbatch's on the dev cluster (tests/slurm/test_libslurm.py). These cover the reading of
every job script bai renders, and the refusals.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from adapter.backends.libslurm import parse_time, read_options
from adapter.errors import BackendError
from adapter.jobs.script import render_job
from tests.unit.jobs.test_golden import CASES

GOLDEN = Path(__file__).parents[1] / "jobs" / "golden"
UID = "0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
SPOOL = f"/var/lib/bai/spool/jobs/{UID}"


def test_low_priority_job_script_reads_as_sbatch_would() -> None:
    script = (GOLDEN / "low_priority_capped.sh").read_text()

    sub = read_options(script)

    assert (sub.job_name, sub.partition, sub.nodes) == ("job1", "lowc-6789ab", 1)
    assert (sub.time_minutes, sub.nice, sub.comment) == (1440, 2000, f"bai:{UID}")
    assert (sub.chdir, sub.output, sub.error) == (SPOOL, f"{SPOOL}/slurm.out", None)
    assert (sub.gres, sub.exclusive, sub.requeue) == ("gpu:t4:1", True, True)
    assert (sub.signal_number, sub.signal, sub.signal_seconds) == (signal.SIGUSR1, "USR1", 30)
    assert (sub.nodelist, sub.reservation) == (None, None)


@pytest.mark.parametrize("golden", sorted(p.name for p in GOLDEN.glob("*.sh")))
def test_every_golden_job_script_is_read_whole(golden: str) -> None:
    script = (GOLDEN / golden).read_text()
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]

    sub = read_options(script)

    # Every directive the renderer writes lands in a field (none is silently dropped).
    assert len(directives) == sum(
        value is not None and value is not False
        for value in (
            sub.job_name,
            sub.partition,
            sub.nodes,
            sub.exclusive,
            sub.gres,
            sub.time_minutes,
            sub.nice,
            sub.comment,
            sub.chdir,
            sub.output,
            sub.requeue,
            sub.signal,
        )
    )
    assert sub.exclusive and sub.requeue and sub.nodes in (1, 2)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_job_script_reads_back_as_the_options_it_was_rendered_from(case: str) -> None:
    options, script = render_job(CASES[case]())

    assert read_options(script) == options


def test_directives_after_the_first_command_are_not_read() -> None:
    script = "#!/bin/bash\n\n#SBATCH -p first\n# a note\necho hi\n#SBATCH --partition=later\n"

    assert read_options(script).partition == "first"


def test_short_and_spaced_forms_and_arguments_override_the_script() -> None:
    script = "#!/bin/bash\n#SBATCH -J one -N 2\n#SBATCH --time 1:30:00 # trailing note\ntrue\n"

    sub = read_options(script, ["--job-name=two", "--no-requeue"])

    assert (sub.job_name, sub.nodes, sub.time_minutes, sub.requeue) == ("two", 2, 90, False)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("1440", 1440),
        ("90:30", 91),
        ("25:00:00", 1500),
        ("1-12", 2160),
        ("2-00:30", 2910),
        ("1-00:00:01", 1441),
    ],
)
def test_times_in_every_sbatch_format(text: str, minutes: int) -> None:
    assert parse_time(text) == minutes


@pytest.mark.parametrize(
    ("word", "says"),
    [
        ("--mem=4G", "does not handle the sbatch option '--mem=4G'"),
        ("--time=soon", "--time has a value Slurm would not take"),
        ("--nodes=two", "--nodes has a value Slurm would not take"),
        ("--signal=USR1@30", "--signal has a value Slurm would not take"),
        ("--signal=B:NOPE@30", "--signal has a value Slurm would not take"),
        ("--partition", "--partition needs a value"),
        ("--comment=a#b", "does not read quoted values or '#'"),
        ('--job-name="a b"', "does not read quoted values or '#'"),
    ],
)
def test_options_it_cannot_honour_are_refused_not_dropped(word: str, says: str) -> None:
    with pytest.raises(BackendError) as err:
        read_options(f"#!/bin/bash\n#SBATCH {word}\ntrue\n")

    assert says in str(err.value)
    if "does not" in says:
        assert "slurm.client = 'commands'" in str(err.value)
