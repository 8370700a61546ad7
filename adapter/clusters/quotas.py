"""GPU quotas per user and Unix group: use, headroom, refusals and usages (pure).

A cluster counts its node type's GPUs per node times the nodes it holds or is set to hold
(`held_nodes`) against the quotas of its owner at its priority. A user's use is what their
clusters count; a group's is what its members' clusters count. Every quota that applies must
hold, so the one with the least headroom binds (`rooms` lists the tightest first). The service
looks group memberships up (adapter.unix) and passes them in. docs/clusters.md, "Quotas".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from adapter.clusters.inventory import NodeType
from adapter.clusters.plan import scale_of
from adapter.records import Cluster
from adapter.settings import QuotaSettings

PRIORITIES = ("dedicated", "lowpriority")
WORDS = {"dedicated": "dedicated", "lowpriority": "low-priority"}
Groups = Mapping[str, frozenset[str]]  # user -> the names of their Unix groups


@dataclass(frozen=True)
class Holding:
    """The GPUs one cluster counts against its owner's quotas."""

    uid: str
    owner: str
    priority: str
    node_type: str
    gpus: int


@dataclass(frozen=True)
class Quota:
    """One limit that applies to a user: their own (or the site default), or a group's."""

    kind: Literal["user", "group"]
    name: str
    priority: str
    limit: int
    default: bool = False  # a user's quota that comes from `quotas.default`

    @property
    def label(self) -> str:
        """E.g. `user bob's dedicated GPU quota`."""
        return f"{self.kind} {self.name}'s {WORDS[self.priority]} GPU quota"

    @property
    def holders(self) -> str:
        """Whose clusters count against it."""
        return self.name if self.kind == "user" else f"the members of group {self.name}"

    def covers(self, owner: str, groups: Groups) -> bool:
        if self.kind == "user":
            return owner == self.name
        return self.name in groups.get(owner, frozenset())


@dataclass(frozen=True)
class Room:
    """One quota and what the clusters it covers already count against it."""

    quota: Quota
    use: int

    @property
    def gpus(self) -> int:
        """GPUs still free under the quota (negative when over it)."""
        return self.quota.limit - self.use


@dataclass(frozen=True)
class UsageRow:
    """One `Usage` of the usages operation."""

    name: str
    current: int
    limit: int


def configured(cfg: QuotaSettings) -> bool:
    """Whether any quota is set at all (else bai skips counting)."""
    default = cfg.default
    return bool(cfg.users or cfg.groups) or any(default.limit(p) is not None for p in PRIORITIES)


def held_nodes(cluster: Cluster) -> int:
    """The nodes a cluster counts: those it holds (leaving and unusable ones too), or its manual
    target or autoscale minimum when more; a cluster being deleted counts what it still holds."""
    held = len(cluster.nodes)
    if cluster.provisioning_state == "deleting":
        return held
    scale = scale_of(cluster)
    if scale.manual is not None:
        return max(held, scale.manual.target_node_count)
    assert scale.auto_scale is not None
    return max(held, scale.auto_scale.minimum_node_count)


def holdings(clusters: Iterable[Cluster], types: Mapping[str, NodeType]) -> list[Holding]:
    """What each cluster counts (a cluster whose node type Slurm no longer shows counts none)."""
    return [
        Holding(c.uid, c.owner, c.priority, c.node_type, held_nodes(c) * t.gpus)
        for c in clusters
        if (t := types.get(c.node_type)) is not None
    ]


def memberships(
    users: Iterable[str], cfg: QuotaSettings, lookup: Callable[[str], frozenset[str]]
) -> dict[str, frozenset[str]]:
    """Each user's groups, as far as quotas need them: not at all without group quotas."""
    if not cfg.groups:
        return {}
    return {user: lookup(user) for user in sorted(set(users))}


def quotas_for(user: str, groups: frozenset[str], priority: str, cfg: QuotaSettings) -> list[Quota]:
    """The quotas that apply to `user`'s clusters of `priority`."""
    found: list[Quota] = []
    own = cfg.users.get(user)
    limit = own.limit(priority) if own is not None else None
    if limit is not None:
        found.append(Quota("user", user, priority, limit))
    elif (limit := cfg.default.limit(priority)) is not None:
        found.append(Quota("user", user, priority, limit, default=True))
    for group in sorted(groups & cfg.groups.keys()):
        if (limit := cfg.groups[group].limit(priority)) is not None:
            found.append(Quota("group", group, priority, limit))
    return found


