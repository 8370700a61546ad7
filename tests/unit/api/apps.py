"""A small FastAPI app with bai's real error handlers, BodyLimit and parse_body, and a client."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Request

from adapter.api import errors
from adapter.api.body import parse_body
from adapter.api.limits import BodyLimit
from adapter.models.workspaces import WorkspaceCreateParameters
from adapter.settings import ApiSettings

LIMITS = ApiSettings(max_body_bytes=4096, max_json_depth=8)
ROOMY = ApiSettings(max_body_bytes=1024 * 1024, max_json_depth=8)  # for deep bodies


def small_app(limits: ApiSettings = LIMITS) -> FastAPI:
    """PUT /things parses its body as a workspace; GET /nothing never reads its body."""
    app = FastAPI()
    errors.install(app)

    @app.put("/things")
    async def put_thing(request: Request) -> dict[str, Any]:
        return (await parse_body(request, WorkspaceCreateParameters)).wire()

    @app.get("/nothing")
    async def get_nothing() -> dict[str, Any]:
        return {}

    app.add_middleware(BodyLimit, limits=limits)
    return app


def client(app: Any) -> httpx.AsyncClient:
    # httpx's ASGI transport hands the app each chunk of a streamed body as its own message,
    # as a server does (starlette's TestClient reads the body whole first, and is deprecated
    # with httpx, which the warnings-as-errors setting turns into a failure).
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bai")


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The CloudError body's `error`, checked to have the ARM shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str), error
    return error
