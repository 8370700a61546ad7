"""setup-secrets.env lives while a setup job of the cluster may read it, and no longer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from adapter.backends.base import PartitionSpec, SlurmBackend, SlurmJob, SlurmNode
from adapter.backends.slurm_options import SlurmOptions, check_script
from adapter.clusters.plan import SETUP_COMMENT
from adapter.clusters.service import ClusterService
from adapter.records import Cluster
from adapter.settings import ClusterSettings, Settings
from adapter.snapshot import Snapshot
from adapter.store import Store
from tests.unit.clusters.factories import T0, cluster, job, manual, node

NODES = [node("n1"), node("n2")]


class FakeRunner:
    """Files written and removed, in order; `fail` makes `remove` raise."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, int, str | None]] = {}
        self.removed: list[str] = []
        self.fail = False

    async def write_text(
        self, path: str, text: str, mode: int = 0o644, owner: str | None = None
    ) -> None:
        self.files[path] = (text, mode, owner)

    async def remove(self, path: str) -> None:
        if self.fail:
            raise PermissionError(13, "Permission denied", path)
        self.removed.append(path)
        for name in [p for p in self.files if p == path or p.startswith(path + "/")]:
            del self.files[name]


class FakeBackend:
    """Accepts every change; setup jobs get ids from 101 on, and are kept as submitted."""

    def __init__(self) -> None:
        self.runner = FakeRunner()
        self.next_id = 100
        self.cancelled: list[int] = []
        self.partitions: set[str] = set()
        self.submitted: list[tuple[SlurmOptions, str, str]] = []

    async def submit_job(self, options: SlurmOptions, script: str, *, user: str) -> int:
        check_script(options, script)  # as both real backends do
        self.submitted.append((options, script, user))
        self.next_id += 1
        return self.next_id

    async def cancel(self, job_id: int) -> None:
        self.cancelled.append(job_id)

    async def configured_partitions(self) -> list[str]:
        return sorted(self.partitions)

    async def apply_partition(self, spec: PartitionSpec) -> None:
        self.partitions.add(spec.name)

    async def remove_partition(self, name: str) -> None:
        self.partitions.discard(name)

    async def noop(self, *args: Any) -> None:
        return None

    requeue = reserve_node = release_reservation = drain_node = resume_node = noop


def service(tmp_path: Path, backend: FakeBackend) -> ClusterService:
    settings = Settings(clusters=ClusterSettings(spool_dir=str(tmp_path / "spool")))

    async def refresh() -> Snapshot:
        raise AssertionError("not used")

    store = Store(tmp_path / "bai.db")
    return ClusterService(
        store,
        cast(SlurmBackend, backend),
        settings,
        lambda: None,
        refresh,
        spool_files=backend.runner,
    )


def snap(jobs: Sequence[SlurmJob] = (), nodes: Sequence[SlurmNode] = NODES) -> Snapshot:
    return Snapshot.build(T0 + timedelta(seconds=30), nodes, jobs)


def with_secrets(c: Cluster) -> Cluster:
    c.secrets = {"setupTask": {"TOKEN": "s3cret"}}
    return c


def setup_job(
    c: Cluster, job_id: int, node_name: str, state: str, exit_status: int = 0
) -> SlurmJob:
    comment = f"{SETUP_COMMENT}:{c.uid}:{node_name}"
    return job(job_id, c.partition, state, (node_name,), comment=comment, exit_status=exit_status)


def secrets_path(tmp_path: Path, c: Cluster) -> str:
    return f"{tmp_path}/spool/clusters/{c.uid}/setup-secrets.env"


def stored(svc: ClusterService, uid: str) -> Cluster:
    found = svc.store.cluster_by_uid(uid)
    assert found is not None
    return found


async def test_the_file_goes_once_every_setup_job_has_finished(tmp_path: Path) -> None:
    backend = FakeBackend()
    svc = service(tmp_path, backend)
    c = with_secrets(cluster(scale=manual(2), setup=True))
    svc.store.put_cluster(c)
    path = secrets_path(tmp_path, c)

    await svc.converge_all(snap())
    assert backend.runner.files[path] == ("export TOKEN=s3cret\n", 0o600, "alice")
    jobs = {r.node: r.setup_job for r in stored(svc, c.uid).nodes.values()}
    assert jobs == {"n1": 101, "n2": 102}

    # n1 is done but n2's job still runs: it may not have read the file yet.
    await svc.converge_all(
        snap([setup_job(c, 101, "n1", "COMPLETED"), setup_job(c, 102, "n2", "PENDING")])
    )
    assert backend.runner.removed == [] and path in backend.runner.files

    # A failed setup needs the file no more than a succeeded one.
    done = [setup_job(c, 101, "n1", "COMPLETED"), setup_job(c, 102, "n2", "FAILED", 1)]
    await svc.converge_all(snap(done))
    assert backend.runner.removed == [path] and path not in backend.runner.files
    assert {r.state for r in stored(svc, c.uid).nodes.values()} == {"ready", "failed"}

    await svc.converge_all(snap(done))
    assert backend.runner.removed == [path]  # once, not every pass


