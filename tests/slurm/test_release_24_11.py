"""bai's command backend against a real Slurm 24.11 (Debian 13's), beside the dev cluster's
22.05: the cluster of tests/fixtures/slurm-24.11/cluster.sh, three nodes in a Debian 13 root on
this host, brought up here if it is not running (debootstrap the first time: about a minute).

Its programs need Debian 13's C library, so the backend's argv run inside that root (chroot);
everything else is the backend as the service uses it. A subset of the contract suite: the
release it detects, its node list, a partition made and removed through the include file, a
job with every option bai submits, a failing job's exit code, a cancelled job.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from adapter.backends import CliBackend, LocalRunner, PartitionSpec
from adapter.backends.runner import CommandResult
from adapter.backends.slurm_options import SlurmOptions
from tests.slurm.conftest import remove_partitions, wait_job

pytestmark = pytest.mark.slurm

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "slurm-24.11"
ROOT = "/var/tmp/bai-trixie"
INCLUDE = "/etc/slurm/bai-partitions.conf"


class RootRunner(LocalRunner):
    """The local runner, each command run inside the Debian 13 root, files written there."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        stdin: str | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        switch = ["runuser", "-u", user, "--"] if user else []
        done = await super().run(["chroot", ROOT, *switch, *argv], stdin=stdin, timeout=timeout)
        return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)

    async def read_text(self, path: str) -> str | None:
        return await super().read_text(ROOT + path)

    async def write_text(
        self, path: str, text: str, mode: int = 0o644, owner: str | None = None
    ) -> None:
        await super().write_text(ROOT + path, text, mode, owner)


@pytest.fixture(scope="module")
def slurm_24_11() -> Iterator[None]:
    up = subprocess.run([str(HERE / "cluster.sh"), "up"], capture_output=True, text=True)
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    yield


@pytest.fixture
def backend(slurm_24_11: None) -> CliBackend:
    return CliBackend(RootRunner(), include_path=INCLUDE)


async def test_the_backend_runs_a_24_11_cluster(backend: CliBackend) -> None:
    assert await backend.release() == (24, 11)
    nodes = {n.name: n for n in await backend.nodes()}
    assert sorted(nodes) == ["n24-1", "n24-2", "n24-3"]
    assert all(n.gpu_type == "t4" and n.gpus == 1 and n.cpus == 2 for n in nodes.values())

    part = f"t-{uuid.uuid4().hex[:8]}"
    spec = PartitionSpec(
        name=part,
        nodes=("n24-1", "n24-2"),
        max_time_minutes=60,
        priority_tier=1,
        preempt_mode="REQUEUE",
    )
    await backend.apply_partition(spec)
    try:
        (shown,) = [p for p in await backend.partitions() if p.name == part]
        assert (shown.nodes, shown.max_time, shown.preempt_mode) == (
            ("n24-1", "n24-2"),
            "01:00:00",
            "REQUEUE",
        )
        assert part in await backend.configured_partitions()

        def job(name: str, body: str) -> tuple[SlurmOptions, str]:
            options = SlurmOptions(
                job_name=name,
                partition=part,
                nodes=1,
                exclusive=True,
                gres="gpu:t4:1",
                time_minutes=5,
                nice=10,
                comment=f"bai:{name}",
                chdir="/tmp",
                output="/dev/null",
                requeue=True,
                signal="USR1",
                signal_seconds=60,
            )
            return options, "\n".join(["#!/bin/bash", *options.directives(), body, ""])

        ok = await backend.submit_job(*job("ok", "true"), user="alice")
        fails = await backend.submit_job(*job("fails", "exit 3"), user="alice")
        held = await backend.submit_job(*job("held", "sleep 300"), user="bob")
        done = await wait_job(backend, ok, part, lambda j: j.finished)
        assert (done.state, done.exit_status, done.user, done.comment) == (
            "COMPLETED",
            0,
            "alice",
            "bai:ok",
        )
        assert done.time_limit_minutes == 5 and done.requeue and len(done.nodes) == 1
        assert done.start_time is not None and done.end_time is not None
        failed = await wait_job(backend, fails, part, lambda j: j.finished)
        assert (failed.state, failed.exit_status) == ("FAILED", 3)
        await backend.cancel(held)
        cancelled = await wait_job(backend, held, part, lambda j: j.finished)
        assert (cancelled.state, cancelled.user) == ("CANCELLED", "bob")
    finally:
        await remove_partitions(backend, [part])
    assert part not in [p.name for p in await backend.partitions()]
