"""The FastAPI application: wiring of store, backend, reconciler and routes."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter import __version__
from adapter.api import errors, openapi
from adapter.api.deps import Services
from adapter.api.limits import BodyLimit
from adapter.api.routes import clusters, files, jobs, metrics, operations, sbatch, workspaces
from adapter.backends.base import SlurmBackend
from adapter.backends.cli import CliBackend
from adapter.backends.libslurm import Libslurm, LibslurmBackend
from adapter.backends.runner import LocalRunner
from adapter.backends.ssh import SshRunner
from adapter.clock import Clock, now
from adapter.clusters.service import ClusterService
from adapter.errors import BackendError
from adapter.jobs.service import JobService
from adapter.jobs.signing import UrlSigner
from adapter.metrics.collector import BaiCollector
from adapter.metrics.events import MetricEvents
from adapter.metrics.exposition import Exposition
from adapter.reconciler import Reconciler
from adapter.settings import Settings
from adapter.store import Store
from adapter.workspaces import WorkspaceService

log = structlog.get_logger(__name__)


def build_services(
    settings: Settings, backend: SlurmBackend | None = None, clock: Clock = now
) -> Services:
    """Everything the API needs, from settings (the backend and the clock may be given, for
    tests)."""
    store = Store(settings.db_path, clock)
    if backend is None:
        backend = slurm_backend(settings)
    reconciler = Reconciler(store, backend, settings.clusters.reconcile_interval_seconds, clock)
    cluster_service = ClusterService(
        store, backend, settings, reconciler.latest, reconciler.take_snapshot, clock=clock
    )
    events = MetricEvents(store)
    job_service = JobService(store, backend, settings, cluster_service, events, clock)
    cluster_service.held_demand = job_service.held_nodes
    workspace_service = WorkspaceService(store, cluster_service, job_service, clock)
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
        job_service.tenancy,
    )


def slurm_backend(settings: Settings) -> SlurmBackend:
    """The CLI backend over the configured runner; with Slurm on this host, it submits and
    reads jobs through libslurm when settings allow and it can be built."""
    include = settings.slurm.partitions_include
    if settings.slurm.runner == "ssh":
        remote = SshRunner.from_settings(settings.slurm.ssh)
        log.info("Slurm's commands run over SSH", host=remote.where)
        return CliBackend(remote, include_path=include)
    runner = LocalRunner()
    if settings.slurm.client != "commands":
        try:
            libslurm = Libslurm.load(settings.state_dir / "libslurm", runner.env)
        except BackendError as exc:
            if settings.slurm.client == "libslurm":
                raise
            log.warning("jobs are submitted with sbatch and read with squeue", reason=exc.reason)
        else:
            log.info("jobs are submitted and read in-process", libslurm=libslurm.version)
            return LibslurmBackend(runner, libslurm, include_path=include)
    return CliBackend(runner, include_path=include)


class RequestContext:
    """Request id (the client's x-ms-client-request-id, else a new one) bound to every log line
    and returned as x-ms-request-id; request metrics; one access log line.

    Plain ASGI rather than FastAPI's http middleware, which runs each request in an extra task
    with memory streams: a measurable share of a job submission's time on a small host.
    """

    def __init__(self, app: ASGIApp, exposition: Exposition) -> None:
        self.app = app
        self.exposition = exposition

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-ms-client-request-id", b"")
        request_id = given.decode("latin-1")[:128] or str(uuid.uuid4())
        echo = (b"x-ms-request-id", request_id.encode("latin-1"))
        status = 500  # unless the app answers: an exception becomes a 500 further out

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), echo]}
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.monotonic()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            seconds = time.monotonic() - started
            route = scope.get("route")
            self.exposition.http.observe(
                getattr(route, "path", "unmatched"), scope["method"], status, seconds
            )
            # Method, path and status only: bodies and headers can carry secrets.
            log.info(
                "request",
                request_id=request_id,
                method=scope["method"],
                path=scope["path"],
                status=status,
                seconds=round(seconds, 4),
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
    openapi.install(app)  # /openapi.json with bodies and replies (built at first request)
    for module in (workspaces, clusters, jobs, files, sbatch, operations, metrics):
        app.include_router(module.router)

    app.add_middleware(BodyLimit, limits=svc.settings.api)  # inside RequestContext: 413s logged
    app.add_middleware(RequestContext, exposition=svc.exposition)
    return app
