"""GPU quotas: what a cluster counts, which quota binds, refusals, usages, and the planner's
growth stopping at the headroom (pure)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from adapter.clusters.inventory import NodeType
from adapter.clusters.plan import plan_cluster
from adapter.clusters.quotas import (
    Holding,
    configured,
    held_nodes,
    holdings,
    memberships,
    over_quota,
    quotas_for,
    rooms,
    usages,
)
from adapter.records import Cluster, VmPriority
from adapter.settings import ClusterSettings, QuotaSettings, Settings
from tests.unit.clusters.factories import auto, cluster, job, manual, node, world

CFG = ClusterSettings(autoscale_idle_seconds=300)
A100 = NodeType("a100x2", ("n1", "n2", "n3"), "gpu:a100:2", "a100", 2, 2, 2048, None)
T4 = NodeType("t4x1", ("t1", "t2"), "gpu:t4:1", "t4", 1, 2, 2048, None)
CPU = NodeType("cpu", ("c1",), "", None, 0, 8, 2048, None)
TYPES = {"a100x2": A100, "t4x1": T4, "cpu": CPU}
GROUPS = {"alice": frozenset({"alice", "ml-team"}), "carol": frozenset({"carol", "ml-team"})}


def quotas(**spec: Any) -> QuotaSettings:
    return QuotaSettings.model_validate(spec)


def owned(owner: str, priority: VmPriority = "dedicated", **kw: Any) -> Cluster:
    c = cluster(priority, **kw)
    c.owner = owner
    return c


def held(owner: str, gpus: int, priority: str = "dedicated", t: str = "a100x2") -> Holding:
    return Holding(f"{owner}-{gpus}", owner, priority, t, gpus)


def test_a_cluster_counts_what_it_holds_or_is_set_to_hold() -> None:
    assert held_nodes(cluster(scale=manual(2))) == 2  # the target, before the nodes come
    assert held_nodes(cluster(scale=manual(1), rows={"n1": "ready", "n2": "leaving"})) == 2
    assert held_nodes(cluster(scale=auto(0, 3), rows={"n1": "ready"})) == 1  # not the maximum
    assert held_nodes(cluster(scale=auto(2, 3))) == 2
    assert held_nodes(cluster(scale=manual(3), rows={"n1": "ready"}, state="deleting")) == 1
    got = holdings([cluster(scale=manual(2)), replace(cluster(), node_type="gone")], TYPES)
    assert [h.gpus for h in got] == [4]  # a type Slurm no longer shows counts nothing


def test_a_users_unset_limit_falls_back_to_the_default_and_groups_add_theirs() -> None:
    cfg = quotas(
        default={"dedicated_gpus": 8, "lowpriority_gpus": 16},
        users={"bob": {"dedicated_gpus": 2}},
        groups={"ml-team": {"dedicated_gpus": 6}, "other": {"dedicated_gpus": 1}},
    )
    (bob,) = quotas_for("bob", frozenset({"bob"}), "dedicated", cfg)
    assert (bob.limit, bob.default, bob.label) == (2, False, "user bob's dedicated GPU quota")
    (low,) = quotas_for("bob", frozenset(), "lowpriority", cfg)
    assert (low.limit, low.default, low.label) == (16, True, "user bob's low-priority GPU quota")
    alice = quotas_for("alice", GROUPS["alice"], "dedicated", cfg)
    assert [(q.kind, q.name, q.limit) for q in alice] == [
        ("user", "alice", 8),
        ("group", "ml-team", 6),
    ]
    assert quotas_for("alice", GROUPS["alice"], "lowpriority", quotas()) == []
    assert not configured(quotas()) and configured(quotas(default={"lowpriority_gpus": 0}))


def test_every_quota_holds_so_the_one_with_least_headroom_binds() -> None:
    cfg = quotas(users={"alice": {"dedicated_gpus": 8}}, groups={"ml-team": {"dedicated_gpus": 6}})
    others = [held("alice", 2), held("carol", 3), held("bob", 4), held("carol", 9, "lowpriority")]
    found = rooms("alice", "dedicated", others, GROUPS, cfg)
    # The group counts its members' clusters (alice's 2 + carol's 3), not bob's.
    assert [(r.quota.name, r.use, r.gpus) for r in found] == [("ml-team", 5, 1), ("alice", 2, 6)]
    assert rooms("bob", "dedicated", others, GROUPS, cfg) == []


def test_a_cluster_past_a_quota_is_refused_with_the_quota_and_the_total_named() -> None:
    cfg = quotas(users={"bob": {"dedicated_gpus": 4}}, groups={"ml-team": {"dedicated_gpus": 6}})
    mine = [held("bob", 2)]
    why = over_quota("bob", "dedicated", 2, A100, mine, {}, cfg)
    assert why is not None and why.startswith(
        "user bob's dedicated GPU quota is 4 GPU(s); this cluster (2 a100x2 node(s), 4 GPU(s)) "
        "would bring bob to 6."
    )
    assert "larger quota" in why
    assert over_quota("bob", "dedicated", 1, A100, mine, {}, cfg) is None  # exactly at the limit
    assert over_quota("bob", "lowpriority", 9, A100, mine, {}, cfg) is None  # no such quota
    over = [held("bob", 6)]  # past it (the quota was lowered): a cluster of no nodes adds nothing
    assert over_quota("bob", "dedicated", 0, A100, over, {}, cfg) is None
    assert over_quota("bob", "dedicated", 1, CPU, over, {}, cfg) is None
    team = over_quota("alice", "dedicated", 1, A100, [held("carol", 5)], GROUPS, cfg)
    assert team is not None and "group ml-team's dedicated GPU quota is 6" in team
    assert "would bring the members of group ml-team to 7" in team
    default = over_quota("eve", "dedicated", 1, T4, [], {}, quotas(default={"dedicated_gpus": 0}))
    assert default is not None and "(the site's default per user) is 0" in default


def test_group_memberships_are_looked_up_only_for_group_quotas() -> None:
    def lookup(user: str) -> frozenset[str]:
        raise AssertionError("no group quota: nothing to look up")

    assert memberships(["alice"], quotas(users={"bob": {"dedicated_gpus": 1}}), lookup) == {}
    cfg = quotas(groups={"ml-team": {"dedicated_gpus": 1}})
    assert memberships(["b", "a", "b"], cfg, lambda u: frozenset({u})) == {
        "a": frozenset({"a"}),
        "b": frozenset({"b"}),
    }


def test_usages_give_a_user_use_and_what_the_binding_quota_lets_them_reach() -> None:
    cfg = quotas(users={"bob": {"dedicated_gpus": 4, "lowpriority_gpus": 2}})
    others = [held("bob", 2), held("bob", 1, "lowpriority", "t4x1"), held("alice", 4)]
    rows = {r.name: (r.current, r.limit) for r in usages("bob", TYPES, others, {}, cfg)}
    assert rows == {
        "a100x2 dedicated GPUs": (2, 4),
        "a100x2 low-priority GPUs": (0, 1),
        "t4x1 dedicated GPUs": (0, 2),  # the headroom, but no more than the type has
        "t4x1 low-priority GPUs": (1, 2),
        "Total dedicated GPUs": (2, 4),
        "Total low-priority GPUs": (1, 2),
        "user bob's dedicated GPU quota": (2, 4),
        "user bob's low-priority GPU quota": (1, 2),
    }
    free = {r.name: (r.current, r.limit) for r in usages("alice", TYPES, others, {}, cfg)}
    assert free["a100x2 dedicated GPUs"] == (4, 6) and free["Total dedicated GPUs"] == (4, 8)
    assert not any("quota" in name for name in free)


def test_usages_for_an_admin_are_the_sites_with_every_configured_quota() -> None:
    cfg = quotas(
        default={"dedicated_gpus": 8},
        users={"bob": {"lowpriority_gpus": 2}},
        groups={"ml-team": {"dedicated_gpus": 6}},
    )
    others = [held("bob", 2), held("carol", 4), held("alice", 2, "lowpriority")]
    rows = {r.name: (r.current, r.limit) for r in usages(None, TYPES, others, GROUPS, cfg)}
    assert rows["a100x2 dedicated GPUs"] == (6, 6) and rows["Total dedicated GPUs"] == (6, 8)
    assert rows["Total low-priority GPUs"] == (2, 8)
    assert rows["user bob's dedicated GPU quota"] == (2, 8)  # the default
    assert rows["user carol's dedicated GPU quota"] == (4, 8)
    assert rows["group ml-team's dedicated GPU quota"] == (4, 6)
    assert rows["user bob's low-priority GPU quota"] == (0, 2)


def test_quota_settings_refuse_a_misspelt_or_negative_limit() -> None:
    with pytest.raises(ValidationError, match="dedicated_gpu"):
        Settings(quotas=quotas(users={"bob": {"dedicated_gpu": 2}}))
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Settings(quotas=quotas(groups={"ml": {"lowpriority_gpus": -1}}))
    assert Settings().quotas.users == {}


def test_autoscale_growth_stops_at_the_quota_with_an_entry_naming_it() -> None:
    nodes = [node("n1"), node("n2"), node("n3")]
    c = cluster(scale=auto(0, 3), rows={"n1": "ready"})
    c.nodes["n1"].idle_since = None
    jobs = [job(1, c.partition, nodes=("n1",))] + [
        job(i, c.partition, "PENDING", reason="Resources") for i in (2, 3)
    ]
    free = plan_cluster(c, world(nodes, jobs), CFG)
    assert len(free.nodes) == 3 and free.notes == []
    quota = "user alice's dedicated GPU quota is 4 GPU(s) and other clusters of alice count 0"
    capped = plan_cluster(c, replace(world(nodes, jobs), quota_nodes=2, quota=quota), CFG)
    assert sorted(capped.nodes) == ["n1", "n2"]
    (note,) = capped.notes
    assert note["code"] == "QuotaExceeded" and quota in note["message"]
    assert "holds at most 2" in note["message"]
    roomy = plan_cluster(c, replace(world(nodes, jobs), quota_nodes=3, quota=quota), CFG)
    assert len(roomy.nodes) == 3 and roomy.notes == []


def test_a_quota_lowered_below_a_cluster_never_takes_nodes_away() -> None:
    c = cluster(scale=manual(2), rows={"n1": "ready", "n2": "ready"})
    plan = plan_cluster(c, replace(world([node("n1"), node("n2")]), quota_nodes=0), CFG)
    assert sorted(plan.nodes) == ["n1", "n2"] and plan.notes == [] and plan.release == []


def test_leaving_nodes_still_count_against_the_quota() -> None:
    nodes = [node("n1"), node("n2"), node("n3")]
    c = cluster(scale=manual(2, "waitforjobcompletion"), rows={"n1": "ready", "n2": "leaving"})
    busy = [job(1, c.partition, nodes=("n2",))]
    plan = plan_cluster(c, replace(world(nodes, busy), quota_nodes=2, quota="q"), CFG)
    assert sorted(plan.nodes) == ["n1", "n2"] and plan.notes[0]["code"] == "QuotaExceeded"
    done = plan_cluster(c, replace(world(nodes), quota_nodes=2, quota="q"), CFG)
    # n2 is released, and a node joins in its place (n2 again: the first free one).
    assert {r.state for r in done.nodes.values()} == {"ready"} and done.notes == []
    assert len(done.nodes) == 2
