"""Small builders of snapshots and clusters for the pure cluster tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapter.backends.base import SlurmJob, SlurmNode
from adapter.clusters.plan import World
from adapter.records import Cluster, ClusterNode, ClusterProvisioning, NodeState, VmPriority

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def node(
    name: str,
    state: str = "IDLE",
    flags: frozenset[str] = frozenset(),
    reason: str = "",
    partitions: tuple[str, ...] = ("pool",),
    feature: str = "a100x2",
    address: str | None = None,
) -> SlurmNode:
    return SlurmNode(
        name=name,
        address=address or f"10.0.0.{name[-1]}",
        hostname=name,
        port=6818,
        state=state,
        flags=flags,
        gres="gpu:a100:2",
        gpu_type="a100",
        gpus=2,
        gpus_used=0,
        cpus=2,
        real_memory_mb=2048,
        features=(feature,),
        partitions=partitions,
        reason=reason,
    )


def job(
    job_id: int,
    partition: str,
    state: str = "RUNNING",
    nodes: tuple[str, ...] = (),
    reason: str = "None",
    node_count: int = 1,
    comment: str = "",
    exit_status: int | None = None,
) -> SlurmJob:
    return SlurmJob(
        job_id=job_id,
        name="j",
        user="alice",
        partition=partition,
        state=state,
        state_reason=reason,
        comment=comment,
        restart_count=0,
        nodes=nodes,
        node_count=node_count,
        submit_time=T0,
        start_time=None,
        end_time=None,
        time_limit_minutes=None,
        exit_status=exit_status,
        term_signal=None,
        requeue=True,
        batch_host=nodes[0] if nodes else "",
    )


def cluster(
    priority: VmPriority = "dedicated",
    scale: dict[str, Any] | None = None,
    rows: dict[str, NodeState] | None = None,
    setup: bool = False,
    state: ClusterProvisioning = "succeeded",
    name: str = "c1",
) -> Cluster:
    props: dict[str, Any] = {
        "vmSize": "a100x2",
        "vmPriority": priority,
        "scaleSettings": scale
        or {"manual": {"targetNodeCount": 1, "nodeDeallocationOption": "requeue"}},
        "userAccountSettings": {"adminUserName": "alice"},
    }
    if setup:
        props["nodeSetup"] = {
            "setupTask": {"commandLine": "true", "stdOutErrPathPrefix": "/shared"}
        }
    c = Cluster(
        uid="0123456789abcdef",
        sub="s",
        rg="rg",
        ws="ws",
        name=name,
        partition=f"{name}-012345",
        node_type="a100x2",
        priority=priority,
        properties=props,
        secrets={},
        owner="alice",
        created=T0,
        provisioning_state=state,
        provisioning_changed=T0,
        allocation_state="steady",
        allocation_changed=T0,
        errors=[],
    )
    for n, row_state in (rows or {}).items():
        c.nodes[n] = ClusterNode(
            node=n,
            state=row_state,
            setup_job=None,
            since=T0,
            idle_since=T0 if row_state == "ready" else None,
        )
    return c


def world(
    nodes: list[SlurmNode],
    jobs: list[SlurmJob] | None = None,
    dedicated_owned: set[str] | frozenset[str] = frozenset(),
    low_shared: dict[str, int] | None = None,
    held: int = 0,
    now: datetime | None = None,
) -> World:
    return World(
        nodes={n.name: n for n in nodes},
        jobs=jobs or [],
        type_nodes=sorted(n.name for n in nodes),
        dedicated_owned=frozenset(dedicated_owned),
        low_shared=low_shared or {},
        held_demand=held,
        now=now or T0 + timedelta(hours=1),
    )


def manual(n: int, option: str = "requeue") -> dict[str, Any]:
    return {"manual": {"targetNodeCount": n, "nodeDeallocationOption": option}}


def auto(lo: int, hi: int) -> dict[str, Any]:
    return {"autoScale": {"minimumNodeCount": lo, "maximumNodeCount": hi, "initialNodeCount": 0}}
