"""The cluster planner: placement, scaling, setup, deallocation and deletion (pure)."""

from __future__ import annotations

from datetime import timedelta

from adapter.clusters.plan import drain_reason, plan_cluster
from adapter.records import NodeState
from adapter.settings import ClusterSettings
from tests.unit.clusters.factories import T0, auto, cluster, job, manual, node, world

CFG = ClusterSettings(autoscale_idle_seconds=300, lowpriority_grace_time_seconds=30)
NODES = [node("n1"), node("n2"), node("n3")]


def test_dedicated_takes_free_nodes_and_prefers_ones_no_low_cluster_uses() -> None:
    c = cluster(scale=manual(2))
    plan = plan_cluster(c, world(NODES, dedicated_owned={"n1"}, low_shared={"n2": 1}), CFG)
    assert sorted(plan.nodes) == ["n2", "n3"]
    assert plan.partition.nodes == ("n2", "n3")
    assert (plan.partition.priority_tier, plan.partition.preempt_mode) == (10, "OFF")
    assert plan.partition.max_time_minutes is None
    assert all(r.state == "ready" for r in plan.nodes.values())


def test_dedicated_never_takes_unusable_or_owned_nodes_and_says_so() -> None:
    nodes = [node("n1"), node("n2", flags=frozenset({"DRAIN"})), node("n3", state="DOWN")]
    plan = plan_cluster(cluster(scale=manual(3)), world(nodes), CFG)
    assert list(plan.nodes) == ["n1"]
    assert plan.notes and plan.notes[0]["code"] == "InsufficientCapacity"


def test_low_priority_prefers_nodes_no_dedicated_cluster_owns_and_is_capped_at_24h() -> None:
    plan = plan_cluster(
        cluster("lowpriority", manual(2)), world(NODES, dedicated_owned={"n1"}), CFG
    )
    assert sorted(plan.nodes) == ["n2", "n3"]
    spec = plan.partition
    assert (spec.priority_tier, spec.preempt_mode, spec.grace_time_seconds) == (1, "REQUEUE", 30)
    assert spec.max_time_minutes == 24 * 60
    full = plan_cluster(
        cluster("lowpriority", manual(3)), world(NODES, dedicated_owned={"n1"}), CFG
    )
    assert sorted(full.nodes) == ["n1", "n2", "n3"]  # shares the dedicated node when needed


def test_joining_nodes_are_reserved_and_set_up_then_ready_or_drained() -> None:
    c = cluster(scale=manual(2), setup=True)
    plan = plan_cluster(c, world(NODES), CFG)
    # Preparing with no setup job yet: the service reserves such a node, then submits its job.
    assert {(r.state, r.setup_job) for r in plan.nodes.values()} == {("preparing", None)}
    assert plan.partition.nodes == ("n1", "n2")  # the setup job runs in the partition

    c.nodes = plan.nodes
    c.nodes["n1"].setup_job, c.nodes["n2"].setup_job = 11, 12
    jobs = [
        job(11, c.partition, "COMPLETED", ("n1",), exit_status=0),
        job(12, c.partition, "FAILED", ("n2",), exit_status=3),
    ]
    after = plan_cluster(c, world(NODES, jobs), CFG)
    assert after.nodes["n1"].state == "ready" and after.nodes["n2"].state == "failed"
    assert sorted(after.release) == ["n1", "n2"]
    assert after.drain == [("n2", drain_reason(c))]


def test_a_setup_job_slurm_forgot_fails_the_node_after_a_while() -> None:
    c = cluster(scale=manual(1), setup=True, rows={"n1": "preparing"})
    c.nodes["n1"].setup_job = 7
    soon = plan_cluster(c, world(NODES, now=T0 + timedelta(seconds=30)), CFG)
    assert soon.nodes["n1"].state == "preparing" and soon.drain == []
    late = plan_cluster(c, world(NODES, now=T0 + timedelta(minutes=5)), CFG)
    assert late.nodes["n1"].state == "failed" and late.drain


def test_shrink_gives_back_unusable_then_preparing_then_idle_nodes_first() -> None:
    c = cluster(scale=manual(1), rows={"n1": "ready", "n2": "failed", "n3": "preparing"})
    c.nodes["n3"].setup_job = 9
    busy = [
        job(1, c.partition, nodes=("n1",)),
        job(9, c.partition, nodes=("n3",), comment="bai-setup:x"),
    ]
    plan = plan_cluster(c, world(NODES, busy), CFG)
    assert list(plan.nodes) == ["n1"]
    assert plan.cancel == [9] and plan.release == ["n3"] and plan.requeue == []


