"""Decisions that depend on time are made on the clock the services are given: the test sets
the time, and nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapter.jobs.sbatch import SbatchJobs
from adapter.jobs.tracking import UNCONFIRMED_AFTER
from adapter.models.sbatch import SbatchSubmit
from tests.unit.services.site import ALICE, build_site

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


async def test_a_bai_sbatch_job_never_confirmed_fails_once_ten_minutes_have_passed(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    site = build_site(tmp_path, clock)
    site.workspace()
    try:
        await site.cluster()
        body = SbatchSubmit(partition="c1", script="#!/bin/bash\ntrue\n", workdir=str(tmp_path))
        job, _, _ = await SbatchJobs(site.svc.jobs, site.svc.workspaces).submit(body, ALICE)
        assert job.created == T0
        # Its client stopped before running sbatch: Slurm never shows the job, and bai never
        # submits it itself.
        clock.advance(UNCONFIRMED_AFTER)
        await site.reconcile()
        waiting = site.svc.store.job_by_uid(job.uid)
        assert waiting is not None and waiting.execution_state == "queued"
        assert waiting.errors == [] and site.slurm.submitted == []

        clock.advance(timedelta(seconds=1))
        await site.reconcile()
        failed = site.svc.store.job_by_uid(job.uid)
        assert failed is not None and failed.execution_state == "failed"
        assert [e["code"] for e in failed.errors] == ["SubmissionNotConfirmed"]
        assert (
            failed.execution_changed
            == failed.end_time
            == T0 + UNCONFIRMED_AFTER + timedelta(seconds=1)
        )
        assert site.slurm.submitted == []
    finally:
        site.svc.store.close()
