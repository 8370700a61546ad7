"""The cluster service's quota check on create and PATCH, and the headroom it gives the planner,
over a real store."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from adapter.backends.base import SlurmBackend
from adapter.clusters.service import ClusterService
from adapter.errors import QuotaExceeded
from adapter.models.clusters import ScaleSettings
from adapter.settings import QuotaSettings, Settings
from adapter.snapshot import Snapshot
from adapter.store import Store
from tests.unit.clusters.factories import T0, auto, cluster, manual, node

SNAP = Snapshot.build(T0, [node("n1"), node("n2"), node("n3")], [])
A100 = SNAP.types["a100x2"]


def service(tmp_path: Path, **quotas: Any) -> ClusterService:
    async def refresh() -> Snapshot:
        raise AssertionError("not used")

    settings = Settings(quotas=QuotaSettings.model_validate(quotas))
    backend = cast(SlurmBackend, object())  # the checks never reach Slurm
    return ClusterService(Store(tmp_path / "bai.db"), backend, settings, lambda: SNAP, refresh)


def scale(spec: dict[str, Any]) -> ScaleSettings:
    return ScaleSettings.model_validate(spec)


def test_creation_counts_the_target_or_the_larger_of_minimum_and_initial(tmp_path: Path) -> None:
    svc = service(tmp_path, users={"alice": {"dedicated_gpus": 4}})
    svc.store.put_cluster(cluster(scale=manual(1), rows={"n1": "ready"}))  # alice holds 2
    svc._check_quota("alice", "dedicated", A100, scale(manual(1)), SNAP, None)
    with pytest.raises(QuotaExceeded) as err:
        svc._check_quota("alice", "dedicated", A100, scale(manual(2)), SNAP, None)
    assert err.value.target == "properties.scaleSettings.manual.targetNodeCount"
    assert err.value.status == 409 and "would bring alice to 6" in err.value.message
    initial = auto(0, 3)
    initial["autoScale"]["initialNodeCount"] = 2
    with pytest.raises(QuotaExceeded) as first:
        svc._check_quota("alice", "dedicated", A100, scale(initial), SNAP, None)
    assert first.value.target == "properties.scaleSettings.autoScale.initialNodeCount"
    with pytest.raises(QuotaExceeded) as floor:
        svc._check_quota("alice", "dedicated", A100, scale(auto(2, 3)), SNAP, None)
    assert floor.value.target == "properties.scaleSettings.autoScale.minimumNodeCount"
    svc._check_quota("alice", "dedicated", A100, scale(auto(0, 3)), SNAP, None)  # max: no count
    svc._check_quota("alice", "lowpriority", A100, scale(manual(3)), SNAP, None)
    svc._check_quota("bob", "dedicated", A100, scale(manual(3)), SNAP, None)


def test_a_patch_claiming_no_more_than_the_cluster_counts_always_passes(tmp_path: Path) -> None:
    svc = service(tmp_path, users={"alice": {"dedicated_gpus": 2}})
    mine = cluster(scale=manual(2), rows={"n1": "ready", "n2": "ready"})  # past it: lowered
    svc.store.put_cluster(mine)
    svc._check_quota("alice", "dedicated", A100, scale(manual(2)), SNAP, mine)
    svc._check_quota("alice", "dedicated", A100, scale(auto(1, 3)), SNAP, mine)
    with pytest.raises(QuotaExceeded, match="quota is 2 GPU"):
        svc._check_quota("alice", "dedicated", A100, scale(manual(3)), SNAP, mine)


def test_the_planner_gets_the_nodes_the_binding_quota_leaves(tmp_path: Path) -> None:
    svc = service(tmp_path, default={"lowpriority_gpus": 4})
    other = cluster("lowpriority", manual(1), rows={"n1": "ready"}, name="other")
    other.uid = "ffff0000"
    mine = cluster("lowpriority", auto(0, 3))
    svc.store.put_cluster(other)
    svc.store.put_cluster(mine)
    world = svc._world(mine, SNAP, 0)
    assert world.quota_nodes == 1  # (4 - 2) GPUs left, 2 per node
    assert world.quota.startswith("user alice's low-priority GPU quota is 4 GPU(s)")
    assert world.quota.endswith("other clusters of alice count 2")
    unlimited = service(tmp_path / "none")
    unlimited.store.put_cluster(mine)
    assert unlimited._world(mine, SNAP, 0).quota_nodes is None


def test_a_pass_gives_every_cluster_the_groups_it_looked_up_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []

    def groups_of(user: str) -> frozenset[str]:
        asked.append(user)
        return frozenset({"team"})

    monkeypatch.setattr("adapter.clusters.service.groups_of", groups_of)
    svc = service(tmp_path, groups={"team": {"lowpriority_gpus": 4}})
    other = cluster("lowpriority", manual(1), rows={"n1": "ready"}, name="other")
    other.uid = "ffff0000"
    mine = cluster("lowpriority", auto(0, 3))
    svc.store.put_cluster(other)
    svc.store.put_cluster(mine)
    alone = svc._world(mine, SNAP, 0)  # outside a pass: looked up for this cluster

    asked.clear()
    groups = svc._memberships(c.owner for c in svc.store.clusters())
    in_pass = [svc._world(c, SNAP, 0, groups) for c in (mine, mine)]

    assert asked == ["alice"]  # once for the pass, however many clusters use it
    assert {(w.quota_nodes, w.quota) for w in in_pass} == {(alone.quota_nodes, alone.quota)}
    assert alone.quota_nodes == 1 and alone.quota.startswith("group team's low-priority")
