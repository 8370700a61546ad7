"""Workspaces and experiments (reference/sdk.md section 4); who sees what is adapter.tenancy's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from adapter.api.body import parse_body
from adapter.api.deps import Caller, Svc, api_version, base_url
from adapter.api.lro import accepted
from adapter.api.paging import page_rows, window
from adapter.api.resources import experiment_resource, workspace_resource
from adapter.models.common import check_name, check_resource_group
from adapter.models.workspaces import WorkspaceCreateParameters, WorkspaceUpdateParameters
from adapter.records import Workspace

router = APIRouter(dependencies=[Depends(api_version)])
SUB = "/subscriptions/{sub}"
WS = SUB + "/resourceGroups/{rg}/providers/Microsoft.BatchAI/workspaces/{ws}"


def _names(rg: str, ws: str) -> None:
    check_resource_group(rg)
    check_name("workspaceName", ws)


@router.get(SUB + "/providers/Microsoft.BatchAI/workspaces")
def list_all(sub: str, request: Request, p: Caller, s: Svc) -> dict[str, Any]:
    return _workspace_page(request, s.tenancy.workspaces(p, sub))


@router.get(SUB + "/resourceGroups/{rg}/providers/Microsoft.BatchAI/workspaces")
def list_by_group(sub: str, rg: str, request: Request, p: Caller, s: Svc) -> dict[str, Any]:
    check_resource_group(rg)
    return _workspace_page(request, s.tenancy.workspaces(p, sub, rg))


def _workspace_page(request: Request, visible: list[Workspace]) -> dict[str, Any]:
    # Visibility needs each user's groups, so the filter is Python's; only the page is rendered.
    w = window(request)
    rows = visible[w.skip : w.skip + w.fetch]
    return page_rows(request, rows, workspace_resource, base_url(request), w)


@router.put(WS)
async def create(sub: str, rg: str, ws: str, request: Request, p: Caller, s: Svc) -> dict[str, Any]:
    _names(rg, ws)
    body = await parse_body(request, WorkspaceCreateParameters)
    return workspace_resource(s.workspaces.create(sub, rg, ws, body, p))


@router.patch(WS)
async def update(sub: str, rg: str, ws: str, request: Request, p: Caller, s: Svc) -> dict[str, Any]:
    _names(rg, ws)
    workspace = s.tenancy.workspace(p, sub, rg, ws)
    body = await parse_body(request, WorkspaceUpdateParameters)
    return workspace_resource(s.workspaces.update_tags(workspace, body.tags, p))


@router.get(WS)
def get(sub: str, rg: str, ws: str, p: Caller, s: Svc) -> dict[str, Any]:
    _names(rg, ws)
    return workspace_resource(s.tenancy.workspace(p, sub, rg, ws))


@router.delete(WS)
async def delete(sub: str, rg: str, ws: str, request: Request, p: Caller, s: Svc) -> Response:
    _names(rg, ws)
    op = await s.workspaces.delete(s.tenancy.workspace(p, sub, rg, ws), p)
    return accepted(op, base_url(request), sub)


@router.get(WS + "/experiments")
def list_experiments(
    sub: str, rg: str, ws: str, request: Request, p: Caller, s: Svc
) -> dict[str, Any]:
    _names(rg, ws)
    s.tenancy.workspace(p, sub, rg, ws)
    w = window(request)
    rows = s.store.experiments(sub, rg, ws, limit=w.fetch, offset=w.skip)
    return page_rows(request, rows, experiment_resource, base_url(request), w)


@router.put(WS + "/experiments/{name}")
def create_experiment(sub: str, rg: str, ws: str, name: str, p: Caller, s: Svc) -> dict[str, Any]:
    _names(rg, ws)
    check_name("experimentName", name)
    workspace = s.tenancy.workspace(p, sub, rg, ws)
    return experiment_resource(s.workspaces.create_experiment(workspace, name, p.user))


@router.get(WS + "/experiments/{name}")
def get_experiment(sub: str, rg: str, ws: str, name: str, p: Caller, s: Svc) -> dict[str, Any]:
    _names(rg, ws)
    check_name("experimentName", name)
    return experiment_resource(s.tenancy.experiment(p, sub, rg, ws, name)[1])


@router.delete(WS + "/experiments/{name}")
async def delete_experiment(
    sub: str, rg: str, ws: str, name: str, request: Request, p: Caller, s: Svc
) -> Response:
    _names(rg, ws)
    check_name("experimentName", name)
    workspace, ex = s.tenancy.experiment(p, sub, rg, ws, name)
    s.tenancy.require_change(p, workspace, ex.owner, f"experiment {name}", "experimentName")
    op = await s.workspaces.delete_experiment(ex, p.user)
    return accepted(op, base_url(request), sub)
