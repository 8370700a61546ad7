"""CliBackend's error handling, with a runner replaying recorded Slurm output.

The same code paths run against the real cluster in tests/slurm; this covers the answers that
are hard to provoke there on demand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from adapter.backends import CliBackend, CommandResult
from adapter.backends.slurm_output import nodes_argv
from adapter.errors import BackendError, BackendUnavailable

REC = Path(__file__).parents[2] / "fixtures" / "slurm-22.05"


class ReplayRunner:
    def __init__(self, answers: dict[str, tuple[int, str, str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, ...]] = []
        self.files: dict[str, str] = {}

    async def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        stdin: str | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        self.calls.append(tuple(argv))
        rc, out, err = self.answers[" ".join(argv[:2])]
        return CommandResult(tuple(argv), rc, out, err)

    async def read_text(self, path: str) -> str | None:
        return self.files.get(path)

    async def write_text(
        self, path: str, text: str, mode: int = 0o644, owner: str | None = None
    ) -> None:
        self.files[path] = text

    async def remove(self, path: str) -> None:
        self.files.pop(path, None)


async def test_json_errors_with_controller_down_are_unavailable() -> None:
    runner = ReplayRunner(
        {
            "squeue --json": (0, (REC / "squeue_controller_down.json").read_text(), ""),
            "scontrol ping": (1, "Slurmctld(primary) at vm is DOWN\n", ""),
        }
    )
    with pytest.raises(BackendUnavailable, match="slurmctld is not answering"):
        await CliBackend(runner).jobs(["p"])


async def test_json_errors_with_controller_up_are_backend_errors() -> None:
    runner = ReplayRunner(
        {
            "squeue --json": (0, (REC / "squeue_controller_down.json").read_text(), ""),
            "scontrol ping": (0, "Slurmctld(primary) at vm is UP\n", ""),
        }
    )
    with pytest.raises(BackendError) as err:
        await CliBackend(runner).jobs(["p"])
    assert not isinstance(err.value, BackendUnavailable)


async def test_refusal_carries_argv_exit_code_and_stderr() -> None:
    stderr = (REC / "sbatch_time_limit.stderr").read_text()
    runner = ReplayRunner({"sbatch --parsable": (1, "", stderr)})
    with pytest.raises(BackendError) as err:
        await CliBackend(runner).submit("#!/bin/bash\n", user="alice")
    assert not isinstance(err.value, BackendUnavailable)
    assert err.value.argv == ("sbatch", "--parsable") and err.value.returncode == 1
    assert "Requested time limit is invalid" in str(err.value)


async def test_error_on_stderr_with_exit_zero_is_still_an_error() -> None:
    runner = ReplayRunner(
        {"scontrol requeue": (0, "", "scontrol: error: Job is not requeueable\n")}
    )
    with pytest.raises(BackendError, match="not requeueable"):
        await CliBackend(runner).requeue(5)


async def test_cancel_of_a_finished_job_is_not_an_error() -> None:
    runner = ReplayRunner(
        {
            "scancel 7": (
                0,
                "",
                "scancel: error: Kill job error on job id 7: "
                "Job/step already completing or completed\n",
            )
        }
    )
    await CliBackend(runner).cancel(7)


async def test_remove_keeps_the_file_line_when_slurm_refuses() -> None:
    runner = ReplayRunner(
        {"scontrol delete": (1, "", "delete_partition PartitionName=p: Partition is in use\n")}
    )
    backend = CliBackend(runner, include_path="/inc")
    runner.files["/inc"] = "PartitionName=p Nodes=n1 State=UP\n"
    with pytest.raises(BackendError, match="in use"):
        await backend.remove_partition("p")
    assert "PartitionName=p" in runner.files["/inc"]


@pytest.mark.parametrize(
    ("release", "version", "command", "fixture", "first"),
    [
        ("22.05", "slurm-wlm 22.05.8\n", "sinfo --json", "sinfo.json", "gpu-a100-1"),
        ("24.11", "slurm 24.11.5\n", "scontrol show", "scontrol_show_nodes.json", "n24-a100-1"),
    ],
)
async def test_nodes_are_listed_with_the_release_s_command_and_its_version_asked_once(
    release: str, version: str, command: str, fixture: str, first: str
) -> None:
    listing = (REC.parent / f"slurm-{release}" / fixture).read_text()
    runner = ReplayRunner({"sinfo --version": (0, version, ""), command: (0, listing, "")})
    backend = CliBackend(runner)
    for _ in range(2):
        assert (await backend.nodes())[0].name == first
    assert [c for c in runner.calls if c[:2] == ("sinfo", "--version")] == [("sinfo", "--version")]
    assert runner.calls.count(tuple(nodes_argv(await backend.release()))) == 2
