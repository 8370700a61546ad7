"""Partitions applied by the backend persist: include file first, then live (DESIGN.md 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.backends import CliBackend, PartitionSpec
from adapter.backends.partition_conf import partition_names
from adapter.backends.slurm_options import SlurmOptions
from tests.slurm.conftest import PartitionFactory, SlurmCluster, wait_job

pytestmark = pytest.mark.slurm
RELEASES = ("22.05", "24.11")


async def test_partition_and_its_running_job_survive_reconfigure_and_restart(
    backend: CliBackend, cluster: SlurmCluster, partition: PartitionFactory, workdir: Path
) -> None:
    node = cluster.with_gpu("t4")[0]
    part = await partition(nodes=(node,), priority_tier=10, grace_time_seconds=5)
    options = SlurmOptions(partition=part, output=f"{workdir}/o.txt")
    script = "\n".join(["#!/bin/bash", *options.directives(), "sleep 600", ""])
    job_id = await backend.submit_job(options, script, user="bob")
    running = await wait_job(backend, job_id, part, lambda j: j.state == "RUNNING")

    assert cluster.sh("scontrol", "reconfigure").returncode == 0
    await _assert_still_there(backend, node, part, job_id, running.start_time)

    cluster.daemonctl("restart", "slurmctld")
    await _assert_still_there(backend, node, part, job_id, running.start_time)


async def _assert_still_there(
    backend: CliBackend, node: str, part: str, job_id: int, started: object
) -> None:
    (found,) = [p for p in await backend.partitions() if p.name == part]
    assert found.nodes == (node,) and found.priority_tier == 10
    assert found.grace_time_seconds == 5 and found.state == "UP"
    job = await wait_job(backend, job_id, part, lambda j: True)
    assert (job.state, job.restart_count, job.start_time) == ("RUNNING", 0, started)


async def test_apply_updates_live_and_in_file_and_remove_deletes_both(
    backend: CliBackend, cluster: SlurmCluster
) -> None:
    name = "t-apply-remove"
    first, second = cluster.with_gpu("a100")[-2:]
    include = cluster.host(backend.include_path)
    await backend.apply_partition(PartitionSpec(name=name, nodes=(first,)))
    await backend.apply_partition(
        PartitionSpec(
            name=name,
            nodes=(first, second),
            priority_tier=1,
            preempt_mode="REQUEUE",
            max_time_minutes=1440,
            state="DRAIN",
        )
    )
    try:
        (live,) = [p for p in await backend.partitions() if p.name == name]
        assert live.nodes == (first, second)
        assert (live.preempt_mode, live.max_time, live.state) == ("REQUEUE", "1-00:00:00", "DRAIN")
        text = include.read_text()
        assert name in partition_names(text)
        assert f"PartitionName={name} Nodes={first},{second} " in text

        await backend.apply_partition(PartitionSpec(name=name))  # scaled to zero nodes
        (empty,) = [p for p in await backend.partitions() if p.name == name]
        assert empty.nodes == ()
        assert cluster.sh("scontrol", "reconfigure").returncode == 0
    finally:
        await backend.remove_partition(name)
    assert name not in [p.name for p in await backend.partitions()]
    assert name not in partition_names(include.read_text())
    await backend.remove_partition(name)  # idempotent
