"""Clusters and their nodes' SSH coordinates (reference/sdk.md section 4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from adapter.api.body import parse_body
from adapter.api.deps import Caller, Svc, api_version, base_url
from adapter.api.lro import accepted
from adapter.api.paging import page
from adapter.api.resources import cluster_resource
from adapter.clusters.service import ClusterKey
from adapter.clusters.view import remote_logins
from adapter.models.clusters import ClusterCreateParameters, ClusterUpdateParameters
from adapter.models.common import check_name, check_resource_group

router = APIRouter(dependencies=[Depends(api_version)])
WS = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.BatchAI/workspaces/{ws}"
CLUSTER = WS + "/clusters/{name}"


def _key(sub: str, rg: str, ws: str, name: str) -> ClusterKey:
    check_resource_group(rg)
    check_name("workspaceName", ws)
    check_name("clusterName", name)
    return ClusterKey(sub, rg, ws, name)


@router.get(WS + "/clusters")
def list_clusters(
    sub: str,
    rg: str,
    ws: str,
    request: Request,
    _p: Caller,
    s: Svc,
) -> dict[str, Any]:
    check_resource_group(rg)
    check_name("workspaceName", ws)
    s.workspaces.get(sub, rg, ws)
    snap = s.reconciler.latest()
    items = [cluster_resource(c, snap) for c in s.store.clusters(sub, rg, ws)]
    return page(request, items, base_url(request))


@router.put(CLUSTER)
async def create(
    sub: str,
    rg: str,
    ws: str,
    name: str,
    request: Request,
    p: Caller,
    s: Svc,
) -> dict[str, Any]:
    key = _key(sub, rg, ws, name)
    body = await parse_body(request, ClusterCreateParameters)
    cluster = await s.clusters.create(key, body, p)
    return cluster_resource(cluster, s.reconciler.latest())


@router.patch(CLUSTER)
async def update(
    sub: str,
    rg: str,
    ws: str,
    name: str,
    request: Request,
    p: Caller,
    s: Svc,
) -> dict[str, Any]:
    key = _key(sub, rg, ws, name)
    body = await parse_body(request, ClusterUpdateParameters)
    p.require_user(s.clusters.get(key).owner, "clusterName")
    cluster = await s.clusters.update(key, body.properties.scale_settings)
    return cluster_resource(cluster, s.reconciler.latest())


@router.get(CLUSTER)
def get(
    sub: str,
    rg: str,
    ws: str,
    name: str,
    _p: Caller,
    s: Svc,
) -> dict[str, Any]:
    return cluster_resource(s.clusters.get(_key(sub, rg, ws, name)), s.reconciler.latest())


@router.delete(CLUSTER)
async def delete(
    sub: str,
    rg: str,
    ws: str,
    name: str,
    request: Request,
    p: Caller,
    s: Svc,
) -> Response:
    key = _key(sub, rg, ws, name)
    p.require_user(s.clusters.get(key).owner, "clusterName")
    op = await s.clusters.delete(key)
    s.reconciler.kick()
    return accepted(op, base_url(request), sub)


@router.api_route(CLUSTER + "/listRemoteLoginInformation", methods=["POST", "GET"])
def remote_login(
    sub: str,
    rg: str,
    ws: str,
    name: str,
    request: Request,
    _p: Caller,
    s: Svc,
) -> dict[str, Any]:
    cluster = s.clusters.get(_key(sub, rg, ws, name))
    logins = remote_logins(cluster.nodes, s.reconciler.latest(), s.settings.remote_login)
    items = [{"nodeId": r.node_id, "ipAddress": r.ip_address, "port": r.port} for r in logins]
    return page(request, items, base_url(request))
