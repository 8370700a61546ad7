"""Paging: `window` validates maxresults and $skiptoken, `page_rows` renders only one page from
at most a page and one row, and `page` keeps paging lists built in full."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi import Request

from adapter.api.paging import Window, page, page_rows, window
from adapter.errors import InvalidRequest

BASE = "https://bai.example:8443"
PATH = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces"


def request(**query: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "https",
            "server": ("bai.example", 8443),
            "path": PATH,
            "root_path": "",
            "query_string": urlencode({"api-version": "2018-05-01", **query}).encode(),
            "headers": [],
        }
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, Window(skip=0, size=1000)),
        ({"maxresults": "1"}, Window(skip=0, size=1)),
        ({"maxresults": "1000", "$skiptoken": "999999999"}, Window(skip=999_999_999, size=1000)),
        ({"maxresults": "0007", "$skiptoken": "0"}, Window(skip=0, size=7)),
    ],
)
def test_window(query: dict[str, str], expected: Window) -> None:
    assert window(request(**query)) == expected
    assert expected.fetch == expected.size + 1


RANGE = "use an integer from 1 to 1000"
NEXT = "use the nextLink of the previous page as it is"


@pytest.mark.parametrize(
    ("query", "target", "message"),
    [
        ({"maxresults": "0"}, "maxresults", "maxresults 0 is out of range; use 1 to 1000"),
        ({"maxresults": "1001"}, "maxresults", "maxresults 1001 is out of range; use 1 to 1000"),
        ({"maxresults": "-1"}, "maxresults", f"maxresults '-1' is not valid; {RANGE}"),
        ({"maxresults": ""}, "maxresults", f"maxresults '' is not valid; {RANGE}"),
        ({"maxresults": "ten"}, "maxresults", f"maxresults 'ten' is not valid; {RANGE}"),
        ({"maxresults": " 10"}, "maxresults", f"maxresults ' 10' is not valid; {RANGE}"),
        ({"maxresults": "1_0"}, "maxresults", f"maxresults '1_0' is not valid; {RANGE}"),
        ({"maxresults": "١٠"}, "maxresults", f"maxresults '١٠' is not valid; {RANGE}"),
        (
            {"maxresults": "9" * 10_000},
            "maxresults",
            f"maxresults '{'9' * 32}…' is not valid; {RANGE}",
        ),
        ({"$skiptoken": "-5"}, "$skiptoken", f"$skiptoken '-5' is not valid; {NEXT}"),
        ({"$skiptoken": "abc"}, "$skiptoken", f"$skiptoken 'abc' is not valid; {NEXT}"),
        ({"$skiptoken": "é\x00"}, "$skiptoken", f"$skiptoken 'é\\x00' is not valid; {NEXT}"),
        ({"$skiptoken": "1" * 10}, "$skiptoken", f"$skiptoken '{'1' * 10}' is not valid; {NEXT}"),
    ],
)
def test_window_refuses(query: dict[str, str], target: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        window(request(**query))
    assert (info.value.status, info.value.target, info.value.message) == (400, target, message)


def next_query(body: dict[str, Any]) -> dict[str, list[str]]:
    link = urlsplit(body["nextLink"])
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{BASE}{PATH}"
    return parse_qs(link.query)


@pytest.mark.parametrize(
    ("skip", "size", "rows", "values", "next_skip"),
    [
        (0, 2, [0, 1, 2], [0, 1], "2"),  # the extra row: there is more
        (2, 2, [2, 3], [2, 3], None),  # exactly a page: the last one
        (4, 2, [4], [4], None),
        (6, 2, [], [], None),  # past the end
        (0, 1000, list(range(1001)), list(range(1000)), "1000"),
    ],
)
def test_page_rows_renders_only_the_page(
    skip: int, size: int, rows: list[int], values: list[int], next_skip: str | None
) -> None:
    rendered: list[int] = []

    def render(row: int) -> dict[str, Any]:
        rendered.append(row)
        return {"name": f"w{row}"}

    query = {"maxresults": str(size), "$skiptoken": str(skip)}
    body = page_rows(request(**query), rows, render, BASE + "/", window(request(**query)))
    assert rendered == values
    assert body["value"] == [{"name": f"w{v}"} for v in values]
    if next_skip is None:
        assert set(body) == {"value"}
    else:
        # The link carries every parameter of the request, the new offset in place of the old.
        assert next_query(body) == {
            "api-version": ["2018-05-01"],
            "maxresults": [str(size)],
            "$skiptoken": [next_skip],
        }


def test_page_rows_refuses_more_than_a_window() -> None:
    req = request(maxresults="2")
    with pytest.raises(ValueError, match="page_rows got 4 rows for a window of 3"):
        page_rows(req, [1, 2, 3, 4], lambda row: {"n": row}, BASE, window(req))


@pytest.mark.parametrize(
    ("query", "names", "next_skip"),
    [
        ({}, ["a", "b", "c", "d", "e"], None),
        ({"maxresults": "2"}, ["a", "b"], "2"),
        ({"maxresults": "2", "$skiptoken": "2"}, ["c", "d"], "4"),
        ({"maxresults": "2", "$skiptoken": "4"}, ["e"], None),
        ({"maxresults": "5"}, ["a", "b", "c", "d", "e"], None),
        ({"$skiptoken": "50"}, [], None),
    ],
)
def test_page_of_a_full_list(
    query: dict[str, str], names: list[str], next_skip: str | None
) -> None:
    items = [{"name": n} for n in "abcde"]
    body = page(request(**query), items, BASE)
    assert body["value"] == [{"name": n} for n in names]
    if next_skip is None:
        assert "nextLink" not in body
    else:
        assert next_query(body)["$skiptoken"] == [next_skip]
        assert next_query(body)["api-version"] == ["2018-05-01"]


def test_page_refuses_like_window() -> None:
    with pytest.raises(InvalidRequest) as info:
        page(request(maxresults="abc"), [{"name": "a"}], BASE)
    assert (info.value.status, info.value.target) == (400, "maxresults")
    assert info.value.message == f"maxresults 'abc' is not valid; {RANGE}"
