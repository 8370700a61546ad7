"""Long-running operations: 202 + Location/Azure-AsyncOperation, and their status endpoints."""

from __future__ import annotations

from fastapi import Response

from adapter.api.deps import API_VERSION
from adapter.records import Operation

PROVIDER_ROOT = "/subscriptions/{sub}/providers/Microsoft.BatchAI"


def accepted(op: Operation, base: str, sub: str) -> Response:
    """202 for an operation in progress; both SDK generations can poll it."""
    root = base + PROVIDER_ROOT.format(sub=sub)
    headers = {
        "Location": f"{root}/operationresults/{op.id}?api-version={API_VERSION}",
        "Azure-AsyncOperation": f"{root}/operationstatuses/{op.id}?api-version={API_VERSION}",
        "Retry-After": "1",
    }
    if op.status == "Succeeded":
        return Response(status_code=200)
    return Response(status_code=202, headers=headers)