async def test_a_node_joining_later_gets_the_file_written_again(tmp_path: Path) -> None:
    backend = FakeBackend()
    svc = service(tmp_path, backend)
    c = with_secrets(cluster(scale=manual(1), setup=True, rows={"n1": "ready"}))
    svc.store.put_cluster(c)
    path = secrets_path(tmp_path, c)
    await svc.converge_all(snap())
    assert backend.runner.removed == [path]  # a file left by an earlier run goes at start

    grown = stored(svc, c.uid)
    grown.properties["scaleSettings"] = manual(2)
    svc.store.put_cluster(grown)
    await svc.converge_all(snap())
    assert path in backend.runner.files
    await svc.converge_all(snap([setup_job(c, 101, "n2", "COMPLETED")]))
    assert backend.runner.removed == [path, path] and path not in backend.runner.files


async def test_a_cancelled_setup_job_keeps_the_file_until_slurm_shows_it_ended(
    tmp_path: Path,
) -> None:
    backend = FakeBackend()
    svc = service(tmp_path, backend)
    c = with_secrets(cluster(scale=manual(1), setup=True))
    svc.store.put_cluster(c)
    path = secrets_path(tmp_path, c)
    await svc.converge_all(snap())

    shrunk = stored(svc, c.uid)
    shrunk.properties["scaleSettings"] = manual(0)
    svc.store.put_cluster(shrunk)
    await svc.converge_all(snap([setup_job(c, 101, "n1", "RUNNING")]))
    assert backend.cancelled == [101] and stored(svc, c.uid).nodes == {}
    assert backend.runner.removed == []  # Slurm still shows the job

    await svc.converge_all(snap([setup_job(c, 101, "n1", "CANCELLED")]))
    assert backend.runner.removed == [path]


async def test_deletion_removes_the_clusters_spool_directory(tmp_path: Path) -> None:
    backend = FakeBackend()
    svc = service(tmp_path, backend)
    c = with_secrets(cluster(scale=manual(1), setup=True, rows={"n1": "preparing"}))
    c.nodes["n1"].setup_job = 7
    c.provisioning_state = "deleting"
    svc.store.put_cluster(c)
    backend.runner.files[secrets_path(tmp_path, c)] = ("export TOKEN=s3cret\n", 0o600, "alice")

    await svc.converge_all(snap([setup_job(c, 7, "n1", "RUNNING")]))
    assert backend.cancelled == [7] and backend.runner.removed == []  # the job may still read it

    await svc.converge_all(snap([setup_job(c, 7, "n1", "CANCELLED")]))
    assert svc.store.cluster_by_uid(c.uid) is None
    assert backend.runner.removed == [f"{tmp_path}/spool/clusters/{c.uid}"]
    assert backend.runner.files == {}


async def test_a_cluster_without_setup_secrets_has_no_file_to_remove(tmp_path: Path) -> None:
    backend = FakeBackend()
    svc = service(tmp_path, backend)
    c = cluster(scale=manual(1), setup=True)
    svc.store.put_cluster(c)
    await svc.converge_all(snap())
    await svc.converge_all(snap([setup_job(c, 101, "n1", "COMPLETED")]))
    assert backend.runner.files == {} and backend.runner.removed == []


async def test_a_failed_removal_is_retried_and_does_not_stop_the_pass(tmp_path: Path) -> None:
    backend = FakeBackend()
    svc = service(tmp_path, backend)
    c = with_secrets(cluster(scale=manual(1), setup=True, rows={"n1": "ready"}))
    svc.store.put_cluster(c)
    backend.runner.fail = True
    await svc.converge_all(snap())
    assert stored(svc, c.uid).partition in backend.partitions  # the pass carried on

    backend.runner.fail = False
    await svc.converge_all(snap())
    assert backend.runner.removed == [secrets_path(tmp_path, c)]
