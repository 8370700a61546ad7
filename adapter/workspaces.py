"""Workspaces and experiments: namespaces in the store. Deleting a workspace deletes its clusters
and experiments; the deletion completes once the last cluster is gone."""

from __future__ import annotations

import structlog

from adapter.auth import Principal
from adapter.clock import Clock, now
from adapter.clusters.service import ClusterKey, ClusterService
from adapter.errors import Conflict, Forbidden
from adapter.jobs.service import JobService
from adapter.jobs.translate import JobKey
from adapter.models.workspaces import WorkspaceCreateParameters
from adapter.records import Experiment, Operation, Workspace
from adapter.snapshot import Snapshot
from adapter.store import Store
from adapter.tenancy import (
    can_see,
    check_sharing,
    may_change,
    missing_experiment,
    missing_workspace,
)

log = structlog.get_logger(__name__)


class WorkspaceService:
    """Workspaces and experiments."""

    def __init__(
        self, store: Store, clusters: ClusterService, jobs: JobService, clock: Clock = now
    ) -> None:
        self.store = store
        self.clock = clock
        self.clusters = clusters
        self.jobs = jobs

    def get(self, sub: str, rg: str, name: str) -> Workspace:
        ws = self.store.workspace(sub, rg, name)
        if ws is None:
            raise missing_workspace(rg, name)
        return ws

    def create(
        self, sub: str, rg: str, name: str, body: WorkspaceCreateParameters, principal: Principal
    ) -> Workspace:
        """Create a workspace owned by the caller, or update the caller's own (a PUT again).

        Workspace names are one namespace per resource group for the whole site, so a name
        another user holds cannot be taken: that is a 409 that says nothing of the holder.
        Members of a shared workspace see it, but only its owner or an admin may change it.
        """
        existing = self.store.workspace(sub, rg, name)
        if existing is not None:
            if not can_see(principal, existing):
                raise Conflict(
                    f"the workspace name {rg}/{name} is taken; choose another name or another "
                    "resource group",
                    target="workspaceName",
                )
            if existing.state == "deleting":
                raise Conflict(f"workspace {rg}/{name} is being deleted; retry once it is gone")
            self._require_owner(principal, existing)
            check_sharing(body.tags, principal, existing.owner)
            existing.tags, existing.location = body.tags, body.location
            self.store.put_workspace(existing)
            return existing
        check_sharing(body.tags, principal, principal.user)
        t = self.clock()
        ws = Workspace(sub, rg, name, body.location, body.tags, t, "succeeded", t, principal.user)
        self.store.put_workspace(ws)
        log.info("workspace created", workspace=f"{rg}/{name}", owner=principal.user)
        return ws

    def update_tags(self, ws: Workspace, tags: dict[str, str], principal: Principal) -> Workspace:
        self._require_owner(principal, ws)
        check_sharing(tags, principal, ws.owner)
        ws.tags = tags
        self.store.put_workspace(ws)
        return ws

    @staticmethod
    def _require_owner(principal: Principal, ws: Workspace) -> None:
        if not may_change(principal, ws):  # the workspace itself: its owner's, or an admin's
            raise Forbidden(
                f"workspace {ws.rg}/{ws.name} is shared with you; only its owner or an admin may "
                "change or delete it",
                target="workspaceName",
            )

    async def delete(self, ws: Workspace, principal: Principal) -> Operation:
        self._require_owner(principal, ws)
        sub, rg, name = ws.sub, ws.rg, ws.name
        target = f"workspace:{sub}/{rg}/{name}"
        op, _ = self.store.begin_operation("delete-workspace", target, principal.user)
        if ws.state != "deleting":
            ws.state, ws.state_changed = "deleting", self.clock()
            self.store.put_workspace(ws)
            log.info("workspace deletion started", workspace=f"{rg}/{name}")
        for ex in self.store.experiments(sub, rg, name):
            await self._delete_experiment(ex, principal.user)
        for cluster in self.store.clusters(sub, rg, name):
            await self.clusters.delete(ClusterKey(sub, rg, name, cluster.name), principal.user)
        self.finish_deletions()
        return op

    def finish_deletions(self) -> None:
        """Remove experiments and workspaces whose deletion has nothing left to wait for."""
        for op in self.store.operations_in_progress(kind="delete-experiment"):
            sub, rg, ws, name = op.target.removeprefix("experiment:").split("/", 3)
            if not self.store.jobs(sub, rg, ws, name):
                self.store.delete_experiment(sub, rg, ws, name)
                op.status, op.updated = "Succeeded", self.clock()
                self.store.put_operation(op)
        for op in self.store.operations_in_progress(kind="delete-workspace"):
            sub, rg, name = op.target.removeprefix("workspace:").split("/", 2)
            if not self.store.clusters(sub, rg, name) and not self.store.experiments(sub, rg, name):
                self.store.delete_workspace(sub, rg, name)
                op.status, op.updated = "Succeeded", self.clock()
                self.store.put_operation(op)
                log.info("workspace deleted", workspace=f"{rg}/{name}")

    async def on_pass(self, snapshot: Snapshot) -> None:
        self.finish_deletions()

    # -- experiments ---------------------------------------------------------------------------

    def experiment(self, sub: str, rg: str, ws: str, name: str) -> Experiment:
        ex = self.store.experiment(sub, rg, ws, name)
        if ex is None:
            raise missing_experiment(rg, ws, name)
        return ex

    def create_experiment(self, workspace: Workspace, name: str, owner: str) -> Experiment:
        sub, rg, ws = workspace.sub, workspace.rg, workspace.name
        if workspace.state == "deleting":
            raise Conflict(f"workspace {rg}/{ws} is being deleted")
        existing = self.store.experiment(sub, rg, ws, name)
        if existing is not None:
            return existing
        t = self.clock()
        ex = Experiment(sub, rg, ws, name, t, "succeeded", t, owner)
        self.store.put_experiment(ex)
        return ex

    async def delete_experiment(self, ex: Experiment, owner: str) -> Operation:
        """Deleting an experiment deletes its jobs (terminating running ones) first."""
        op = await self._delete_experiment(ex, owner)
        self.finish_deletions()
        return op

    async def _delete_experiment(self, ex: Experiment, owner: str) -> Operation:
        sub, rg, ws, name = ex.sub, ex.rg, ex.ws, ex.name
        target = f"experiment:{sub}/{rg}/{ws}/{name}"
        op, _ = self.store.begin_operation("delete-experiment", target, owner)
        if ex.state != "deleting":
            ex.state, ex.state_changed = "deleting", self.clock()
            self.store.put_experiment(ex)
        for job in self.store.jobs(sub, rg, ws, name):
            await self.jobs.delete(JobKey(sub, rg, ws, name, job.name), owner)
        return op
