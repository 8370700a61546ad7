"""Jobs (reference/sdk.md section 4); who sees what is adapter.tenancy's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from adapter.api.body import parse_body
from adapter.api.deps import Caller, Svc, api_version, base_url
from adapter.api.lro import accepted
from adapter.api.paging import page, page_rows, window
from adapter.api.resources import job_resource
from adapter.clusters.view import remote_logins
from adapter.jobs.translate import JobKey
from adapter.models.common import check_name, check_resource_group
from adapter.models.jobs import JobCreateParameters

router = APIRouter(dependencies=[Depends(api_version)])
EXP = (
    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.BatchAI/workspaces/{ws}"
    "/experiments/{exp}"
)
JOB = EXP + "/jobs/{name}"


def _key(sub: str, rg: str, ws: str, exp: str, name: str) -> JobKey:
    check_resource_group(rg)
    check_name("workspaceName", ws)
    check_name("experimentName", exp)
    check_name("jobName", name)
    return JobKey(sub, rg, ws, exp, name)


@router.get(EXP + "/jobs")
def list_jobs(
    sub: str, rg: str, ws: str, exp: str, request: Request, p: Caller, s: Svc
) -> dict[str, Any]:
    check_resource_group(rg)
    check_name("workspaceName", ws)
    check_name("experimentName", exp)
    s.tenancy.experiment(p, sub, rg, ws, exp)
    w = window(request)  # one page read and rendered, however many jobs there are
    rows = s.store.jobs(sub, rg, ws, exp, limit=w.fetch, offset=w.skip)
    return page_rows(request, rows, job_resource, base_url(request), w)


@router.put(JOB)
async def create(
    sub: str, rg: str, ws: str, exp: str, name: str, request: Request, p: Caller, s: Svc
) -> dict[str, Any]:
    key = _key(sub, rg, ws, exp, name)
    s.tenancy.experiment(p, sub, rg, ws, exp)
    body = await parse_body(request, JobCreateParameters)
    return job_resource(await s.jobs.create(key, body, p))


@router.get(JOB)
def get(sub: str, rg: str, ws: str, exp: str, name: str, p: Caller, s: Svc) -> dict[str, Any]:
    _key(sub, rg, ws, exp, name)
    return job_resource(s.tenancy.job(p, sub, rg, ws, exp, name)[1])


@router.delete(JOB)
async def delete(
    sub: str, rg: str, ws: str, exp: str, name: str, request: Request, p: Caller, s: Svc
) -> Response:
    key = _key(sub, rg, ws, exp, name)
    workspace, job = s.tenancy.job(p, sub, rg, ws, exp, name)
    s.tenancy.require_change(p, workspace, job.owner, f"job {name}", "jobName")
    op = await s.jobs.delete(key, p.user)
    s.reconciler.kick()
    return accepted(op, base_url(request), sub)


@router.post(JOB + "/terminate")
async def terminate(
    sub: str, rg: str, ws: str, exp: str, name: str, request: Request, p: Caller, s: Svc
) -> Response:
    key = _key(sub, rg, ws, exp, name)
    workspace, job = s.tenancy.job(p, sub, rg, ws, exp, name)
    s.tenancy.require_change(p, workspace, job.owner, f"job {name}", "jobName")
    op = await s.jobs.terminate(key, p.user)
    if op is None:
        return Response(status_code=200)  # already finished: nothing to do
    s.reconciler.kick()
    return accepted(op, base_url(request), sub)


@router.api_route(JOB + "/listRemoteLoginInformation", methods=["POST", "GET"])
def remote_login(
    sub: str, rg: str, ws: str, exp: str, name: str, request: Request, p: Caller, s: Svc
) -> dict[str, Any]:
    """The nodes the job ran on that are still in its cluster."""
    _key(sub, rg, ws, exp, name)
    job = s.tenancy.job(p, sub, rg, ws, exp, name)[1]
    cluster = s.store.cluster_by_uid(job.cluster_uid)
    nodes = [n for n in job.nodes if cluster is not None and n in cluster.nodes]
    logins = remote_logins(nodes, s.reconciler.latest(), s.settings.remote_login)
    items = [{"nodeId": r.node_id, "ipAddress": r.ip_address, "port": r.port} for r in logins]
    return page(request, items, base_url(request))
