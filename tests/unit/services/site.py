"""A whole bai over FakeSlurm, for the service and route tests: the real services wired by
`build_services`, settings and spool in a temp directory, and reconciler passes on demand."""

from __future__ import annotations

import json
import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapter.api.app import build_services
from adapter.api.deps import Services
from adapter.auth import Principal
from adapter.backends.fake import FakeSlurm
from adapter.clock import Clock, now
from adapter.clusters.service import ClusterKey
from adapter.jobs.translate import JobKey
from adapter.models.clusters import ClusterCreateParameters
from adapter.models.jobs import JobCreateParameters
from adapter.models.workspaces import WorkspaceCreateParameters
from adapter.records import Cluster, Job
from adapter.settings import ClusterSettings, JobSettings, Settings
from adapter.snapshot import Snapshot

SUB = "00000000-0000-0000-0000-000000000000"
RG = "rg"
WS = "ws"
EXP = "exp"
ALICE = Principal("alice", admin=False)
BOB = Principal("bob", admin=False)
# The dev inventory: three a100x2 nodes and two t4x1 nodes, on 127.0.1.1 to 127.0.1.5.
A100 = ("gpu-a100-1", "gpu-a100-2", "gpu-a100-3")
T4 = ("gpu-t4-1", "gpu-t4-2")


@dataclass
class Site:
    """One bai and its Slurm."""

    slurm: FakeSlurm
    svc: Services
    root: Path

    async def reconcile(self) -> Snapshot:
        """One reconciler pass (clusters, then jobs, then deletions); it must not fail."""
        snap = await self.svc.reconciler.run_pass()
        assert snap is not None, self.svc.reconciler.health.last_error
        return snap

    def workspace(self, owner: Principal = ALICE, ws: str = WS) -> None:
        body = WorkspaceCreateParameters.model_validate({"location": "eastus"})
        self.svc.workspaces.create(SUB, RG, ws, body, owner)
        workspace = self.svc.store.workspace(SUB, RG, ws)
        assert workspace is not None
        self.svc.workspaces.create_experiment(workspace, EXP, owner.user)

    async def cluster(
        self, name: str = "c1", owner: Principal = ALICE, ws: str = WS, **properties: Any
    ) -> Cluster:
        body = ClusterCreateParameters.model_validate(
            {"properties": cluster_properties(owner.user, **properties)}
        )
        return await self.svc.clusters.create(ClusterKey(SUB, RG, ws, name), body, owner)

    async def job(
        self,
        name: str,
        cluster: str = "c1",
        owner: Principal = ALICE,
        ws: str = WS,
        **properties: Any,
    ) -> Job:
        """A job of experiment `exp` in workspace `ws`, on cluster `cluster` of alice's `WS`."""
        body = JobCreateParameters.model_validate(
            {"properties": job_properties(cluster_id(cluster), self.root, **properties)}
        )
        return await self.svc.jobs.create(JobKey(SUB, RG, ws, EXP, name), body, owner)

    def stored(self, name: str) -> Job:
        job = self.svc.store.job(SUB, RG, WS, EXP, name)
        assert job is not None, f"job {name} is not in the store"
        return job

    def write_log(self, job: Job, *events: dict[str, Any], append: bool = False) -> None:
        """execution.log as the job's script writes it: JSON lines, owned by the job's user
        (`append`: as a requeued run adds its own after the earlier runs')."""
        path = Path(job.info["layout"]["spool"]) / "execution.log"
        with path.open("a" if append else "w") as log:
            log.write("".join(json.dumps(e) + "\n" for e in events))
        entry = pwd.getpwnam(job.owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def cluster_id(name: str, ws: str = WS) -> str:
    return (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.BatchAI/workspaces/{ws}"
        f"/clusters/{name}"
    )


def cluster_properties(
    admin: str, vm_size: str = "a100x2", priority: str = "dedicated", nodes: int = 1, **extra: Any
) -> dict[str, Any]:
    return {
        "vmSize": vm_size,
        "vmPriority": priority,
        "scaleSettings": {"manual": {"targetNodeCount": nodes}},
        "userAccountSettings": {"adminUserName": admin},
        **extra,
    }


def job_properties(cluster: str, root: Path, nodes: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "cluster": {"id": cluster},
        "nodeCount": nodes,
        "customToolkitSettings": {"commandLine": "python train.py"},
        "stdOutErrPathPrefix": str(root / "out"),
        **extra,
    }


def build_site(root: Path, clock: Clock = now, **clusters: Any) -> Site:
    """bai with its state, spool and job root under `root`, over the dev inventory, on `clock`
    (Slurm's too); `clusters` are more ClusterSettings (autoscale_idle_seconds=0)."""
    spool = root / "spool"
    (spool / "jobs").mkdir(parents=True)
    spool.chmod(0o711)
    (spool / "jobs").chmod(0o711)
    settings = Settings(
        state_dir=root / "state",
        clusters=ClusterSettings(spool_dir=str(spool), **clusters),
        jobs=JobSettings(job_root=str(root / "jobs")),
    )
    slurm = FakeSlurm(include_path=str(root / "adapter-partitions.conf"), clock=clock)
    # Each node on its own loopback address, as on the dev cluster.
    for i, name in enumerate(A100 + T4, 1):
        slurm.add_node(name, *(("a100", 2) if name in A100 else ("t4", 1)), address=f"127.0.1.{i}")
    return Site(slurm, build_services(settings, slurm, clock), root)
