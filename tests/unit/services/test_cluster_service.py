"""ClusterService over FakeSlurm: a cluster is a partition of its node type's nodes, written to
the include file and applied live; resizing moves nodes in and out (requeueing, cancelling or
waiting for the jobs on them); deletion drains the partition and removes it once its jobs end."""

from __future__ import annotations

import pwd
from pathlib import Path

import pytest

from adapter.backends import partition_conf
from adapter.backends.base import PartitionSpec, SlurmPartition
from adapter.clusters.inventory import REASON_PREFIX
from adapter.clusters.service import ClusterKey
from adapter.errors import BackendUnavailable, InsufficientCapacity, InvalidRequest
from adapter.models.clusters import ScaleSettings
from adapter.records import Cluster
from tests.unit.services.site import A100, RG, SUB, WS, Site, build_site


async def live(site: Site, cluster: Cluster) -> SlurmPartition | None:
    return next((p for p in await site.slurm.partitions() if p.name == cluster.partition), None)


async def include_file(site: Site) -> str:
    return await site.slurm.runner.read_text(site.slurm.include_path) or ""


def stored(site: Site, cluster: Cluster) -> Cluster:
    found = site.svc.store.cluster_by_uid(cluster.uid)
    assert found is not None, f"cluster {cluster.name} is not in the store"
    return found


async def resize(site: Site, name: str, nodes: int, option: str = "requeue") -> Cluster:
    scale = ScaleSettings.model_validate(
        {"manual": {"targetNodeCount": nodes, "nodeDeallocationOption": option}}
    )
    return await site.svc.clusters.update(ClusterKey(SUB, RG, WS, name), scale)


async def test_a_dedicated_cluster_is_a_partition_of_its_own_nodes(site: Site) -> None:
    cluster = await site.cluster(nodes=2)
    assert (cluster.provisioning_state, cluster.allocation_state) == ("succeeded", "steady")
    assert {n: r.state for n, r in cluster.nodes.items()} == {A100[0]: "ready", A100[1]: "ready"}
    partition = await live(site, cluster)
    assert partition is not None
    assert (partition.nodes, partition.priority_tier, partition.preempt_mode) == (
        A100[:2],
        10,
        "OFF",
    )
    assert (partition.raw["AllowGroups"], partition.raw["OverSubscribe"]) == ("alice", "EXCLUSIVE")
    # The include file has the same partition: a slurmctld restart keeps it.
    spec = PartitionSpec(
        name=cluster.partition, nodes=A100[:2], priority_tier=10, allow_groups=("alice",)
    )
    assert partition_conf.partition_line(spec) in await include_file(site)
    assert await site.slurm.configured_partitions() == [cluster.partition]


async def test_a_low_priority_cluster_is_preemptible_capped_and_may_share_nodes(
    site: Site,
) -> None:
    await site.cluster("dedicated", nodes=2)
    low = await site.cluster("low", priority="lowpriority", nodes=3)
    partition = await live(site, low)
    assert partition is not None and partition.nodes == A100
    assert (partition.priority_tier, partition.preempt_mode, partition.grace_time_seconds) == (
        1,
        "REQUEUE",
        60,
    )
    assert partition.max_time == "1-00:00:00"


async def test_dedicated_clusters_never_share_a_node(site: Site) -> None:
    await site.cluster("c1", nodes=2)
    with pytest.raises(InsufficientCapacity, match="needs 2 a100x2 node") as info:
        await site.cluster("c2", nodes=2)
    assert info.value.target == "properties.scaleSettings.manual.targetNodeCount"
    assert site.svc.store.cluster(SUB, RG, WS, "c2") is None
    c2 = await site.cluster("c2", nodes=1)
    assert list(c2.nodes) == [A100[2]]


async def test_an_unknown_vm_size_names_the_node_types_there_are(site: Site) -> None:
    with pytest.raises(InvalidRequest, match="Known node types: a100x2 .* t4x1") as info:
        await site.cluster(vm_size="STANDARD_NC6")
    assert info.value.target == "properties.vmSize"
    assert await site.slurm.partitions() == []


