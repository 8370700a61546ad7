"""ARM paging: `{"value": [...], "nextLink": ...}` with a self-contained nextLink."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from adapter.errors import InvalidRequest


def page(request: Request, items: Sequence[dict[str, Any]], base_url: str) -> dict[str, Any]:
    """One page of items; `maxresults` (1..1000) and `$skiptoken` come from the query."""
    query = dict(request.query_params)
    try:
        size = int(query.get("maxresults", "1000"))
        skip = int(query.get("$skiptoken", "0"))
    except ValueError:
        raise InvalidRequest(
            "maxresults and $skiptoken must be integers", target="maxresults"
        ) from None
    if not 1 <= size <= 1000:
        raise InvalidRequest(
            f"maxresults {size} is out of range; use 1 to 1000", target="maxresults"
        )
    body: dict[str, Any] = {"value": list(items[skip : skip + size])}
    if skip + size < len(items):
        # Clients request the link verbatim, so it carries api-version and every filter.
        query["$skiptoken"] = str(skip + size)
        body["nextLink"] = f"{base_url.rstrip('/')}{request.url.path}?{urlencode(query)}"
    return body
