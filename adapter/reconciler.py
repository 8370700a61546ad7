"""The reconciler: one loop that reads Slurm at a fixed interval, whatever the number of clients.

Each pass takes one node snapshot and one job snapshot of the managed partitions, then lets
every resource converge towards its desired state in the store. A pass after a slurmctld
restart re-applies any partition Slurm lost. API writes may `kick` it to run a pass at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from adapter.backends.base import SlurmBackend
from adapter.clock import Clock, now
from adapter.errors import BackendError, BackendUnavailable
from adapter.snapshot import SlurmHealth, Snapshot
from adapter.store import Store

log = structlog.get_logger(__name__)

PassHook = Callable[[Snapshot], Awaitable[None]]


class Reconciler:
    """Owns the last snapshot and the loop that refreshes it."""

    def __init__(
        self, store: Store, backend: SlurmBackend, interval: float, clock: Clock = now
    ) -> None:
        self.store = store
        self.clock = clock
        self.backend = backend
        self.interval = interval
        self.snapshot: Snapshot | None = None
        self.health = SlurmHealth()
        self.hooks: list[PassHook] = []  # what converges after each snapshot (clusters, jobs)
        self.observers: list[Callable[[], None]] = []  # run after every pass, failed or not
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def latest(self) -> Snapshot | None:
        return self.snapshot

    def kick(self) -> None:
        """Run the next pass now instead of at the end of the interval."""
        self._wake.set()

    async def take_snapshot(self) -> Snapshot:
        """A fresh snapshot (one node query, one job query), kept as the latest.

        Writes that act on running jobs (scale down, delete) plan on a fresh one: a job that
        started since the last pass must be requeued or waited for, not missed.
        """
        taken = self.clock()  # before asking: what was submitted before this is in the answer
        partitions = [c.partition for c in self.store.clusters()]
        nodes = await self.backend.nodes()
        jobs = await self.backend.jobs(partitions)
        snap = Snapshot.build(taken, nodes, jobs)
        self.snapshot = snap
        self.health.reachable = True
        return snap

    async def run_pass(self) -> Snapshot | None:
        """Take a snapshot and converge everything; errors are logged and counted, not raised."""
        started = time.monotonic()
        self.health.passes_total += 1
        try:
            snap = await self.take_snapshot()
            for hook in self.hooks:
                await hook(snap)
            self.health.last_success = self.clock()
            self.health.last_error = None
            return snap
        except BackendError as exc:
            self.health.errors_total += 1
            self.health.last_error = str(exc)
            if isinstance(exc, BackendUnavailable):
                self.health.reachable = False
            log.warning("reconcile pass failed", error=str(exc))
            return None
        finally:
            self.health.last_duration_seconds = time.monotonic() - started
            for observe in self.observers:
                observe()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_pass()
            except Exception:  # a bug in one pass must not stop reconciling for good
                self.health.errors_total += 1
                log.exception("reconcile pass crashed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="reconciler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