def use_of(quota: Quota, held: Iterable[Holding], groups: Groups) -> int:
    return sum(
        h.gpus for h in held if h.priority == quota.priority and quota.covers(h.owner, groups)
    )


def rooms(
    user: str, priority: str, held: Sequence[Holding], groups: Groups, cfg: QuotaSettings
) -> list[Room]:
    """Every quota that applies to `user` at `priority`, with its use in `held`, tightest first."""
    found = [
        Room(q, use_of(q, held, groups))
        for q in quotas_for(user, groups.get(user, frozenset()), priority, cfg)
    ]
    return sorted(found, key=lambda r: r.gpus)


def over_quota(
    user: str,
    priority: str,
    nodes: int,
    node_type: NodeType,
    others: Sequence[Holding],
    groups: Groups,
    cfg: QuotaSettings,
) -> str | None:
    """Why a cluster of `user` counting `nodes` nodes would break a quota, given what the other
    clusters count; None when every quota holds (always for no GPUs: nothing is added)."""
    gpus = nodes * node_type.gpus
    if gpus == 0:
        return None
    for room in rooms(user, priority, others, groups, cfg):
        if gpus > room.gpus:
            q = room.quota
            where = " (the site's default per user)" if q.default else ""
            return (
                f"{q.label}{where} is {q.limit} GPU(s); this cluster ({nodes} {node_type.name} "
                f"node(s), {gpus} GPU(s)) would bring {q.holders} to {room.use + gpus}. Ask for "
                f"fewer nodes, shrink or delete other {WORDS[priority]} clusters, or ask the "
                "operator for a larger quota"
            )
    return None


def room_text(room: Room) -> str:
    """The binding quota, for a cluster's QuotaExceeded entry."""
    q = room.quota
    return f"{q.label} is {q.limit} GPU(s) and other clusters of {q.holders} count {room.use}"


def usages(
    caller: str | None,
    types: Mapping[str, NodeType],
    held: Sequence[Holding],
    groups: Groups,
    cfg: QuotaSettings,
) -> list[UsageRow]:
    """GPU use and limit per node type and priority, in total, and per quota.

    For a user, their clusters' GPUs, with as limit what the binding quota lets them reach
    (use plus its headroom, at most the GPUs there are), else the GPUs there are; then each quota
    that applies to them. For the site (`caller` None): every cluster's GPUs against the GPUs
    there are, then every configured quota.
    """
    mine = [h for h in held if caller is None or h.owner == caller]
    rows: list[UsageRow] = []
    site = {p: 0 for p in PRIORITIES}
    binding: dict[str, Room | None] = {p: None for p in PRIORITIES}
    if caller is not None:
        for p in PRIORITIES:
            binding[p] = next(iter(rooms(caller, p, held, groups, cfg)), None)

    def limit(p: str, current: int, there: int | None) -> int:
        room = binding[p]
        if room is None:
            return there if there is not None else site[p]
        reach = max(0, current + room.gpus)
        return reach if there is None else min(there, reach)

    for t in types.values():
        if t.gpus == 0:
            continue
        there = t.gpus * len(t.nodes)
        for p in PRIORITIES:
            site[p] += there
            current = sum(h.gpus for h in mine if h.node_type == t.name and h.priority == p)
            rows.append(UsageRow(f"{t.name} {WORDS[p]} GPUs", current, limit(p, current, there)))
    for p in PRIORITIES:
        current = sum(h.gpus for h in mine if h.priority == p)
        rows.append(UsageRow(f"Total {WORDS[p]} GPUs", current, limit(p, current, None)))
    for p in PRIORITIES:
        if caller is not None:
            found = [r.quota for r in rooms(caller, p, held, groups, cfg)]
        else:
            found = _configured_quotas(p, {h.owner for h in held}, cfg)
        rows += [UsageRow(q.label, use_of(q, held, groups), q.limit) for q in found]
    return rows


def _configured_quotas(priority: str, owners: set[str], cfg: QuotaSettings) -> list[Quota]:
    """Every user quota (listed users, and owners under the default) and group quota."""
    users = [
        q
        for u in sorted(set(cfg.users) | owners)
        for q in quotas_for(u, frozenset(), priority, cfg)
    ]
    groups = [
        Quota("group", g, priority, limit)
        for g, quota in sorted(cfg.groups.items())
        if (limit := quota.limit(priority)) is not None
    ]
    return users + groups
