"""/metrics: served from bai's state; a scrape never calls Slurm."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from adapter.api.deps import Svc
from adapter.errors import Unauthorized

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, s: Svc) -> Response:
    token = s.settings.metrics.token
    if token:
        sent = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent, token):
            raise Unauthorized("/metrics needs the bearer token set in metrics.token")
    return Response(s.exposition.render(), media_type=CONTENT_TYPE_LATEST)
