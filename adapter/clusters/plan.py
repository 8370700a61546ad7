"""What a cluster needs next, computed from its desired state and a Slurm snapshot (pure).

`plan_cluster` is the whole of cluster semantics: scaling (manual and auto), node choice for
dedicated and low-priority clusters, node setup, deallocation options and deletion. The
reconciler calls it every interval and the API calls it after a write; `ClusterService` carries
the plan out. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from adapter.backends.base import PartitionSpec, SlurmJob, SlurmNode
from adapter.clusters.inventory import REASON_PREFIX
from adapter.errors import QuotaExceeded
from adapter.models.clusters import ScaleSettings
from adapter.records import Cluster, ClusterNode
from adapter.settings import ClusterSettings

SETUP_COMMENT = "bai-setup"
# A setup job that Slurm has never shown after this long is taken as lost.
SETUP_LOST_AFTER = timedelta(minutes=2)
# Pending reasons that say the job waits for something other than nodes.
NOT_WAITING_FOR_NODES = frozenset({"JobHeldUser", "JobHeldAdmin", "Dependency", "BeginTime"})


@dataclass
class ClusterPlan:
    """Everything to do for one cluster in one pass."""

    nodes: dict[str, ClusterNode]
    partition: PartitionSpec
    release: list[str] = field(default_factory=list)  # nodes whose setup reservation goes
    drain: list[tuple[str, str]] = field(default_factory=list)
    resume: list[str] = field(default_factory=list)
    requeue: list[int] = field(default_factory=list)
    cancel: list[int] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)
    remove_partition: bool = False  # deletion finished: drop the partition and the cluster


def scale_of(cluster: Cluster) -> ScaleSettings:
    return ScaleSettings.model_validate(cluster.properties["scaleSettings"])


def needs_setup(cluster: Cluster) -> bool:
    """Nodes joining the cluster run a setup job (setup task and/or admin SSH key)."""
    setup = (cluster.properties.get("nodeSetup") or {}).get("setupTask")
    key = cluster.properties["userAccountSettings"].get("adminUserSshPublicKey")
    return bool(setup or key)


def reservation_name(cluster: Cluster, node: str) -> str:
    return f"bai-setup-{cluster.uid[:8]}-{node}"


def drain_reason(cluster: Cluster) -> str:
    return f"{REASON_PREFIX} setup task failed on cluster {cluster.ws}/{cluster.name}"


def partition_spec(
    cluster: Cluster,
    nodes: Sequence[str],
    cfg: ClusterSettings,
    allow_groups: tuple[str, ...] = (),
) -> PartitionSpec:
    """The Slurm partition of a cluster (DESIGN.md 2); `allow_groups` are the Unix groups
    whose users may run in it (adapter.tenancy.slurm_groups), empty for every user."""
    deleting = cluster.provisioning_state == "deleting"
    if cluster.priority == "lowpriority":
        return PartitionSpec(
            name=cluster.partition,
            nodes=tuple(sorted(nodes)),
            allow_groups=allow_groups,
            priority_tier=cfg.lowpriority_priority_tier,
            preempt_mode="REQUEUE",
            grace_time_seconds=cfg.lowpriority_grace_time_seconds,
            max_time_minutes=cfg.lowpriority_max_time_minutes,
            state="DRAIN" if deleting else "UP",
        )
    return PartitionSpec(
        name=cluster.partition,
        nodes=tuple(sorted(nodes)),
        allow_groups=allow_groups,
        priority_tier=cfg.dedicated_priority_tier,
        preempt_mode="OFF",
        state="DRAIN" if deleting else "UP",
    )


@dataclass(frozen=True)
class World:
    """What the planner may look at besides the cluster itself."""

    nodes: Mapping[str, SlurmNode]  # the node snapshot
    jobs: Sequence[SlurmJob]  # jobs of every managed partition
    type_nodes: Sequence[str]  # nodes of the cluster's node type
    dedicated_owned: frozenset[str]  # nodes owned by other dedicated clusters
    low_shared: Mapping[str, int]  # node -> how many other low-priority clusters use it
    held_demand: int  # nodes wanted by bai jobs waiting for this cluster to grow
    now: datetime
    allow_groups: tuple[str, ...] = ()  # who may run in the partition (empty: everyone)
    # The most nodes the owner's GPU quotas let the cluster hold, and the binding quota in
    # words (adapter.clusters.quotas); None when no quota applies.
    quota_nodes: int | None = None
    quota: str = ""


def plan_cluster(cluster: Cluster, world: World, cfg: ClusterSettings) -> ClusterPlan:
    """The next steps for one cluster."""
    rows = {name: replace(row) for name, row in cluster.nodes.items()}
    plan = ClusterPlan(nodes=rows, partition=partition_spec(cluster, [], cfg, world.allow_groups))
    mine = [j for j in world.jobs if j.partition == cluster.partition]
    running_on: dict[str, list[SlurmJob]] = {}
    for job in mine:
        # Setup jobs are bai's own: deallocation options and idleness concern user work.
        if job.state in {"RUNNING", "COMPLETING", "SUSPENDED"} and not job.comment.startswith(
            SETUP_COMMENT
        ):
            for node in job.nodes:
                running_on.setdefault(node, []).append(job)

    _follow_setup(cluster, rows, plan, mine, world.now)
    _follow_leaving(cluster, rows, plan, running_on, world)
    for name, row in rows.items():
        if row.state == "ready":
            busy = bool(running_on.get(name))
            row.idle_since = None if busy else (row.idle_since or world.now)

    if cluster.provisioning_state == "deleting":
        _plan_delete(cluster, rows, plan, mine, running_on, world)
    else:
        desired = _desired_count(cluster, rows, mine, world, cfg)
        active = [n for n, r in rows.items() if r.state != "leaving"]
        if desired > len(active):
            desired = _within_quota(cluster, desired, len(active), len(rows), plan, world)
        if desired > len(active):
            _grow(cluster, rows, plan, desired - len(active), world)
        elif desired < len(active):
            _shrink(cluster, rows, plan, len(active) - desired, running_on, world)

    members = [n for n, r in rows.items() if r.state != "leaving"]
    plan.partition = partition_spec(cluster, members, cfg, world.allow_groups)
    return plan


def _follow_setup(
    cluster: Cluster,
    rows: dict[str, ClusterNode],
    plan: ClusterPlan,
    mine: Sequence[SlurmJob],
    now: datetime,
) -> None:
    by_id = {j.job_id: j for j in mine}
    for name, row in rows.items():
        if row.state != "preparing" or row.setup_job is None:
            continue
        job = by_id.get(row.setup_job)
        if job is None:
            if now - row.since > SETUP_LOST_AFTER:
                row.state = "failed"
                plan.release.append(name)
                plan.drain.append((name, drain_reason(cluster)))
            continue
        if not job.finished:
            continue
        plan.release.append(name)
        if job.state == "COMPLETED" and job.exit_status == 0:
            row.state, row.since = "ready", now
        else:
            row.state, row.since = "failed", now
            plan.drain.append((name, drain_reason(cluster)))


def _follow_leaving(
    cluster: Cluster,
    rows: dict[str, ClusterNode],
    plan: ClusterPlan,
    running_on: Mapping[str, list[SlurmJob]],
    world: World,
) -> None:
    for name in [n for n, r in rows.items() if r.state == "leaving"]:
        if not running_on.get(name):
            _release_node(cluster, rows, plan, name, world)


def _release_node(
    cluster: Cluster, rows: dict[str, ClusterNode], plan: ClusterPlan, name: str, world: World
) -> None:
    """Take a node out of the cluster for good, undoing what bai did to it."""
    row = rows.pop(name)
    if row.state == "preparing":
        plan.release.append(name)
        if row.setup_job is not None:
            plan.cancel.append(row.setup_job)
    node = world.nodes.get(name)
    if node is not None and node.reason == drain_reason(cluster):
        plan.resume.append(name)


def _desired_count(
    cluster: Cluster,
    rows: Mapping[str, ClusterNode],
    mine: Sequence[SlurmJob],
    world: World,
    cfg: ClusterSettings,
) -> int:
    scale = scale_of(cluster)
    if scale.manual is not None:
        return scale.manual.target_node_count
    auto = scale.auto_scale
    assert auto is not None
    active = {n: r for n, r in rows.items() if r.state != "leaving"}
    pending = [
        j
        for j in mine
        if j.state == "PENDING"
        and not j.comment.startswith(SETUP_COMMENT)
        and j.state_reason not in NOT_WAITING_FOR_NODES
    ]
    wanted = sum(max(j.node_count, 1) for j in pending) + world.held_demand
    spare = sum(1 for r in active.values() if r.state in {"preparing"}) + sum(
        1 for r in active.values() if r.state == "ready" and r.idle_since is not None
    )
    desired = len(active)
    if wanted > spare:
        desired = len(active) + wanted - spare
    elif not pending and not world.held_demand:
        idle_for = timedelta(seconds=cfg.autoscale_idle_seconds)
        expired = sum(
            1
            for r in active.values()
            if r.state == "ready" and r.idle_since and world.now - r.idle_since >= idle_for
        )
        desired = len(active) - expired
    return max(auto.minimum_node_count, min(auto.maximum_node_count, desired))


def _within_quota(
    cluster: Cluster, desired: int, active: int, held: int, plan: ClusterPlan, world: World
) -> int:
    """Growth stops at the quota's headroom. Leaving nodes still count (they are held until
    their jobs end); a cluster already past the quota (lowered since) keeps its nodes."""
    if world.quota_nodes is None:
        return desired
    most = world.quota_nodes - (held - active)
    if desired <= most:
        return desired
    plan.notes.append(
        {
            "code": QuotaExceeded.code,
            "message": f"wanted {desired} {cluster.node_type} node(s) but {world.quota}, so the "
            f"cluster holds at most {world.quota_nodes}; it grows when the quota allows",
        }
    )
    return max(active, most)


def _grow(
    cluster: Cluster, rows: dict[str, ClusterNode], plan: ClusterPlan, count: int, world: World
) -> None:
    candidates = [
        n
        for n in world.type_nodes
        if n not in rows and (nd := world.nodes.get(n)) is not None and nd.usable
    ]
    if cluster.priority == "dedicated":
        candidates = [n for n in candidates if n not in world.dedicated_owned]
        # Prefer nodes no low-priority cluster uses, so as not to preempt work needlessly.
        candidates.sort(key=lambda n: (world.low_shared.get(n, 0), n))
    else:
        candidates.sort(key=lambda n: (n in world.dedicated_owned, world.low_shared.get(n, 0), n))
    chosen = candidates[:count]
    if len(chosen) < count:
        plan.notes.append(
            {
                "code": "InsufficientCapacity",
                "message": f"wanted {count} more {cluster.node_type} node(s) but only "
                f"{len(chosen)} free; the cluster grows when nodes free up",
            }
        )
    setup = needs_setup(cluster)
    for name in chosen:
        rows[name] = ClusterNode(
            node=name,
            state="preparing" if setup else "ready",
            setup_job=None,
            since=world.now,
            idle_since=None if setup else world.now,
        )


def _shrink(
    cluster: Cluster,
    rows: dict[str, ClusterNode],
    plan: ClusterPlan,
    count: int,
    running_on: Mapping[str, list[SlurmJob]],
    world: World,
) -> None:
    scale = scale_of(cluster)
    rank = {"failed": 0, "preparing": 1}
    active = [n for n, r in rows.items() if r.state != "leaving"]
    # Unusable nodes go first, then ones being set up, then idle, then busy ones.
    active.sort(key=lambda n: (rank.get(rows[n].state, 2), bool(running_on.get(n)), n))
    if scale.auto_scale is not None:
        # Autoscale only ever gives back nodes without work.
        active = [n for n in active if not running_on.get(n)]
    option = scale.manual.node_deallocation_option if scale.manual else "waitforjobcompletion"
    for name in active[:count]:
        jobs = running_on.get(name, [])
        if not jobs:
            _release_node(cluster, rows, plan, name, world)
        elif option == "waitforjobcompletion":
            rows[name].state, rows[name].since = "leaving", world.now
        else:
            ids = [j.job_id for j in jobs]
            (plan.requeue if option == "requeue" else plan.cancel).extend(
                i for i in ids if i not in plan.requeue and i not in plan.cancel
            )
            _release_node(cluster, rows, plan, name, world)


def _plan_delete(
    cluster: Cluster,
    rows: dict[str, ClusterNode],
    plan: ClusterPlan,
    mine: Sequence[SlurmJob],
    running_on: Mapping[str, list[SlurmJob]],
    world: World,
) -> None:
    """Deletion: cancel queued work; running work is cancelled too, unless the cluster's
    deallocation option is waitforjobcompletion. Once no job is left the partition goes."""
    scale = scale_of(cluster)
    wait = scale.manual is None or scale.manual.node_deallocation_option == "waitforjobcompletion"
    live = [j for j in mine if not j.finished]
    for job in live:
        if job.state == "PENDING" or not wait or job.comment.startswith(SETUP_COMMENT):
            plan.cancel.append(job.job_id)
    if live:
        for name, row in rows.items():
            if row.state != "leaving" and running_on.get(name):
                row.state, row.since = "leaving", world.now
        return
    for name in list(rows):
        _release_node(cluster, rows, plan, name, world)
    plan.remove_partition = True
