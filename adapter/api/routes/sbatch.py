"""`bai sbatch`'s two calls: record and prepare a job, then confirm what sbatch made of it.

bai's own routes, not Batch AI's. Who may do what is the same as for jobs: the cluster `-p`
names must be one of a workspace the caller sees, and a prepared job answers only its owner.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from adapter.api.body import parse_body
from adapter.api.deps import Caller, Svc
from adapter.api.resources import job_resource
from adapter.jobs.sbatch import SbatchJobs
from adapter.models.sbatch import SbatchConfirm, SbatchSubmit

router = APIRouter()


@router.post("/bai/sbatch")
async def submit(request: Request, p: Caller, s: Svc) -> dict[str, Any]:
    body = await parse_body(request, SbatchSubmit)
    job, argv, wrapper = await SbatchJobs(s.jobs, s.workspaces).submit(body, p)
    return {
        "uid": job.uid,
        "user": job.owner,
        "job": job_resource(job),
        "arguments": argv,
        "script": wrapper,
    }


@router.post("/bai/sbatch/{uid}")
async def confirm(uid: str, request: Request, p: Caller, s: Svc) -> dict[str, Any]:
    body = await parse_body(request, SbatchConfirm)
    return job_resource(await SbatchJobs(s.jobs, s.workspaces).confirm(uid, body, p))
