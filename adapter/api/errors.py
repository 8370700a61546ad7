"""Every error leaves the API as an ARM CloudError body, mapped once here."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapter.errors import BackendError, BackendUnavailable, InvalidRequest, RequestError

log = structlog.get_logger(__name__)


def cloud_error(
    status: int,
    code: str,
    message: str,
    target: str | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if target:
        body["target"] = target
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _field(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        elif item not in {"body", "function-after[_ordered(), AutoScaleSettings]"}:
            parts.append(str(item))
    return ".".join(p for p in parts if not p.startswith(("function-", "literal[")))


def validation_error(
    exc: ValidationError | RequestValidationError, prefix: str = ""
) -> InvalidRequest:
    """A pydantic error as one 400 whose message and details name each field and the fix."""
    details = []
    for err in exc.errors():
        field = _field(tuple(err["loc"]))
        field = f"{prefix}{field}" if field else prefix.rstrip(".") or "body"
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "is not a field of this object; remove it or check its spelling"
        elif err["type"] == "missing":
            message = "is required; add it"
        details.append(InvalidRequest(f"{field}: {message}", target=field))
    first = details[0]
    more = f" (and {len(details) - 1} more problem(s), see details)" if len(details) > 1 else ""
    return InvalidRequest(
        f"The request is not valid: {first.message}{more}", target=first.target, details=details
    )


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into CloudError responses."""

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
        details = [
            {"code": d.code, "message": d.message, **({"target": d.target} if d.target else {})}
            for d in exc.details
        ]
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return cloud_error(exc.status, exc.code, exc.message, exc.target, details, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # No such route (404) or method (405): a CloudError too, which an SDK can read.
        if exc.status_code == 404:
            message = (
                f"bai has no operation {request.method} {request.url.path}; it serves "
                "workspaces, experiments, clusters and jobs of Batch AI 2018-05-01 (no "
                "fileServers)"
            )
            return cloud_error(404, "NotFound", message)
        if exc.status_code == 405:
            message = f"{request.method} is not an operation of {request.url.path}"
            return cloud_error(405, "MethodNotAllowed", message, headers=dict(exc.headers or {}))
        return cloud_error(
            exc.status_code, "HttpError", str(exc.detail), headers=dict(exc.headers or {})
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await _request_error(request, validation_error(exc))

    @app.exception_handler(BackendUnavailable)
    async def _unavailable(request: Request, exc: BackendUnavailable) -> JSONResponse:
        log.warning("slurm unavailable", error=str(exc))
        return cloud_error(
            503,
            "SlurmUnavailable",
            f"Slurm cannot be reached right now ({exc.reason}); retry later or ask the operator "
            "to check slurmctld and munge",
            headers={"Retry-After": "15"},
        )

    @app.exception_handler(BackendError)
    async def _backend(request: Request, exc: BackendError) -> JSONResponse:
        log.error("slurm refused", error=str(exc))
        return cloud_error(502, "SlurmError", f"Slurm refused the change: {exc.reason}")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return cloud_error(
            500,
            "InternalServerError",
            "bai failed unexpectedly; the service log has the details (look for this request id)",
        )
