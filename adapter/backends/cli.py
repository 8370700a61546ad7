"""`CliBackend`: Slurm through its command-line tools, run by a `Runner`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from adapter.backends import partition_conf
from adapter.backends.base import SLURM_NAME, PartitionSpec, SlurmJob, SlurmNode, SlurmPartition
from adapter.backends.runner import CommandResult, Runner
from adapter.backends.slurm_options import SlurmOptions, check_script
from adapter.backends.slurm_output import (
    is_unavailable,
    nodes_argv,
    parse_nodes_json,
    parse_sbatch_parsable,
    parse_scontrol_partitions,
    parse_squeue_json,
    parse_version,
)
from adapter.errors import BackendError, BackendUnavailable

T = TypeVar("T")

DEFAULT_INCLUDE = "/etc/slurm/bai/partitions.conf"

# scancel/scontrol phrases meaning "that job is already gone or done": cancel is idempotent.
_JOB_GONE = ("Invalid job id specified", "already completing or completed", "Job/step already")
_PARTITION_GONE = "Invalid partition name specified"
_RESERVATION_EXISTS = ("Duplicate reservation name", "overlaps with another reservation")
_RESERVATION_GONE = ("Requested reservation is invalid",)
_NOT_DRAINED = ("Invalid node state specified",)


class CliBackend:
    """Slurm via sbatch, scancel, scontrol, squeue and sinfo (argv lists only)."""

    def __init__(self, runner: Runner, *, include_path: str = DEFAULT_INCLUDE) -> None:
        self.runner = runner
        self.include_path = include_path
        # Partition edits are read-modify-write of one file: one at a time.
        self._include_lock = asyncio.Lock()
        self._release: tuple[int, int] | None = None

    async def _run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        stdin: str | None = None,
        ok_if: Sequence[str] = (),
    ) -> CommandResult:
        result = await self.runner.run(argv, user=user, stdin=stdin)
        # Slurm sometimes reports failure on stderr with exit code 0, so read both.
        failed = result.returncode != 0 or "error:" in result.stderr.lower()
        if not failed or any(phrase in result.stderr for phrase in ok_if):
            return result
        error = BackendUnavailable if is_unavailable(result.stderr) else BackendError
        first = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no message"
        raise error(
            f"{argv[0]} failed: {first}",
            argv=argv,
            returncode=result.returncode,
            stderr=result.stderr,
        )

    async def submit_job(self, options: SlurmOptions, script: str, *, user: str) -> int:
        check_script(options, script)  # sbatch reads the options from those lines
        return await self.submit(script, user=user)

    async def submit(self, script: str, *, user: str, args: Sequence[str] = ()) -> int:
        result = await self._run(["sbatch", "--parsable", *args], user=user, stdin=script)
        return parse_sbatch_parsable(result.stdout)

    async def cancel(self, job_id: int) -> None:
        await self._run(["scancel", str(job_id)], ok_if=_JOB_GONE)

    async def requeue(self, job_id: int) -> None:
        await self._run(["scontrol", "requeue", str(job_id)])

    async def _json(self, argv: Sequence[str], parse: Callable[[str], list[T]]) -> list[T]:
        result = await self._run(argv)
        try:
            return parse(result.stdout)
        except BackendError as exc:
            # With slurmctld down, squeue/sinfo --json exit 0, print nothing on stderr and put an
            # "Unspecified error" in the JSON: ask the controller whether it is there at all.
            ping = await self.runner.run(["scontrol", "ping"])
            if ping.returncode != 0 or "is UP" not in ping.stdout:
                said = ping.stdout.strip().splitlines() or ["no answer"]
                raise BackendUnavailable(
                    f"slurmctld is not answering ({said[0]})",
                    argv=argv,
                    returncode=result.returncode,
                    stderr=result.stderr,
                ) from exc
            raise BackendError(exc.reason, argv=argv, returncode=result.returncode) from exc

    async def jobs(self, partitions: Collection[str]) -> list[SlurmJob]:
        # One command for every partition, filtered here: squeue --json on 22.05 ignores -p and
        # -t and prints every job it remembers; from 23.02 it honours them, so it is asked for
        # every state (finished jobs included) and 22.05 ignores that too.
        wanted = set(partitions)
        jobs = await self._json(["squeue", "--json", "--states=all"], parse_squeue_json)
        return [job for job in jobs if job.partition in wanted]

    async def release(self) -> tuple[int, int]:
        """The Slurm release the commands are from, (major, minor), asked once."""
        if self._release is None:
            self._release = parse_version((await self._run(["sinfo", "--version"])).stdout)
        return self._release

    async def nodes(self) -> list[SlurmNode]:
        return await self._json(nodes_argv(await self.release()), parse_nodes_json)

    async def partitions(self) -> list[SlurmPartition]:
        result = await self._run(["scontrol", "show", "partition", "-o"])
        return parse_scontrol_partitions(result.stdout)

    async def apply_partition(self, spec: PartitionSpec) -> None:
        async with self._include_lock:
            # File first: a partition that exists only live vanishes on a slurmctld restart.
            text = await self.runner.read_text(self.include_path) or ""
            updated = partition_conf.upsert_partition(text, spec)
            if updated != text:
                await self.runner.write_text(self.include_path, updated)
            words = partition_conf.partition_words(spec, live=True)
            try:
                await self._run(["scontrol", "update", *words])
            except BackendError as exc:
                if isinstance(exc, BackendUnavailable) or _PARTITION_GONE not in exc.stderr:
                    raise
                await self._run(["scontrol", "create", *words])

    async def configured_partitions(self) -> list[str]:
        return partition_conf.partition_names(await self.runner.read_text(self.include_path) or "")

    async def remove_partition(self, name: str) -> None:
        if not SLURM_NAME.match(name):
            raise BackendError(f"{name!r} is not a valid Slurm partition name")
        async with self._include_lock:
            # Live first: Slurm refuses to delete a partition that still has jobs, and then the
            # file must keep it, or the next restart would kill those jobs.
            await self._run(
                ["scontrol", "delete", f"PartitionName={name}"], ok_if=(_PARTITION_GONE,)
            )
            text = await self.runner.read_text(self.include_path) or ""
            updated = partition_conf.drop_partition(text, name)
            if updated != text:
                await self.runner.write_text(self.include_path, updated)

    async def reserve_node(self, name: str, node: str, user: str) -> None:
        for value in (name, node):
            if not SLURM_NAME.match(value):
                raise BackendError(f"{value!r} is not a valid Slurm name")
        await self._run(
            [
                "scontrol",
                "create",
                "reservation",
                f"ReservationName={name}",
                f"Nodes={node}",
                f"Users={user}",
                "StartTime=now",
                "Duration=infinite",
                "Flags=IGNORE_JOBS",
            ],
            ok_if=_RESERVATION_EXISTS,
        )

    async def release_reservation(self, name: str) -> None:
        await self._run(["scontrol", "delete", f"ReservationName={name}"], ok_if=_RESERVATION_GONE)

    async def drain_node(self, node: str, reason: str) -> None:
        await self._run(
            ["scontrol", "update", f"NodeName={node}", "State=DRAIN", f"Reason={reason}"]
        )

    async def resume_node(self, node: str) -> None:
        await self._run(
            ["scontrol", "update", f"NodeName={node}", "State=RESUME"], ok_if=_NOT_DRAINED
        )
