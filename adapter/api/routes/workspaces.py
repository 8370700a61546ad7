"""Workspaces and experiments (reference/sdk.md section 4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from adapter.api.body import parse_body
from adapter.api.deps import Caller, Svc, api_version, base_url
from adapter.api.lro import accepted
from adapter.api.paging import page
from adapter.api.resources import experiment_resource, workspace_resource
from adapter.models.common import check_name, check_resource_group
from adapter.models.workspaces import WorkspaceCreateParameters, WorkspaceUpdateParameters

router = APIRouter(dependencies=[Depends(api_version)])
SUB = "/subscriptions/{sub}"
WS = SUB + "/resourceGroups/{rg}/providers/Microsoft.BatchAI/workspaces/{ws}"


def _names(rg: str, ws: str) -> None:
    check_resource_group(rg)
    check_name("workspaceName", ws)


@router.get(SUB + "/providers/Microsoft.BatchAI/workspaces")
def list_all(sub: str, request: Request, _p: Caller, s: Svc) -> dict[str, Any]:
    items = [workspace_resource(w) for w in s.store.workspaces(sub)]
    return page(request, items, base_url(request))


@router.get(SUB + "/resourceGroups/{rg}/providers/Microsoft.BatchAI/workspaces")
def list_by_group(
    sub: str,
    rg: str,
    request: Request,
    _p: Caller,
    s: Svc,
) -> dict[str, Any]:
    check_resource_group(rg)
    items = [workspace_resource(w) for w in s.store.workspaces(sub, rg)]
    return page(request, items, base_url(request))


@router.put(WS)
async def create(
    sub: str,
    rg: str,
    ws: str,
    request: Request,
    _p: Caller,
    s: Svc,
) -> dict[str, Any]:
    _names(rg, ws)
    body = await parse_body(request, WorkspaceCreateParameters)
    return workspace_resource(s.workspaces.create(sub, rg, ws, body))


@router.patch(WS)
async def update(
    sub: str,
    rg: str,
    ws: str,
    request: Request,
    _p: Caller,
    s: Svc,
) -> dict[str, Any]:
    _names(rg, ws)
    body = await parse_body(request, WorkspaceUpdateParameters)
    return workspace_resource(s.workspaces.update_tags(sub, rg, ws, body.tags))


@router.get(WS)
def get(sub: str, rg: str, ws: str, _p: Caller, s: Svc) -> dict[str, Any]:
    _names(rg, ws)
    return workspace_resource(s.workspaces.get(sub, rg, ws))


@router.delete(WS)
async def delete(
    sub: str,
    rg: str,
    ws: str,
    request: Request,
    p: Caller,
    s: Svc,
) -> Response:
    _names(rg, ws)
    if not p.admin:
        for cluster in s.store.clusters(sub, rg, ws):
            p.require_user(cluster.owner, "workspaceName")
    op = await s.workspaces.delete(sub, rg, ws)
    return accepted(op, base_url(request), sub)


@router.get(WS + "/experiments")
def list_experiments(
    sub: str,
    rg: str,
    ws: str,
    request: Request,
    _p: Caller,
    s: Svc,
) -> dict[str, Any]:
    _names(rg, ws)
    s.workspaces.get(sub, rg, ws)
    items = [experiment_resource(e) for e in s.store.experiments(sub, rg, ws)]
    return page(request, items, base_url(request))


@router.put(WS + "/experiments/{name}")
def create_experiment(
    sub: str,
    rg: str,
    ws: str,
    name: str,
    _p: Caller,
    s: Svc,
) -> dict[str, Any]:
    _names(rg, ws)
    check_name("experimentName", name)
    return experiment_resource(s.workspaces.create_experiment(sub, rg, ws, name))


@router.get(WS + "/experiments/{name}")
def get_experiment(
    sub: str,
    rg: str,
    ws: str,
    name: str,
    _p: Caller,
    s: Svc,
) -> dict[str, Any]:
    _names(rg, ws)
    check_name("experimentName", name)
    return experiment_resource(s.workspaces.experiment(sub, rg, ws, name))


@router.delete(WS + "/experiments/{name}")
async def delete_experiment(
    sub: str,
    rg: str,
    ws: str,
    name: str,
    request: Request,
    _p: Caller,
    s: Svc,
) -> Response:
    _names(rg, ws)
    check_name("experimentName", name)
    op = await s.workspaces.delete_experiment(sub, rg, ws, name)
    return accepted(op, base_url(request), sub)