async def test_resize_grows_and_shrinks_the_partition(site: Site) -> None:
    cluster = await site.cluster(nodes=1)
    grown = await resize(site, "c1", 3)
    assert sorted(grown.nodes) == list(A100)
    partition = await live(site, cluster)
    assert partition is not None and partition.nodes == A100

    with pytest.raises(InsufficientCapacity):
        await resize(site, "c1", 4)
    assert len(stored(site, cluster).nodes) == 3

    shrunk = await resize(site, "c1", 1)
    assert len(shrunk.nodes) == 1 and shrunk.allocation_state == "steady"
    partition = await live(site, cluster)
    assert partition is not None and partition.nodes == tuple(shrunk.nodes)


async def test_shrinking_requeues_the_jobs_of_the_nodes_that_go(site: Site) -> None:
    cluster = await site.cluster(nodes=1)
    await site.job("j1")
    job_id = site.stored("j1").slurm_id
    assert job_id is not None
    site.slurm.start(job_id)
    await site.reconcile()

    await resize(site, "c1", 0, "requeue")
    assert site.slurm.requeued == [job_id]
    assert stored(site, cluster).nodes == {}
    await site.reconcile()
    job = site.stored("j1")
    assert (job.execution_state, job.restarts) == ("queued", 1)


async def test_shrinking_with_terminate_cancels_the_jobs_of_the_nodes_that_go(
    site: Site,
) -> None:
    await site.cluster(nodes=1)
    await site.job("j1")
    job_id = site.stored("j1").slurm_id
    assert job_id is not None
    site.slurm.start(job_id)
    await site.reconcile()

    await resize(site, "c1", 0, "terminate")
    assert site.slurm.cancelled == [job_id] and site.slurm.job(job_id).state == "CANCELLED"
    await site.reconcile()
    job = site.stored("j1")
    assert job.execution_state == "failed"
    # bai cancelled it for the resize, yet it is reported as someone's scancel outside bai.
    assert [e["code"] for e in job.errors] == ["JobCancelled"]


async def test_shrinking_with_waitforjobcompletion_lets_the_job_finish_first(
    site: Site,
) -> None:
    cluster = await site.cluster(nodes=1)
    await site.job("j1")
    job_id = site.stored("j1").slurm_id
    assert job_id is not None
    (node,) = site.slurm.start(job_id)

    leaving = await resize(site, "c1", 0, "waitforjobcompletion")
    assert leaving.nodes[node].state == "leaving" and leaving.allocation_state == "resizing"
    assert site.slurm.cancelled == [] and site.slurm.requeued == []
    await site.reconcile()
    assert stored(site, cluster).nodes[node].state == "leaving"

    site.slurm.finish(job_id, 0)
    await site.reconcile()
    done = stored(site, cluster)
    assert (done.nodes, done.allocation_state) == ({}, "steady")


async def test_deletion_drains_the_partition_and_removes_it_once_its_jobs_end(
    site: Site,
) -> None:
    cluster = await site.cluster(nodes=2)
    await site.job("running")
    await site.job("pending", nodes=2)
    running = site.stored("running").slurm_id
    assert running is not None
    site.slurm.start(running)
    await site.reconcile()

    op = await site.svc.clusters.delete(ClusterKey(SUB, RG, WS, "c1"), "alice")
    assert op.status == "InProgress"
    partition = await live(site, cluster)
    assert partition is not None and partition.state == "DRAIN"
    # requeue (the default deallocation option) does not wait: every job is cancelled.
    pending = site.stored("pending").slurm_id
    assert pending is not None and sorted(site.slurm.cancelled) == sorted([running, pending])
    with pytest.raises(InvalidRequest, match="does not exist"):
        await site.job("late")

    await site.reconcile()
    assert site.svc.store.cluster_by_uid(cluster.uid) is None
    assert await live(site, cluster) is None and await site.slurm.configured_partitions() == []
    done = site.svc.store.operation(op.id)
    assert done is not None and done.status == "Succeeded"
    for name in ("running", "pending"):
        job = site.stored(name)
        assert (job.execution_state, [e["code"] for e in job.errors]) == (
            "failed",
            ["ClusterDeleted"],
        )


async def test_a_partition_slurm_or_the_file_lost_is_applied_again(site: Site) -> None:
    cluster = await site.cluster(nodes=1)
    line = await include_file(site)
    site.slurm.lose_partition(cluster.partition)
    await site.reconcile()
    assert await live(site, cluster) is not None

    del site.slurm.runner.files[site.slurm.include_path]
    await site.reconcile()
    assert await include_file(site) == line


