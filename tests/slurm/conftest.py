"""Fixtures for tests against the real test clusters (DESIGN.md section 7): the backend contract
suite runs against the dev cluster's Slurm 22.05 and the 24.11 cluster in a Debian 13 root
(tests/fixtures/slurm-24.11/cluster.sh), each test once per release its module lists in
RELEASES (22.05 alone when it lists none)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapter.backends import CliBackend, LocalRunner, PartitionSpec, SlurmJob
from adapter.backends.libslurm import Libslurm, LibslurmBackend
from adapter.backends.runner import CommandResult
from adapter.settings import Settings
from tests.cluster import DAEMONCTL, DEV_NODES, dev_service_paused, sh

PartitionFactory = Callable[..., Awaitable[str]]

TRIXIE_ROOT = "/var/tmp/bai-trixie"
CLUSTER_24_11 = Path(__file__).resolve().parents[1] / "fixtures" / "slurm-24.11" / "cluster.sh"


class RootRunner(LocalRunner):
    """The local runner with each command run inside a root (chroot) and files written there:
    the 24.11 cluster's programs need Debian 13's C library."""

    def __init__(self, root: str) -> None:
        super().__init__()
        self.root = root

    async def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        stdin: str | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        switch = ["runuser", "-u", user, "--"] if user else []
        done = await super().run(
            ["chroot", self.root, *switch, *argv], stdin=stdin, timeout=timeout
        )
        return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)

    async def read_text(self, path: str) -> str | None:
        return await super().read_text(self.root + path)

    async def write_text(
        self, path: str, text: str, mode: int = 0o644, owner: str | None = None
    ) -> None:
        await super().write_text(self.root + path, text, mode, owner)


@dataclass(frozen=True)
class SlurmCluster:
    """A test cluster as the contract suite sees it: its release, its nodes, and where its
    programs and files are (root: '' for this host's own, else the root they live in)."""

    name: str
    release: tuple[int, int]
    # name -> (address, gres)
    nodes: dict[str, tuple[str, str]] = field(repr=False)
    root: str = ""

    def with_gpu(self, gpu_type: str) -> list[str]:
        return sorted(n for n, (_, gres) in self.nodes.items() if f":{gpu_type}:" in gres)

    def host(self, path: str | Path) -> Path:
        """Where a path of the cluster's lies on this host."""
        return Path(self.root + str(path))

    def command(self, *argv: str) -> list[str]:
        return ["chroot", self.root, *argv] if self.root else list(argv)

    def sh(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return sh(*self.command(*argv))

    def runner(self) -> LocalRunner:
        return RootRunner(self.root) if self.root else LocalRunner()

    def daemonctl(self, action: str, daemon: str) -> None:
        """Start/stop one of its daemons through the script the roles installed."""
        rc = subprocess.call(self.command(DAEMONCTL, action, daemon))
        assert rc in (0, 1), f"bai-daemonctl {action} {daemon} exited {rc} on {self.name}"


DEV = SlurmCluster("22.05", (22, 5), DEV_NODES)
# ansible/inventories/slurm-24.11's nodes.
SLURM_24_11 = SlurmCluster(
    "24.11",
    (24, 11),
    {
        "n24-a100-1": ("127.0.2.11", "gpu:a100:2"),
        "n24-a100-2": ("127.0.2.12", "gpu:a100:2"),
        "n24-t4-1": ("127.0.2.21", "gpu:t4:1"),
        "n24-t4-2": ("127.0.2.22", "gpu:t4:1"),
    },
    root=TRIXIE_ROOT,
)
CLUSTERS = {c.name: c for c in (DEV, SLURM_24_11)}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test here runs once per release of its module's RELEASES; job tests once more per
    way of submitting (the sbatch command, and libslurm where it is built: 22.05)."""
    if "cluster" not in metafunc.fixturenames:
        return
    releases = getattr(metafunc.module, "RELEASES", ("22.05",))
    if "way" in metafunc.fixturenames:
        combos = [
            (r, w)
            for r in releases
            for w in ("sbatch", "libslurm")
            if w == "sbatch" or r == "22.05"
        ]
        metafunc.parametrize(
            ("cluster", "way"), combos, indirect=["cluster"], ids=[f"{r}-{w}" for r, w in combos]
        )
    else:
        metafunc.parametrize("cluster", releases, indirect=True, scope="module")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--slurm-release 22.05 or 24.11: only tests/slurm's tests of that cluster (those without
    a cluster are the dev cluster's); the others are deselected. Tests elsewhere are kept."""
    wanted = config.getoption("slurm_release")
    if wanted == "all":
        return
    here = Path(__file__).parent
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        release = callspec.params.get("cluster", "22.05") if callspec else "22.05"
        mine = item.path.is_relative_to(here)
        (drop if mine and release != wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def _slurm_24_11() -> None:
    """The 24.11 cluster: the one `make test` started in the background once it is up, else
    brought up by its playbook here (and left running)."""
    up = subprocess.run([str(CLUSTER_24_11), "ready"], capture_output=True, text=True)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-2000:]
    asyncio.run(_remove_leftover_partitions(CliBackend(SLURM_24_11.runner())))


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> SlurmCluster:
    found = CLUSTERS[request.param]
    if found.root:
        request.getfixturevalue("_slurm_24_11")
    return found


@pytest.fixture(scope="package", autouse=True)
def _cluster(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests here act as the dev cluster's only adapter while they run; with --slurm-release
    24.11 they leave the dev cluster alone."""
    if request.config.getoption("slurm_release") == "24.11":
        yield
        return
    request.getfixturevalue("dev_cluster")
    with dev_service_paused():
        asyncio.run(_remove_leftover_partitions(CliBackend(LocalRunner())))
        yield


async def _remove_leftover_partitions(backend: CliBackend) -> None:
    """Partitions (and their jobs) an interrupted earlier run of these tests left behind."""
    await remove_partitions(
        backend, [p for p in await backend.configured_partitions() if p.startswith("t-")]
    )


async def remove_partitions(backend: CliBackend, names: list[str]) -> None:
    """Cancel the partitions' unfinished jobs, wait for them to end, then remove the partitions."""
    if not names:
        return
    for job in await backend.jobs(names):
        if not job.finished:
            await backend.cancel(job.job_id)
    await wait_for(backend, lambda jobs: all(j.finished for j in jobs), names, timeout=60)
    for name in names:
        await backend.remove_partition(name)


@pytest.fixture
def backend(cluster: SlurmCluster) -> CliBackend:
    return CliBackend(cluster.runner())


@pytest.fixture
def libslurm_backend() -> LibslurmBackend:
    """Submits in-process (the binding cached where the service keeps it); the rest is CLI."""
    runner = LocalRunner()
    return LibslurmBackend(runner, Libslurm.load(Settings().state_dir / "libslurm", runner.env))


@pytest.fixture
def workdir(cluster: SlurmCluster) -> Iterator[Path]:
    """A directory every test user can write job output into, as the cluster's jobs see it
    (cluster.host() gives where it lies here)."""
    path = Path("/tmp") / f"bai-test-{uuid.uuid4().hex[:8]}"
    cluster.host(path).mkdir(mode=0o1777)
    cluster.host(path).chmod(0o1777)
    yield path
    shutil.rmtree(cluster.host(path), ignore_errors=True)


@pytest.fixture
async def partition(backend: CliBackend) -> AsyncIterator[PartitionFactory]:
    """Create uniquely named partitions; cancel their jobs and remove them afterwards."""
    created: list[str] = []

    async def make(**kwargs: Any) -> str:
        name = f"t-{uuid.uuid4().hex[:8]}"
        await backend.apply_partition(PartitionSpec(name=name, **kwargs))
        created.append(name)
        return name

    yield make
    await remove_partitions(backend, created)


async def wait_for(
    backend: CliBackend,
    done: Callable[[list[SlurmJob]], bool],
    partitions: list[str],
    *,
    timeout: float = 60,
) -> list[SlurmJob]:
    """Poll the job snapshot until `done` holds; fail with the last snapshot otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = await backend.jobs(partitions)
        if done(jobs):
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {timeout} s; last jobs: {jobs}")
        await asyncio.sleep(0.5)


async def wait_job(
    backend: CliBackend,
    job_id: int,
    partition: str,
    done: Callable[[SlurmJob], bool],
    *,
    timeout: float = 60,
) -> SlurmJob:
    """Poll until the job satisfies `done`; returns it."""
    jobs = await wait_for(
        backend,
        lambda js: any(j.job_id == job_id and done(j) for j in js),
        [partition],
        timeout=timeout,
    )
    return next(j for j in jobs if j.job_id == job_id)
