"""listOutputFiles, and the signed download URLs it hands out (Range requests supported)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from adapter.api.deps import Caller, Svc, api_version, base_url
from adapter.api.download import fd_response
from adapter.api.paging import page
from adapter.api.routes.jobs import JOB, _key
from adapter.errors import InvalidRequest, NotFound, Unauthorized
from adapter.jobs.files import file_items, list_dir, open_download

router = APIRouter()


@router.api_route(
    JOB + "/listOutputFiles", methods=["POST", "GET"], dependencies=[Depends(api_version)]
)
def list_output_files(
    sub: str, rg: str, ws: str, exp: str, name: str, request: Request, p: Caller, s: Svc
) -> dict[str, Any]:
    _key(sub, rg, ws, exp, name)
    job = s.tenancy.job(p, sub, rg, ws, exp, name)[1]
    query = request.query_params
    directory_id = query.get("outputdirectoryid")
    if not directory_id:
        raise InvalidRequest(
            "outputdirectoryid is required: stdouterr or an output directory id",
            target="outputdirectoryid",
        )
    try:
        expiry = int(query.get("linkexpiryinminutes", "60"))
    except ValueError:
        expiry = 0
    if not 5 <= expiry <= 600:
        raise InvalidRequest(
            "linkexpiryinminutes must be an integer from 5 to 600", target="linkexpiryinminutes"
        )
    directory = query.get("directory", ".")
    entries = list_dir(job, directory_id, directory)
    items = file_items(
        entries,
        base=base_url(request),
        job=job,
        directory_id=directory_id,
        relative=directory,
        signer=s.signer,
        expiry_minutes=expiry,
    )
    return page(request, items, base_url(request))


@router.get("/bai/files/{path:path}")
def download(path: str, request: Request, s: Svc) -> Response:
    """A file behind a signed URL; no bearer token (the signature is the permission). Any
    malformed `se` or `sig` (not ASCII, not a number, too long) is the same 401 as a bad one."""
    se = request.query_params.get("se", "")
    # ASCII digits only: int() would also take '١٢٣', ' 12' and '1_2', and refuse 5000 digits.
    expires = int(se) if re.fullmatch(r"[0-9]{1,12}", se) else 0
    if not s.signer.verify(path, expires, request.query_params.get("sig", "")):
        raise Unauthorized("the download link is not valid or has expired; list the files again")
    uid, _, rest = path.partition("/")
    directory_id, _, relative = rest.partition("/")
    job = s.store.job_by_uid(uid)
    if job is None:
        raise NotFound("the job of this link no longer exists")
    fd, size = open_download(job, directory_id, relative)
    return fd_response(fd, size, request.headers.get("range"))
