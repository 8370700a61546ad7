"""Fixtures for end-to-end tests: the real service on the real dev cluster."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import dev_service_paused
from tests.e2e.service import SSH_ENV, STATE_DIR, TEST_ENV, Api, Service, without_local_slurm


@pytest.fixture(scope="package")
def service(
    dev_cluster: None, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Service]:
    """`bai serve` with test timers, in place of the dev service (one adapter per cluster).
    With `--slurm-runner=ssh`, its Slurm is the controller host's, over SSH, and this host's
    is hidden from it."""
    ssh = request.config.getoption("slurm_runner") == "ssh"
    base = {**TEST_ENV, **(SSH_ENV if ssh else {})}
    with dev_service_paused():
        log = tmp_path_factory.mktemp("bai") / "bai.log"
        svc = Service(
            url="https://127.0.0.1:8444",
            ca=str(STATE_DIR / "tls" / "cert.pem"),
            log=log,
            env=dict(base),
            prefix=without_local_slurm() if ssh else [],
            base=base,
        )
        svc.start()
        _remove_leftovers(svc)
        yield svc
        svc.stop()


def _remove_leftovers(svc: Service) -> None:
    """Workspaces an interrupted earlier run left behind (test resource groups start t-)."""
    token = svc.token("root", admin=True)
    api = Api(svc, token)
    listing = api.call("GET", f"/subscriptions/{api.sub}/providers/Microsoft.BatchAI/workspaces")
    api.close()
    for ws in listing.json()["value"]:
        rg = ws["id"].split("/")[4]
        if rg.startswith(("t-", "bench-")):
            scoped = Api(svc, token, rg=rg)
            try:
                scoped.delete_workspace(ws["name"])
            except AssertionError as exc:  # an earlier run's debris fails no test of this one
                print(f"leftover workspace {rg}/{ws['name']} not deleted: {exc}", file=sys.stderr)
            finally:
                scoped.close()


@pytest.fixture
def admin(service: Service) -> Iterator[Api]:
    """An admin client in a fresh resource group, cleaned up afterwards."""
    api = Api(service, service.token("root", admin=True))
    yield api
    for ws in api.call("GET", api.path("workspaces")).json()["value"]:
        api.delete_workspace(ws["name"])
    api.close()


@pytest.fixture
def workspace(admin: Api, alice: Api) -> str:
    """A workspace of alice's (admin sees it too), in the admin fixture's resource group."""
    name = f"ws-{uuid.uuid4().hex[:6]}"
    alice.workspace(name)
    return name


@pytest.fixture
def alice(service: Service, admin: Api) -> Iterator[Api]:
    """A non-admin client for alice, in the admin fixture's resource group."""
    api = Api(service, service.token("alice"), rg=admin.rg)
    yield api
    api.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    svc = getattr(item, "funcargs", {}).get("service")
    if report.failed and isinstance(svc, Service):
        report.sections.append(("bai service log", svc.tail()))
    return report


def storage_dir() -> Generator[Path, None, None]:
    path = Path("/tmp") / f"bai-e2e-{uuid.uuid4().hex[:8]}"
    path.mkdir(mode=0o1777)
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


shared_dir = pytest.fixture(storage_dir)
