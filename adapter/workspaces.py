"""Workspaces and experiments: namespaces in the store. Deleting a workspace deletes its clusters
and experiments; the deletion completes once the last cluster is gone."""

from __future__ import annotations

import structlog

from adapter.clusters.service import ClusterKey, ClusterService
from adapter.errors import Conflict, NotFound
from adapter.jobs.service import JobKey, JobService
from adapter.models.workspaces import WorkspaceCreateParameters
from adapter.snapshot import Snapshot
from adapter.store import Experiment, Operation, Store, Workspace, now

log = structlog.get_logger(__name__)


class WorkspaceService:
    """Workspaces and experiments."""

    def __init__(self, store: Store, clusters: ClusterService, jobs: JobService) -> None:
        self.store = store
        self.clusters = clusters
        self.jobs = jobs

    def get(self, sub: str, rg: str, name: str) -> Workspace:
        ws = self.store.workspace(sub, rg, name)
        if ws is None:
            raise NotFound(f"workspace {rg}/{name} does not exist", target="workspaceName")
        return ws

    def create(self, sub: str, rg: str, name: str, body: WorkspaceCreateParameters) -> Workspace:
        existing = self.store.workspace(sub, rg, name)
        if existing is not None:
            if existing.state == "deleting":
                raise Conflict(f"workspace {rg}/{name} is being deleted; retry once it is gone")
            existing.tags, existing.location = body.tags, body.location
            self.store.put_workspace(existing)
            return existing
        t = now()
        ws = Workspace(sub, rg, name, body.location, body.tags, t, "succeeded", t)
        self.store.put_workspace(ws)
        log.info("workspace created", workspace=f"{rg}/{name}")
        return ws

    def update_tags(self, sub: str, rg: str, name: str, tags: dict[str, str]) -> Workspace:
        ws = self.get(sub, rg, name)
        ws.tags = tags
        self.store.put_workspace(ws)
        return ws

    async def delete(self, sub: str, rg: str, name: str) -> Operation:
        ws = self.get(sub, rg, name)
        op, _ = self.store.begin_operation("delete-workspace", f"workspace:{sub}/{rg}/{name}")
        if ws.state != "deleting":
            ws.state, ws.state_changed = "deleting", now()
            self.store.put_workspace(ws)
            log.info("workspace deletion started", workspace=f"{rg}/{name}")
        for ex in self.store.experiments(sub, rg, name):
            await self.delete_experiment(sub, rg, name, ex.name)
        for cluster in self.store.clusters(sub, rg, name):
            await self.clusters.delete(ClusterKey(sub, rg, name, cluster.name))
        self.finish_deletions()
        return op

    def finish_deletions(self) -> None:
        """Remove experiments and workspaces whose deletion has nothing left to wait for."""
        for op in self.store.operations_in_progress(kind="delete-experiment"):
            sub, rg, ws, name = op.target.removeprefix("experiment:").split("/", 3)
            if not self.store.jobs(sub, rg, ws, name):
                self.store.delete_experiment(sub, rg, ws, name)
                op.status, op.updated = "Succeeded", now()
                self.store.put_operation(op)
        for op in self.store.operations_in_progress(kind="delete-workspace"):
            sub, rg, name = op.target.removeprefix("workspace:").split("/", 2)
            if not self.store.clusters(sub, rg, name) and not self.store.experiments(sub, rg, name):
                self.store.delete_workspace(sub, rg, name)
                op.status, op.updated = "Succeeded", now()
                self.store.put_operation(op)
                log.info("workspace deleted", workspace=f"{rg}/{name}")

    async def on_pass(self, snapshot: Snapshot) -> None:
        self.finish_deletions()

    # -- experiments ---------------------------------------------------------------------------

    def experiment(self, sub: str, rg: str, ws: str, name: str) -> Experiment:
        ex = self.store.experiment(sub, rg, ws, name)
        if ex is None:
            raise NotFound(f"experiment {rg}/{ws}/{name} does not exist", target="experimentName")
        return ex

    def create_experiment(self, sub: str, rg: str, ws: str, name: str) -> Experiment:
        workspace = self.get(sub, rg, ws)
        if workspace.state == "deleting":
            raise Conflict(f"workspace {rg}/{ws} is being deleted")
        existing = self.store.experiment(sub, rg, ws, name)
        if existing is not None:
            return existing
        t = now()
        ex = Experiment(sub, rg, ws, name, t, "succeeded", t)
        self.store.put_experiment(ex)
        return ex

    async def delete_experiment(self, sub: str, rg: str, ws: str, name: str) -> Operation:
        """Deleting an experiment deletes its jobs (terminating running ones) first."""
        ex = self.experiment(sub, rg, ws, name)
        target = f"experiment:{sub}/{rg}/{ws}/{name}"
        op, _ = self.store.begin_operation("delete-experiment", target)
        if ex.state != "deleting":
            ex.state, ex.state_changed = "deleting", now()
            self.store.put_experiment(ex)
        for job in self.store.jobs(sub, rg, ws, name):
            await self.jobs.delete(JobKey(sub, rg, ws, name, job.name))
        self.finish_deletions()
        return op
