"""Fixtures for tests against the real dev Slurm cluster (DESIGN.md section 7)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapter.backends import CliBackend, LocalRunner, PartitionSpec, SlurmJob
from adapter.backends.libslurm import Libslurm, LibslurmBackend
from adapter.settings import Settings
from tests.cluster import dev_service_paused

PartitionFactory = Callable[..., Awaitable[str]]


@pytest.fixture(scope="package", autouse=True)
def _cluster(dev_cluster: None) -> Iterator[None]:
    """Every test here runs on the real dev cluster, and acts as its only adapter."""
    with dev_service_paused():
        asyncio.run(_remove_leftover_partitions(CliBackend(LocalRunner())))
        yield


async def _remove_leftover_partitions(backend: CliBackend) -> None:
    """Partitions (and their jobs) an interrupted earlier run of these tests left behind."""
    await remove_partitions(
        backend, [p for p in await backend.configured_partitions() if p.startswith("t-")]
    )


async def remove_partitions(backend: CliBackend, names: list[str]) -> None:
    """Cancel the partitions' unfinished jobs, wait for them to end, then remove the partitions."""
    if not names:
        return
    for job in await backend.jobs(names):
        if not job.finished:
            await backend.cancel(job.job_id)
    await wait_for(backend, lambda jobs: all(j.finished for j in jobs), names, timeout=60)
    for name in names:
        await backend.remove_partition(name)


@pytest.fixture
def backend() -> CliBackend:
    return CliBackend(LocalRunner())


@pytest.fixture
def libslurm_backend() -> LibslurmBackend:
    """Submits in-process (the binding cached where the service keeps it); the rest is CLI."""
    runner = LocalRunner()
    return LibslurmBackend(runner, Libslurm.load(Settings().state_dir / "libslurm", runner.env))


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory every test user can write job output into."""
    path = Path("/tmp") / f"bai-test-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o1777)
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def partition(backend: CliBackend) -> AsyncIterator[PartitionFactory]:
    """Create uniquely named partitions; cancel their jobs and remove them afterwards."""
    created: list[str] = []

    async def make(**kwargs: Any) -> str:
        name = f"t-{uuid.uuid4().hex[:8]}"
        await backend.apply_partition(PartitionSpec(name=name, **kwargs))
        created.append(name)
        return name

    yield make
    await remove_partitions(backend, created)


async def wait_for(
    backend: CliBackend,
    done: Callable[[list[SlurmJob]], bool],
    partitions: list[str],
    *,
    timeout: float = 60,
) -> list[SlurmJob]:
    """Poll the job snapshot until `done` holds; fail with the last snapshot otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = await backend.jobs(partitions)
        if done(jobs):
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout} s; last jobs: {jobs}")
        await asyncio.sleep(0.5)


async def wait_job(
    backend: CliBackend,
    job_id: int,
    partition: str,
    done: Callable[[SlurmJob], bool],
    *,
    timeout: float = 60,
) -> SlurmJob:
    """Poll until the job satisfies `done`; returns it."""
    jobs = await wait_for(
        backend,
        lambda js: any(j.job_id == job_id and done(j) for j in js),
        [partition],
        timeout=timeout,
    )
    return next(j for j in jobs if j.job_id == job_id)


def daemonctl(action: str, daemon: str) -> None:
    """Start/stop a dev-cluster daemon through the script the playbook installed."""
    rc = os.spawnv(os.P_WAIT, "/usr/local/sbin/bai-daemonctl", ["bai-daemonctl", action, daemon])
    assert rc in (0, 1), f"bai-daemonctl {action} {daemon} exited {rc}"
