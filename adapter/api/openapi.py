"""The OpenAPI document at /openapi.json: FastAPI's routes, completed from TABLE
(operation_table.py) with the bodies, query parameters and replies the handlers really read and
answer. A route without an entry, or an entry without a route, fails the build, so the document
cannot drift from the routes unnoticed.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from adapter.api.operation_table import ERRORS, HEADERS, PATH_PARAMS, QUERY, TABLE, Op, Reply
from adapter.api.response_schemas import RESPONSE_SCHEMAS, Schema, ref


class RouteTableError(Exception):
    """The routes and TABLE disagree."""


def install(app: FastAPI) -> None:
    """Serve this document at /openapi.json, built once, at the first request for it."""

    def cached() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = cached  # type: ignore[method-assign]


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of `app`, completed from TABLE; RouteTableError if they disagree."""
    with warnings.catch_warnings():
        # POST+GET routes share a handler, hence an operationId; TABLE gives each its own.
        warnings.filterwarnings("ignore", "Duplicate Operation ID", UserWarning)
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description="The Azure Batch AI 2018-05-01 API on Slurm (docs/api.md).",
            routes=app.routes,
        )
    _check_table(doc["paths"])
    requests = request_schemas()
    clash = requests.keys() & RESPONSE_SCHEMAS.keys()
    if clash:
        raise RouteTableError(f"request and response schemas share names: {sorted(clash)}")
    doc["components"] = {
        "schemas": {**requests, **copy.deepcopy(RESPONSE_SCHEMAS)},
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "a token from `bai token create --user NAME`",
            }
        },
    }
    for path, methods in TABLE.items():
        for method, op in methods.items():
            generated = doc["paths"][path][method.lower()]
            doc["paths"][path][method.lower()] = operation(op, generated, path)
    return doc


def _check_table(paths: dict[str, dict[str, Any]]) -> None:
    routes = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    table = {(m, p) for p, ops in TABLE.items() for m in ops}
    missing, stale = sorted(routes - table), sorted(table - routes)
    if missing or stale:
        raise RouteTableError(
            "TABLE in adapter/api/operation_table.py is out of date: "
            + (f"routes without an entry: {missing}. " if missing else "")
            + (f"entries without a route: {stale}." if stale else "")
        )


def request_schemas() -> dict[str, Schema]:
    """The request body models as components (pydantic's `$defs`, camelCase names)."""
    models = sorted(
        {op.body for ops in TABLE.values() for op in ops.values() if op.body is not None},
        key=lambda m: m.__name__,
    )
    _, top = models_json_schema(
        [(m, "validation") for m in models],
        by_alias=True,
        ref_template="#/components/schemas/{model}",
    )
    defs: dict[str, Schema] = top.get("$defs", {})
    return defs


def operation(op: Op, generated: dict[str, Any], path: str) -> dict[str, Any]:
    """One operation object: FastAPI's path parameters, then TABLE's query, body, replies."""
    params = []
    for param in generated.get("parameters", []):
        name = param["name"]
        if param["in"] != "path" or name not in PATH_PARAMS:
            raise RouteTableError(
                f"{path}: parameter {name} ({param['in']}) is not described in PATH_PARAMS"
            )
        spec = dict(PATH_PARAMS[name])
        description = spec.pop("description")
        params.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": description,
                "schema": spec,
            }
        )
    for name in op.query:
        spec = QUERY[name]
        params.append({"name": name, "in": "query", "required": False, **copy.deepcopy(spec)})
    out: dict[str, Any] = {
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.id.split("_")[0]],
        "parameters": params,
        "responses": responses(op),
        "security": [] if op.public else [{"bearer": []}],
    }
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(op.body.__name__)}},
        }
    return out


def responses(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, reply in op.ok.items():
        out[str(status)] = _reply(reply)
    for status in op.errors:
        headers = {401: ("WWW-Authenticate",), 503: ("Retry-After",)}.get(status, ())
        out[str(status)] = _reply(Reply(ERRORS[status], "CloudError", headers))
    return dict(sorted(out.items()))


def _reply(reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    if reply.headers:
        out["headers"] = {name: {**HEADERS[name], "required": True} for name in reply.headers}
    if reply.schema is not None:
        out["content"] = {"application/json": {"schema": ref(reply.schema)}}
    elif reply.binary:
        binary = {"type": "string", "format": "binary"}
        out["content"] = {"application/octet-stream": {"schema": binary}}
    return out
