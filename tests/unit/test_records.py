"""The typed shapes of a job's info are those of the values they record, and a job's info is
JSON that is read as stored: a row recorded before a key existed still loads and runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import get_type_hints

import pytest

from adapter.backends.slurm_options import SlurmOptions, SlurmOptionsJson
from adapter.errors import BackendUnavailable
from adapter.jobs.layout import JobLayout
from adapter.jobs.volumes import Volume
from adapter.records import LayoutInfo, VolumeInfo
from tests.unit.services.site import build_site


@pytest.mark.parametrize(
    ("shape", "record"),
    [(LayoutInfo, JobLayout), (VolumeInfo, Volume), (SlurmOptionsJson, SlurmOptions)],
)
def test_each_info_shape_has_every_field_of_what_it_records(shape: type, record: type) -> None:
    assert set(get_type_hints(shape)) == {f.name for f in dataclasses.fields(record)}


async def test_a_job_recorded_before_bai_kept_its_slurm_options_is_submitted_from_its_script(
    tmp_path: Path,
) -> None:
    site = build_site(tmp_path)
    site.workspace()
    try:
        await site.cluster()
        site.slurm.unreachable = True
        with pytest.raises(BackendUnavailable):
            await site.job("j1")  # recorded, not submitted
        job = site.stored("j1")
        options = SlurmOptions.from_json(job.info.pop("slurm"))
        site.svc.store.set_job_info(job.uid, job.info)  # as such a row was stored
        site.slurm.unreachable = False

        await site.reconcile()

        (sent,) = site.slurm.submitted
        assert "slurm" not in site.stored("j1").info and site.stored("j1").slurm_id == sent.job_id
        assert (sent.script, sent.options) == (job.script, options)
    finally:
        site.svc.store.close()
