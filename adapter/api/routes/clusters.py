"""Clusters and their nodes' SSH coordinates (reference/sdk.md section 4); who sees what is
adapter.tenancy's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from adapter.api.body import parse_body
from adapter.api.deps import Caller, Svc, api_version, base_url
from adapter.api.lro import accepted
from adapter.api.paging import page, page_rows, window
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
    sub: str, rg: str, ws: str, request: Request, p: Caller, s: Svc
) -> dict[str, Any]:
    check_resource_group(rg)
    check_name("workspaceName", ws)
    s.tenancy.workspace(p, sub, rg, ws)
    snap, w = s.reconciler.latest(), window(request)
    rows = s.store.clusters(sub, rg, ws)[w.skip : w.skip + w.fetch]
    return page_rows(request, rows, lambda c: cluster_resource(c, snap), base_url(request), w)


@router.put(CLUSTER)
async def create(
    sub: str, rg: str, ws: str, name: str, request: Request, p: Caller, s: Svc
) -> dict[str, Any]:
    key = _key(sub, rg, ws, name)
    workspace = s.tenancy.workspace(p, sub, rg, ws)
    existing = s.store.cluster(sub, rg, ws, name)
    if existing is not None:
        s.tenancy.require_change(p, workspace, existing.owner, f"cluster {name}", "clusterName")
    body = await parse_body(request, ClusterCreateParameters)
    cluster = await s.clusters.create(key, body, p)
    return cluster_resource(cluster, s.reconciler.latest())


@router.patch(CLUSTER)
async def update(
    sub: str, rg: str, ws: str, name: str, request: Request, p: Caller, s: Svc
) -> dict[str, Any]:
    key = _key(sub, rg, ws, name)
    workspace, cluster = s.tenancy.cluster(p, sub, rg, ws, name)
    s.tenancy.require_change(p, workspace, cluster.owner, f"cluster {name}", "clusterName")
    body = await parse_body(request, ClusterUpdateParameters)
    cluster = await s.clusters.update(key, body.properties.scale_settings)
    return cluster_resource(cluster, s.reconciler.latest())


@router.get(CLUSTER)
def get(sub: str, rg: str, ws: str, name: str, p: Caller, s: Svc) -> dict[str, Any]:
    _key(sub, rg, ws, name)
    return cluster_resource(s.tenancy.cluster(p, sub, rg, ws, name)[1], s.reconciler.latest())


@router.delete(CLUSTER)
async def delete(
    sub: str, rg: str, ws: str, name: str, request: Request, p: Caller, s: Svc
) -> Response:
    key = _key(sub, rg, ws, name)
    workspace, cluster = s.tenancy.cluster(p, sub, rg, ws, name)
    s.tenancy.require_change(p, workspace, cluster.owner, f"cluster {name}", "clusterName")
    op = await s.clusters.delete(key, p.user)
    s.reconciler.kick()
    return accepted(op, base_url(request), sub)


@router.api_route(CLUSTER + "/listRemoteLoginInformation", methods=["POST", "GET"])
def remote_login(
    sub: str, rg: str, ws: str, name: str, request: Request, p: Caller, s: Svc
) -> dict[str, Any]:
    _key(sub, rg, ws, name)
    cluster = s.tenancy.cluster(p, sub, rg, ws, name)[1]
    logins = remote_logins(cluster.nodes, s.reconciler.latest(), s.settings.remote_login)
    items = [{"nodeId": r.node_id, "ipAddress": r.ip_address, "port": r.port} for r in logins]
    return page(request, items, base_url(request))
