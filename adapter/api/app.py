"""The FastAPI application: wiring of store, backend, reconciler and routes."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request, Response

from adapter import __version__
from adapter.api import errors
from adapter.api.deps import Services
from adapter.api.routes import clusters, files, jobs, metrics, operations, workspaces
from adapter.backends.base import SlurmBackend
from adapter.backends.cli import CliBackend
from adapter.backends.runner import LocalRunner
from adapter.clusters.service import ClusterService
from adapter.jobs.files import UrlSigner
from adapter.jobs.service import JobService
from adapter.metrics.collector import BaiCollector
from adapter.metrics.events import MetricEvents
from adapter.metrics.exposition import Exposition
from adapter.reconciler import Reconciler
from adapter.settings import Settings
from adapter.store import Store
from adapter.workspaces import WorkspaceService

log = structlog.get_logger(__name__)


def build_services(settings: Settings, backend: SlurmBackend | None = None) -> Services:
    """Everything the API needs, from settings (the backend may be given, for tests)."""
    store = Store(settings.db_path)
    runner = LocalRunner()
    if backend is None:
        backend = CliBackend(runner, include_path=settings.slurm.partitions_include)
    reconciler = Reconciler(store, backend, settings.clusters.reconcile_interval_seconds)
    cluster_service = ClusterService(
        store, backend, settings, reconciler.latest, reconciler.take_snapshot
    )
    events = MetricEvents(store)
    job_service = JobService(store, backend, runner, settings, cluster_service, events)
    cluster_service.held_demand = job_service.held_nodes
    workspace_service = WorkspaceService(store, cluster_service, job_service)
    # Clusters first (they may grow for held jobs), then jobs, then finished deletions.
    reconciler.hooks += [
        cluster_service.converge_all,
        job_service.on_pass,
        workspace_service.on_pass,
    ]
    signer = UrlSigner(settings.state_dir / "url-signing.key")
    exposition = Exposition(BaiCollector(store, reconciler, events, settings), events)
    reconciler.observers.append(exposition.refresh)  # render what each pass saw
    return Services(
        settings,
        store,
        reconciler,
        cluster_service,
        workspace_service,
        job_service,
        signer,
        exposition,
    )


def create_app(svc: Services, *, run_reconciler: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc.jobs.start()
        if run_reconciler:
            # Re-assert the desired state before serving: a restarted Slurm may have lost some.
            await svc.reconciler.run_pass()
            svc.reconciler.start()
        log.info("bai started", version=__version__, state_dir=str(svc.settings.state_dir))
        yield
        await svc.reconciler.stop()
        await svc.jobs.stop()
        svc.store.close()

    app = FastAPI(title="bai", version=__version__, lifespan=lifespan)
    app.state.services = svc
    errors.install(app)
    for module in (workspaces, clusters, jobs, files, operations, metrics):
        app.include_router(module.router)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-ms-client-request-id") or str(uuid.uuid4())
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.monotonic()
        try:
            response = await call_next(request)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        response.headers["x-ms-request-id"] = request_id
        route = request.scope.get("route")
        svc.exposition.http.observe(
            getattr(route, "path", "unmatched"),
            request.method,
            response.status_code,
            time.monotonic() - started,
        )
        # Method, path and status only: bodies and headers can carry secrets.
        log.info(
            "request",
            request_id=request_id,
            method=request.method,
            path=request.url.path,
            status=response.status_code,
            seconds=round(time.monotonic() - started, 4),
        )
        return response

    return app
