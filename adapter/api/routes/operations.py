"""Operation status endpoints, usages (nodes and GPU quotas per type) and the operations list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from adapter.api.deps import Caller, Svc, api_version, base_url
from adapter.api.paging import page
from adapter.clusters import quotas
from adapter.unix import groups_of

router = APIRouter(dependencies=[Depends(api_version)])
ROOT = "/subscriptions/{sub}/providers/Microsoft.BatchAI"


@router.get(ROOT + "/operationresults/{op_id}")
def operation_result(sub: str, op_id: str, p: Caller, s: Svc) -> Response:
    op = s.tenancy.operation(p, op_id)
    if op.status == "InProgress":
        return Response(status_code=202, headers={"Retry-After": "1"})
    if op.status == "Failed":
        # Always a whole CloudError, even for an operation that failed without saying why.
        error = op.error or {"code": "OperationFailed", "message": f"operation {op.id} failed"}
        return JSONResponse({"error": error}, status_code=500)
    return Response(status_code=204)


@router.get(ROOT + "/operationstatuses/{op_id}")
def operation_status(sub: str, op_id: str, p: Caller, s: Svc) -> dict[str, Any]:
    op = s.tenancy.operation(p, op_id)
    body: dict[str, Any] = {"id": op.id, "name": op.id, "status": op.status}
    if op.error:
        body["error"] = op.error
    return body


@router.get(ROOT + "/locations/{location}/usages")
def usages(
    sub: str,
    location: str,
    request: Request,
    p: Caller,
    s: Svc,
) -> dict[str, Any]:
    """Per node type, the nodes dedicated clusters own (`<type> dedicated nodes`) and the
    usable nodes (`<type> usable nodes`), site-wide for everyone; then GPU use and limits
    (adapter.clusters.quotas.usages): the caller's, or the site's for an admin."""
    snap = s.reconciler.latest()
    types = snap.types if snap else {}
    clusters = s.store.clusters()
    owned: dict[str, set[str]] = {}
    for cluster in clusters:
        if cluster.priority == "dedicated":
            owned.setdefault(cluster.node_type, set()).update(cluster.nodes)
    items = []
    for t in types.values():
        usable = [n for n in t.nodes if snap is not None and snap.nodes[n].usable]
        items.append(_usage(f"{t.name} dedicated nodes", len(owned.get(t.name, ())), len(t.nodes)))
        items.append(_usage(f"{t.name} usable nodes", len(usable), len(t.nodes)))
    cfg = s.settings.quotas
    held = quotas.holdings(clusters, types)
    caller = None if p.admin else p.user
    groups = quotas.memberships([p.user, *(c.owner for c in clusters)], cfg, groups_of)
    rows = quotas.usages(caller, types, held, groups, cfg)
    items += [_usage(r.name, r.current, r.limit) for r in rows]
    return page(request, items, base_url(request))


def _usage(name: str, current: int, limit: int) -> dict[str, Any]:
    return {
        "unit": "Count",
        "currentValue": current,
        "limit": limit,
        "name": {"value": name, "localizedValue": name},
    }


@router.get("/providers/Microsoft.BatchAI/operations")
def operations(request: Request, _p: Caller) -> dict[str, Any]:
    names = [
        "workspaces",
        "workspaces/experiments",
        "workspaces/clusters",
        "workspaces/experiments/jobs",
    ]
    items = [
        {
            "name": f"Microsoft.BatchAI/{n}/{verb}",
            "origin": "user,system",
            "display": {
                "provider": "Microsoft Batch AI (bai)",
                "resource": n,
                "operation": verb,
                "description": f"{verb} {n}",
            },
        }
        for n in names
        for verb in ("read", "write", "delete")
    ]
    return page(request, items, base_url(request))