def test_shrink_requeues_or_cancels_jobs_on_removed_busy_nodes() -> None:
    for option, attr in (("requeue", "requeue"), ("terminate", "cancel")):
        c = cluster(scale=manual(1, option), rows={"n1": "ready", "n2": "ready"})
        jobs = [job(1, c.partition, nodes=("n1",)), job(2, c.partition, nodes=("n2",))]
        plan = plan_cluster(c, world(NODES, jobs), CFG)
        assert list(plan.nodes) == ["n2"]
        assert getattr(plan, attr) == [1], option
        assert plan.partition.nodes == ("n2",)


def test_wait_for_job_completion_keeps_the_node_leaving_until_its_jobs_end() -> None:
    c = cluster(scale=manual(1, "waitforjobcompletion"), rows={"n1": "ready", "n2": "ready"})
    jobs = [job(1, c.partition, nodes=("n1",)), job(2, c.partition, nodes=("n2",))]
    plan = plan_cluster(c, world(NODES, jobs), CFG)
    assert plan.nodes["n1"].state == "leaving" and plan.cancel == plan.requeue == []
    assert plan.partition.nodes == ("n2",)  # no new work lands on a leaving node
    c.nodes = plan.nodes
    done = plan_cluster(c, world(NODES, [job(1, c.partition, "COMPLETED", ("n1",)), jobs[1]]), CFG)
    assert list(done.nodes) == ["n2"]


def test_autoscale_grows_for_waiting_jobs_up_to_max_and_ignores_held_jobs() -> None:
    c = cluster(scale=auto(0, 2), rows={"n1": "ready"})
    busy = job(1, c.partition, nodes=("n1",))
    waiting = [
        busy,
        job(2, c.partition, "PENDING", reason="Resources"),
        job(3, c.partition, "PENDING", reason="Priority", node_count=2),
    ]
    assert len(plan_cluster(c, world(NODES, waiting), CFG).nodes) == 2
    held = [busy, job(2, c.partition, "PENDING", reason="JobHeldUser")]
    assert len(plan_cluster(c, world(NODES, held), CFG).nodes) == 1
    assert len(plan_cluster(c, world(NODES, [busy], held=1), CFG).nodes) == 2


def test_autoscale_shrinks_only_nodes_idle_long_enough_and_never_below_min() -> None:
    c = cluster(scale=auto(1, 3), rows={"n1": "ready", "n2": "ready", "n3": "ready"})
    now = T0 + timedelta(seconds=301)
    c.nodes["n3"].idle_since = now - timedelta(seconds=10)
    busy = [job(1, c.partition, nodes=("n1",))]
    plan = plan_cluster(c, world(NODES, busy, now=now), CFG)
    assert sorted(plan.nodes) == ["n1", "n3"]  # n2 idle long enough; n1 busy; n3 too recent
    c2 = cluster(scale=auto(1, 3), rows={"n1": "ready", "n2": "ready"})
    assert len(plan_cluster(c2, world(NODES, now=now), CFG).nodes) == 1


def test_deletion_cancels_queued_work_waits_or_cancels_running_then_removes() -> None:
    rows: dict[str, NodeState] = {"n1": "ready", "n2": "failed"}
    jobs = [job(1, "c1-012345", nodes=("n1",)), job(2, "c1-012345", "PENDING")]
    drained = [node("n1"), node("n2", flags=frozenset({"DRAIN"}), reason=drain_reason(cluster()))]
    waiting = cluster(scale=manual(2, "waitforjobcompletion"), rows=rows, state="deleting")
    plan = plan_cluster(waiting, world(drained, jobs), CFG)
    assert plan.cancel == [2] and not plan.remove_partition and plan.partition.state == "DRAIN"
    cancelling = cluster(scale=manual(2, "requeue"), rows=rows, state="deleting")
    assert sorted(plan_cluster(cancelling, world(drained, jobs), CFG).cancel) == [1, 2]
    empty = plan_cluster(cancelling, world(drained, []), CFG)
    assert empty.remove_partition and empty.nodes == {} and empty.resume == ["n2"]


def test_a_drain_someone_else_set_is_never_lifted() -> None:
    c = cluster(scale=manual(0), rows={"n1": "ready"})
    foreign = [node("n1", flags=frozenset({"DRAIN"}), reason="admin: bad DIMM")]
    assert plan_cluster(c, world(foreign), CFG).resume == []
