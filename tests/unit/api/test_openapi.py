"""The OpenAPI document: built from the wired app's routes, refused when the table and the
routes disagree, and its schemas hold what the renderers really answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fastapi import FastAPI

from adapter.api import openapi, operation_table
from adapter.api.app import build_services, create_app
from adapter.api.errors import cloud_error
from adapter.api.resources import cluster_resource, job_resource, workspace_resource
from adapter.backends.cli import CliBackend
from adapter.backends.runner import LocalRunner
from adapter.clusters.service import split_secrets
from adapter.jobs.service import _without_secrets
from adapter.models.clusters import ClusterCreateParameters
from adapter.models.jobs import JobCreateParameters
from adapter.records import Workspace
from adapter.settings import Settings
from tests.unit.api.apps import client
from tests.unit.clusters.factories import cluster
from tests.unit.jobs.factories import stored_job

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WS = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.BatchAI/workspaces/{ws}"


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    settings = Settings(state_dir=tmp_path)
    return create_app(build_services(settings, CliBackend(LocalRunner())), run_reconciler=False)


@pytest.fixture
def doc(app: FastAPI) -> dict[str, Any]:
    return openapi.build_openapi(app)


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            yield method.upper(), path, op


def valid(doc: dict[str, Any], component: str, instance: Any) -> list[str]:
    """The schema errors of `instance` against a component of the document."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": doc["components"]}
    return [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(instance)]


async def test_the_served_document_is_the_built_one(app: FastAPI, doc: dict[str, Any]) -> None:
    async with client(app) as http:
        served = (await http.get("/openapi.json")).json()
    assert served == json.loads(json.dumps(doc))


def test_every_route_has_its_operation(doc: dict[str, Any]) -> None:
    ops = list(operations(doc))
    assert len(ops) == sum(len(methods) for methods in operation_table.TABLE.values())
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids)), ids
    for method, path, op in ops:
        assert "422" not in op["responses"], (method, path)  # FastAPI's; bai answers 400
        if path != "/bai/files/{path}":
            assert op["security"] == [{"bearer": []}]
            assert {"400", "401"} <= op["responses"].keys(), (method, path)
        if not path.startswith("/bai/"):  # bai's own routes take no api-version
            version = next(p for p in op["parameters"] if p["name"] == "api-version")
            assert version["required"] and version["schema"]["enum"] == ["2018-05-01"]
        names = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}


def test_a_route_without_an_entry_fails_the_build(app: FastAPI) -> None:
    @app.get("/subscriptions/{sub}/providers/Microsoft.BatchAI/fileServers")
    def file_servers(sub: str) -> dict[str, Any]:
        return {}

    with pytest.raises(openapi.RouteTableError, match="routes without an entry.*fileServers"):
        openapi.build_openapi(app)


def test_an_entry_without_a_route_fails_the_build(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = operation_table.Op(
        "Workspaces_Gone", "", operation_table.ok("Workspace"), operation_table.READ
    )
    monkeypatch.setitem(operation_table.TABLE, "/gone", {"GET": stale})
    with pytest.raises(
        openapi.RouteTableError, match=r"entries without a route: \[\('GET', '/gone'"
    ):
        openapi.build_openapi(app)


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    refs = {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs and refs <= doc["components"]["schemas"].keys()


def test_bodies_are_the_request_models(doc: dict[str, Any]) -> None:
    body = doc["paths"][WS + "/clusters/{name}"]["put"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ClusterCreateParameters"
    )
    scale = doc["components"]["schemas"]["ManualScaleSettings"]["properties"]
    assert scale["targetNodeCount"]["maximum"] == 1000  # camelCase names, pydantic's bounds
    assert "requestBody" not in doc["paths"][WS + "/experiments/{name}"]["put"]


def test_long_running_operations_declare_their_poll_headers(doc: dict[str, Any]) -> None:
    accepted = doc["paths"][WS]["delete"]["responses"]["202"]
    assert accepted["headers"].keys() == {"Location", "Azure-AsyncOperation", "Retry-After"}
    assert "content" not in accepted


def test_a_workspace_as_rendered_fits(doc: dict[str, Any]) -> None:
    ws = Workspace("s", "rg", "w", "eastus", {"a": "b"}, T0, "succeeded", T0, "alice")
    assert valid(doc, "Workspace", workspace_resource(ws)) == []
    assert valid(doc, "WorkspaceListResult", {"value": [workspace_resource(ws)]}) == []


def test_a_cluster_as_rendered_fits_and_shows_no_secret(doc: dict[str, Any]) -> None:
    body = ClusterCreateParameters.model_validate(
        {
            "properties": {
                "vmSize": "a100x2",
                "scaleSettings": {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 2}},
                "userAccountSettings": {"adminUserName": "alice", "adminUserPassword": "pw"},
                "nodeSetup": {
                    "setupTask": {
                        "commandLine": "true",
                        "stdOutErrPathPrefix": "/shared",
                        "secrets": [{"name": "TOKEN", "value": "s3cret"}],
                    }
                },
            }
        }
    )
    c = cluster()
    c.errors = [
        {"code": "SetupTaskFailed", "message": "m", "details": [{"name": "n", "value": "v"}]}
    ]
    wire = body.wire()["properties"]
    c.properties = split_secrets(wire)[0]
    assert valid(doc, "Cluster", cluster_resource(c, None)) == []
    c.properties = wire  # as if the secrets were shown
    assert len(valid(doc, "Cluster", cluster_resource(c, None))) == 2


def test_a_job_as_rendered_fits_queued_and_finished(doc: dict[str, Any]) -> None:
    body = JobCreateParameters.model_validate(
        {
            "properties": {
                "cluster": {"id": "/subscriptions/s/.../clusters/c"},
                "nodeCount": 2,
                "stdOutErrPathPrefix": "/shared",
                "horovodSettings": {"pythonScriptFilePath": "train.py"},
                "secrets": [{"name": "TOKEN", "value": "s3cret"}],
            }
        }
    )
    info = {"toolType": "horovod", "segment": "s/e/j/u", "limitSeconds": 7 * 86400}
    job = stored_job(properties=_without_secrets(body.wire()["properties"]), info=info)
    assert valid(doc, "Job", job_resource(job)) == []
    job.execution_state, job.start_time, job.end_time, job.exit_code = "failed", T0, T0, 3
    job.errors = [{"code": "JobFailed", "message": "exit 3", "details": None}]
    assert valid(doc, "JobListResult", {"value": [job_resource(job)], "nextLink": "x"}) == []
    job.properties = body.wire()["properties"]
    assert valid(doc, "Job", job_resource(job)) != []


def test_a_cloud_error_fits(doc: dict[str, Any]) -> None:
    response = cloud_error(409, "Conflict", "m", "jobName", [{"code": "Inner", "message": "i"}])
    assert valid(doc, "CloudError", json.loads(bytes(response.body))) == []
    assert valid(doc, "CloudError", {"detail": "Not Found"}) != []
