"""Who may see and change what: owners, workspaces shared with Unix groups, admins (DESIGN.md 8).

Every workspace, experiment, cluster, job and operation has an owner: the Unix user of the token
that made it. A user sees their own workspaces and those shared with one of their Unix groups
(the workspace tag `bai-groups`, a comma-separated list); an admin sees everything. In a
workspace they see, a user sees everything and may create experiments, clusters and jobs; they
may change or delete what they own, and the workspace's owner may change or delete anything in
it. Only the owner (or an admin) changes the workspace itself: its tags, its sharing, its
deletion.

What a user may not see answers exactly like what does not exist: every lookup here raises the
one NotFound that a missing name gets, and the services use the same messages.
"""

from __future__ import annotations

import functools
import grp
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from adapter.auth import Principal
from adapter.errors import Forbidden, InvalidRequest, NotFound
from adapter.records import Cluster, Experiment, Job, Operation, Workspace
from adapter.store import Store
from adapter.unix import groups_of, primary_group

SHARE_TAG = "bai-groups"
T = TypeVar("T")


# -- the answers for a missing (or hidden) resource --------------------------------------------


def missing_workspace(rg: str, name: str) -> NotFound:
    return NotFound(f"workspace {rg}/{name} does not exist", target="workspaceName")


def missing_experiment(rg: str, ws: str, name: str) -> NotFound:
    return NotFound(f"experiment {rg}/{ws}/{name} does not exist", target="experimentName")


def missing_cluster(rg: str, ws: str, name: str) -> NotFound:
    return NotFound(f"cluster {rg}/{ws}/{name} does not exist", target="clusterName")


def missing_job(rg: str, ws: str, exp: str, name: str) -> NotFound:
    return NotFound(f"job {rg}/{ws}/{exp}/{name} does not exist", target="jobName")


def missing_operation(op_id: str) -> NotFound:
    return NotFound(f"operation {op_id} does not exist", target="operationId")


# -- sharing -----------------------------------------------------------------------------------


def shared_groups(tags: Mapping[str, str]) -> tuple[str, ...]:
    """The Unix groups a workspace is shared with, from its `bai-groups` tag."""
    value = tags.get(SHARE_TAG, "")
    return tuple(sorted({g.strip() for g in value.split(",") if g.strip()}))


def check_sharing(tags: Mapping[str, str], principal: Principal, owner: str) -> None:
    """A `bai-groups` tag names existing groups; a user shares only with groups they are in
    (an admin with any group)."""
    field = f"tags.{SHARE_TAG}"
    mine = groups_of(owner)
    for group in shared_groups(tags):
        try:
            grp.getgrnam(group)
        except KeyError:
            raise InvalidRequest(
                f"{field}: there is no Unix group {group!r}; name existing groups, separated "
                "by commas",
                target=field,
            ) from None
        if not principal.admin and group not in mine:
            raise InvalidRequest(
                f"{field}: {owner!r} is not a member of group {group!r}; you can share a "
                "workspace only with your own groups (`id` lists them)",
                target=field,
            )


def can_see(principal: Principal, ws: Workspace) -> bool:
    if principal.admin or ws.owner == principal.user:
        return True
    return not groups_of(principal.user).isdisjoint(shared_groups(ws.tags))


def may_change(principal: Principal, ws: Workspace, owner: str | None = None) -> bool:
    """The workspace's owner, the thing's owner, or an admin."""
    return principal.admin or principal.user in {ws.owner, owner}


def slurm_groups(ws: Workspace, users: Iterable[str]) -> tuple[str, ...]:
    """The partition's AllowGroups for a cluster of `ws`: the primary group of the workspace's
    owner and of `users` (the cluster's admin user, whose setup tasks run in it), and the
    groups the workspace is shared with. On sites with user-private groups (Debian's and
    RHEL's default) a primary group is its user alone."""
    primaries = {primary_group(u) for u in (ws.owner, *users)}
    return tuple(sorted({g for g in primaries if g} | set(shared_groups(ws.tags))))


class Tenancy:
    """The lookups every API route makes first: the caller's view of the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def workspaces(self, principal: Principal, sub: str, rg: str | None = None) -> list[Workspace]:
        return [w for w in self.store.workspaces(sub, rg) if can_see(principal, w)]

    def workspace(self, principal: Principal, sub: str, rg: str, name: str) -> Workspace:
        ws = self._visible(principal, sub, rg, name)
        if ws is None:
            raise missing_workspace(rg, name)
        return ws

    def _visible(self, principal: Principal, sub: str, rg: str, name: str) -> Workspace | None:
        ws = self.store.workspace(sub, rg, name)
        return ws if ws is not None and can_see(principal, ws) else None

    def _within(
        self,
        principal: Principal,
        sub: str,
        rg: str,
        ws: str,
        read: Callable[[], T | None],
        missing: NotFound,
    ) -> tuple[Workspace, T]:
        """A thing of a workspace: read only if the caller sees the workspace, and `missing`
        whether the workspace or the thing is not there for them."""
        workspace = self._visible(principal, sub, rg, ws)
        found = read() if workspace else None
        if workspace is None or found is None:
            raise missing
        return workspace, found

    def experiment(
        self, principal: Principal, sub: str, rg: str, ws: str, name: str
    ) -> tuple[Workspace, Experiment]:
        read = functools.partial(self.store.experiment, sub, rg, ws, name)
        return self._within(principal, sub, rg, ws, read, missing_experiment(rg, ws, name))

    def cluster(
        self, principal: Principal, sub: str, rg: str, ws: str, name: str
    ) -> tuple[Workspace, Cluster]:
        read = functools.partial(self.store.cluster, sub, rg, ws, name)
        return self._within(principal, sub, rg, ws, read, missing_cluster(rg, ws, name))

    def job(
        self, principal: Principal, sub: str, rg: str, ws: str, exp: str, name: str
    ) -> tuple[Workspace, Job]:
        read = functools.partial(self.store.job, sub, rg, ws, exp, name)
        return self._within(principal, sub, rg, ws, read, missing_job(rg, ws, exp, name))

    def may_use(self, principal: Principal, cluster: Cluster) -> bool:
        """A job may run on a cluster of a workspace its user sees."""
        return self._visible(principal, cluster.sub, cluster.rg, cluster.ws) is not None

    def operation(self, principal: Principal, op_id: str) -> Operation:
        op = self.store.operation(op_id)
        if op is None or not (principal.admin or op.owner == principal.user):
            raise missing_operation(op_id)
        return op

    @staticmethod
    def require_change(
        principal: Principal, ws: Workspace, owner: str | None, what: str, target: str
    ) -> None:
        """Members of a shared workspace see everything in it but change only their own."""
        if not may_change(principal, ws, owner):
            raise Forbidden(
                f"{what} belongs to another member of shared workspace {ws.rg}/{ws.name}; only "
                "its owner, the workspace's owner or an admin may change it",
                target=target,
            )
