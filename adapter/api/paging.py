"""ARM paging: `{"value": [...], "nextLink": ...}` with a self-contained nextLink."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request

from adapter.errors import InvalidRequest

R = TypeVar("R")

MAX_RESULTS = 1000  # maxresults: 1..1000, the default (SPEC)
MAX_SKIP = 10**9 - 1  # $skiptoken: an offset, at most 9 digits
_DIGITS = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class Window:
    """Which rows a list request asks for: `size` rows from offset `skip`."""

    skip: int
    size: int

    @property
    def fetch(self) -> int:
        """How many rows to read (SQL LIMIT, with OFFSET `skip`): one more than the page, so
        that the extra row says whether there is a next page."""
        return self.size + 1


def window(request: Request) -> Window:
    """The page a list request asks for: `maxresults` (1..1000, default 1000) and `$skiptoken`
    (the offset our nextLink carries, default 0); anything else is a 400 naming the parameter."""
    query = request.query_params
    size = _number(query.get("maxresults"), "maxresults", MAX_RESULTS)
    if not 1 <= size <= MAX_RESULTS:
        raise InvalidRequest(
            f"maxresults {size} is out of range; use 1 to {MAX_RESULTS}", target="maxresults"
        )
    return Window(skip=_number(query.get("$skiptoken"), "$skiptoken", 0), size=size)


def _number(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if _DIGITS.fullmatch(value) is None:
        shown = repr(value[:32] + "…") if len(value) > 32 else repr(value)
        fix = (
            f"use an integer from 1 to {MAX_RESULTS}"
            if name == "maxresults"
            else "use the nextLink of the previous page as it is"
        )
        raise InvalidRequest(f"{name} {shown} is not valid; {fix}", target=name)
    return int(value)


def page_rows(
    request: Request,
    rows: Sequence[R],
    render: Callable[[R], dict[str, Any]],
    base_url: str,
    window: Window,
) -> dict[str, Any]:
    """One page, `{"value": [...], "nextLink": ...}`, from the rows a query read for `window`.

    `rows` are the rows from offset `window.skip` on, at most `window.fetch` of them
    (`window.size + 1`: read with LIMIT `window.fetch` OFFSET `window.skip`). Only the first
    `window.size` are rendered; an extra row means there is a next page, and only then is
    nextLink set. More rows than `window.fetch` is a bug of the caller (ValueError).
    """
    if len(rows) > window.fetch:
        raise ValueError(f"page_rows got {len(rows)} rows for a window of {window.fetch}")
    body: dict[str, Any] = {"value": [render(row) for row in rows[: window.size]]}
    if len(rows) > window.size:
        # Clients request the link verbatim, so it carries api-version and every filter.
        query = dict(request.query_params)
        query["$skiptoken"] = str(window.skip + window.size)
        body["nextLink"] = f"{base_url.rstrip('/')}{request.url.path}?{urlencode(query)}"
    return body


def page(request: Request, items: Sequence[dict[str, Any]], base_url: str) -> dict[str, Any]:
    """One page of items already built in full; `maxresults` and `$skiptoken` as in `window`.
    Routes that can read one page at a time use `window` and `page_rows` instead."""
    w = window(request)
    return page_rows(request, items[w.skip : w.skip + w.fetch], _same, base_url, w)


def _same(item: dict[str, Any]) -> dict[str, Any]:
    return item
