"""The site's FastAPI app behind an httpx client, as alice or bob (tests/unit/api/test_routes_*).

The app is `create_app` over the site's services with no reconciler loop: a test runs passes
itself. httpx's ASGI transport sends no lifespan events, so no submitter tasks start and a job
is sbatched within its PUT.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from adapter.api.app import create_app
from adapter.auth import create_token
from adapter.clock import now
from tests.unit.api.apps import client
from tests.unit.services.site import RG, SUB, Site, build_site

VERSION = {"api-version": "2018-05-01"}
PROVIDER = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.BatchAI"


def path(*names: str) -> str:
    """An ARM path under the resource group: path("workspaces", "ws", "clusters", "c1")."""
    return "/".join([PROVIDER, *names])


@dataclass
class Caller:
    """One user's requests (their bearer token on each)."""

    http: httpx.AsyncClient
    token: str

    async def call(self, method: str, url: str, body: Any = None) -> httpx.Response:
        params = VERSION if "api-version" not in url else None
        headers = {"Authorization": f"Bearer {self.token}"}
        return await self.http.request(method, url, json=body, params=params, headers=headers)

    async def ok(self, method: str, url: str, body: Any = None) -> dict[str, Any]:
        """The JSON of a 200 answer."""
        response = await self.call(method, url, body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


@dataclass
class ApiSite:
    """The site, and alice and bob at its API."""

    site: Site
    alice: Caller
    bob: Caller


@asynccontextmanager
async def api_site(root: Path) -> AsyncIterator[ApiSite]:
    site = build_site(root)
    store, policy = site.svc.store, site.svc.settings.auth
    tokens = {
        u: create_token(store, u, policy=policy, at=now(), expires=None) for u in ("alice", "bob")
    }
    try:
        async with client(create_app(site.svc, run_reconciler=False)) as http:
            yield ApiSite(site, Caller(http, tokens["alice"]), Caller(http, tokens["bob"]))
    finally:
        store.close()
