"""Request dependencies: the api-version check, the caller, and the services."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from adapter.auth import Principal, authenticate, authenticate_munge
from adapter.clusters.service import ClusterService
from adapter.errors import InvalidRequest, Unauthorized
from adapter.jobs.service import JobService
from adapter.jobs.signing import UrlSigner
from adapter.metrics.exposition import Exposition
from adapter.models.common import check_subscription
from adapter.reconciler import Reconciler
from adapter.settings import Settings
from adapter.store import Store
from adapter.tenancy import Tenancy
from adapter.workspaces import WorkspaceService

API_VERSION = "2018-05-01"


@dataclass
class Services:
    """What the routes use; one per app, on `app.state.services`."""

    settings: Settings
    store: Store
    reconciler: Reconciler
    clusters: ClusterService
    workspaces: WorkspaceService
    jobs: JobService
    signer: UrlSigner
    exposition: Exposition
    tenancy: Tenancy


def services_of(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


# Dependencies are `async def` although they do not await: FastAPI runs a plain `def` dependency
# in its thread pool, a thread hop per dependency per request.
async def services(request: Request) -> Services:
    return services_of(request)


async def api_version(request: Request) -> None:
    """Every ARM route's first check: the subscription id's form, then the api-version."""
    sub = request.path_params.get("sub")
    if sub is not None:
        check_subscription(sub)
    version = request.query_params.get("api-version")
    if version is None:
        raise InvalidRequest(
            f"the api-version query parameter is missing; add api-version={API_VERSION}",
            target="api-version",
        )
    if version != API_VERSION:
        raise InvalidRequest(
            f"api-version {version!r} is not supported; use {API_VERSION}", target="api-version"
        )


async def principal(request: Request) -> Principal:
    """`Authorization: Bearer <token>` (remote clients) or `Munge <credential>` (the CLI on a
    cluster host, without a token)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    svc = services_of(request)
    if scheme.lower() == "munge" and value:
        # munged answers over a socket: a worker thread, so a slow munged stalls no request.
        return await asyncio.to_thread(authenticate_munge, value, policy=svc.settings.auth)
    if scheme.lower() != "bearer" or not value:
        raise Unauthorized(
            "send 'Authorization: Bearer <token>' (an operator makes tokens with `bai token "
            "create --user NAME`) or, on a cluster host, 'Authorization: Munge <credential>' "
            "(`munge -n`; the bai CLI sends one when BAI_TOKEN is not set)"
        )
    # Read from the store on every request: a revoke or an expiry counts from the next one.
    return authenticate(svc.store, value, policy=svc.settings.auth)


def base_url(request: Request) -> str:
    """Where clients reach the service, for Location headers and nextLink."""
    configured = services_of(request).settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


Caller = Annotated[Principal, Depends(principal)]
Svc = Annotated[Services, Depends(services)]
