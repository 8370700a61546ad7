"""Partitions applied by the backend persist: include file first, then live (DESIGN.md 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.backends import CliBackend, PartitionSpec
from adapter.backends.partition_conf import partition_names
from adapter.backends.slurm_options import SlurmOptions
from tests.cluster import sh
from tests.slurm.conftest import PartitionFactory, daemonctl, wait_job

pytestmark = pytest.mark.slurm


async def test_partition_and_its_running_job_survive_reconfigure_and_restart(
    backend: CliBackend, partition: PartitionFactory, workdir: Path
) -> None:
    part = await partition(nodes=("gpu-t4-1",), priority_tier=10, grace_time_seconds=5)
    options = SlurmOptions(partition=part, output=f"{workdir}/o.txt")
    script = "\n".join(["#!/bin/bash", *options.directives(), "sleep 600", ""])
    job_id = await backend.submit_job(options, script, user="bob")
    running = await wait_job(backend, job_id, part, lambda j: j.state == "RUNNING")

    assert sh("scontrol", "reconfigure").returncode == 0
    await _assert_still_there(backend, part, job_id, running.start_time)

    daemonctl("restart", "slurmctld")
    await _assert_still_there(backend, part, job_id, running.start_time)


async def _assert_still_there(backend: CliBackend, part: str, job_id: int, started: object) -> None:
    (found,) = [p for p in await backend.partitions() if p.name == part]
    assert found.nodes == ("gpu-t4-1",) and found.priority_tier == 10
    assert found.grace_time_seconds == 5 and found.state == "UP"
    job = await wait_job(backend, job_id, part, lambda j: True)
    assert (job.state, job.restart_count, job.start_time) == ("RUNNING", 0, started)


async def test_apply_updates_live_and_in_file_and_remove_deletes_both(
    backend: CliBackend,
) -> None:
    name = "t-apply-remove"
    await backend.apply_partition(PartitionSpec(name=name, nodes=("gpu-a100-2",)))
    await backend.apply_partition(
        PartitionSpec(
            name=name,
            nodes=("gpu-a100-2", "gpu-a100-3"),
            priority_tier=1,
            preempt_mode="REQUEUE",
            max_time_minutes=1440,
            state="DRAIN",
        )
    )
    try:
        (live,) = [p for p in await backend.partitions() if p.name == name]
        assert live.nodes == ("gpu-a100-2", "gpu-a100-3")
        assert (live.preempt_mode, live.max_time, live.state) == ("REQUEUE", "1-00:00:00", "DRAIN")
        text = Path(backend.include_path).read_text()
        assert name in partition_names(text)
        assert f"PartitionName={name} Nodes=gpu-a100-2,gpu-a100-3 " in text

        await backend.apply_partition(PartitionSpec(name=name))  # scaled to zero nodes
        (empty,) = [p for p in await backend.partitions() if p.name == name]
        assert empty.nodes == ()
        assert sh("scontrol", "reconfigure").returncode == 0
    finally:
        await backend.remove_partition(name)
    assert name not in [p.name for p in await backend.partitions()]
    assert name not in partition_names(Path(backend.include_path).read_text())
    await backend.remove_partition(name)  # idempotent