async def test_a_partition_no_cluster_owns_goes_once_it_has_no_unfinished_jobs(
    site: Site,
) -> None:
    await site.cluster(nodes=1)
    stray = PartitionSpec(name="stray-123456", nodes=(A100[2],))
    await site.slurm.apply_partition(stray)  # left by a lost store, or a second bai
    job_id = await site.slurm.submit("#!/bin/bash\n#SBATCH -p stray-123456\ntrue\n", user="bob")
    await site.reconcile()
    assert "stray-123456" in await site.slurm.configured_partitions()

    await site.slurm.cancel(job_id)
    await site.reconcile()
    assert "stray-123456" not in await site.slurm.configured_partitions()
    assert "stray-123456" not in {p.name for p in await site.slurm.partitions()}


@pytest.mark.parametrize(("exit_status", "state"), [(0, "ready"), (1, "failed")])
async def test_a_joining_node_runs_its_setup_task_in_its_reservation(
    site: Site, exit_status: int, state: str
) -> None:
    setup = {
        "setupTask": {
            "commandLine": "pip install -r requirements.txt",
            "stdOutErrPathPrefix": str(site.root / "setup"),
            "secrets": [{"name": "TOKEN", "value": "s3cret"}],
        }
    }
    cluster = await site.cluster(nodes=1, nodeSetup=setup)
    (row,) = cluster.nodes.values()
    assert row.state == "preparing" and row.setup_job is not None
    (sent,) = site.slurm.submitted
    assert (sent.user, sent.options.nodelist, sent.options.partition) == (
        "alice",
        row.node,
        cluster.partition,
    )
    assert site.slurm.reservations == {sent.options.reservation: (row.node, "alice")}
    secrets = f"{site.svc.settings.clusters.spool_dir}/clusters/{cluster.uid}/setup-secrets.env"
    # Written for real into the spool (this host's filesystem, shared with the nodes).
    written = Path(secrets).stat()
    assert Path(secrets).read_text() == "export TOKEN=s3cret\n"
    assert (written.st_mode & 0o777, written.st_uid) == (0o600, pwd.getpwnam("alice").pw_uid)

    assert site.slurm.start(row.setup_job) == (row.node,)  # the reserved node is its own
    await site.reconcile()
    assert stored(site, cluster).nodes[row.node].state == "preparing"
    site.slurm.finish(row.setup_job, exit_status)
    await site.reconcile()

    done = stored(site, cluster)
    assert done.nodes[row.node].state == state and site.slurm.reservations == {}
    assert not Path(secrets).exists()  # no setup job can read it any more
    node = next(n for n in await site.slurm.nodes() if n.name == row.node)
    if state == "failed":
        assert "DRAIN" in node.flags and node.reason.startswith(REASON_PREFIX)
        assert [e["code"] for e in done.errors] == ["SetupTaskFailed"]
    else:
        assert node.flags == frozenset() and done.errors == []


async def test_autoscale_grows_for_waiting_jobs_and_gives_idle_nodes_back(
    tmp_path: Path,
) -> None:
    site = build_site(tmp_path, autoscale_idle_seconds=0)
    site.workspace()
    try:
        auto = {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 2}}
        cluster = await site.cluster(scaleSettings=auto)
        await site.job("j1", nodes=2)
        await site.reconcile()
        assert len(stored(site, cluster).nodes) == 2
        job_id = site.stored("j1").slurm_id
        assert job_id is not None
        site.slurm.start(job_id)
        await site.reconcile()
        assert len(stored(site, cluster).nodes) == 2  # busy nodes stay

        site.slurm.finish(job_id, 0)
        await site.reconcile()
        assert stored(site, cluster).nodes == {}
        partition = await live(site, cluster)
        assert partition is not None and partition.nodes == ()
    finally:
        site.svc.store.close()


async def test_a_cluster_is_not_created_while_slurm_cannot_be_reached(site: Site) -> None:
    site.slurm.unreachable = True
    with pytest.raises(BackendUnavailable):
        await site.cluster()
    assert site.svc.store.clusters() == []
