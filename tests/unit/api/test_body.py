"""parse_body: JSON only (415 otherwise), nesting bounded before parsing, and every malformed
body a 4xx CloudError that says what is wrong, never a 500."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapter.api.body import check_depth, load_json
from adapter.cli.client import Client
from adapter.errors import InvalidRequest
from adapter.models.jobs import JobCreateParameters
from tests.unit.api.apps import LIMITS, ROOMY, client, error_of, small_app

WORKSPACE = b'{"location": "eastus"}'
EASTUS = {"location": "eastus", "tags": {}}
NOT_JSON = "the request body is not valid JSON: "
NOT_ACCEPTED = "the request body is not accepted: "
RECIPES = [
    *sorted((Path(__file__).parents[2] / "fixtures" / "batchai-recipes").glob("*.json")),
    *sorted(Path("/work/shared/reference/recipes").glob("*.json")),
]


def deep(levels: int) -> bytes:
    """A workspace body whose tags value nests `levels` levels deep in all."""
    return b'{"location": "eastus", "tags": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", WORKSPACE),
        ("application/json; charset=utf-8", WORKSPACE),  # what the Azure SDK (msrest) sends
        ("Application/JSON;Charset=UTF-8", WORKSPACE),
        ('application/json; charset="utf-8"', WORKSPACE),
        (None, WORKSPACE),  # curl -d without -H
        ("", WORKSPACE),
        ("application/json", b"\xef\xbb\xbf" + WORKSPACE),  # a UTF-8 byte order mark
        ("application/json", b'{"location": "eastus", "$schema": "https://x/job.json"}'),
        ("application/json", b'{"location": "eastus", "tags": {"a": "[[[[[[[[[[[[\\"]]"}}'),
    ],
)
async def test_accepted(content_type: str | None, body: bytes) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    async with client(small_app()) as http:
        response = await http.put("/things", content=body, headers=headers)
    assert response.status_code == 200, response.text
    expected = EASTUS
    if b"tags" in body:
        expected = {**EASTUS, "tags": {"a": '[[[[[[[[[[[["]]'}}
    assert response.json() == expected


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code", "target", "message"),
    [
        (
            "text/plain",
            WORKSPACE,
            415,
            "UnsupportedMediaType",
            "Content-Type",
            "the request body is sent as 'text/plain'; send JSON with "
            "'Content-Type: application/json'",
        ),
        (
            "application/x-www-form-urlencoded",  # curl -d's default
            WORKSPACE,
            415,
            "UnsupportedMediaType",
            "Content-Type",
            "the request body is sent as 'application/x-www-form-urlencoded'; send JSON with "
            "'Content-Type: application/json'",
        ),
        (
            "application/json; charset=latin-1",
            WORKSPACE,
            415,
            "UnsupportedMediaType",
            "Content-Type",
            "the request body is sent in charset 'latin-1'; send it as UTF-8 "
            "('Content-Type: application/json; charset=utf-8')",
        ),
        (
            "application/jsonx",
            WORKSPACE,
            415,
            "UnsupportedMediaType",
            "Content-Type",
            "the request body is sent as 'application/jsonx'; send JSON with "
            "'Content-Type: application/json'",
        ),
        (
            "application/json",
            b"\xff\xfe{}",
            400,
            "BadRequest",
            "body",
            "the request body is not UTF-8 (byte 0 is 0xff); send JSON encoded as UTF-8",
        ),
        (
            "application/json",
            '{"location": "eastus"}'.encode("utf-16"),
            400,
            "BadRequest",
            "body",
            "the request body is not UTF-8 (byte 0 is 0xff); send JSON encoded as UTF-8",
        ),
        (
            "application/json",
            b"[" * 100_000,
            400,
            "BadRequest",
            "body",
            "the request body nests arrays and objects 100000 levels deep; bai accepts at most "
            "8 and Batch AI bodies need 9 at most, so check how it is built",
        ),
        (
            "application/json",
            b'{"a":' * 50_000,
            400,
            "BadRequest",
            "body",
            "the request body nests arrays and objects 50000 levels deep; bai accepts at most "
            "8 and Batch AI bodies need 9 at most, so check how it is built",
        ),
        (
            "application/json",
            deep(9),
            400,
            "BadRequest",
            "body",
            "the request body nests arrays and objects 9 levels deep; bai accepts at most "
            "8 and Batch AI bodies need 9 at most, so check how it is built",
        ),
        (
            "application/json",
            b'{"location": ' + b"9" * 5000 + b"}",
            400,
            "BadRequest",
            "body",
            f"{NOT_ACCEPTED}a number has 5000 digits; at most 64",
        ),
        (
            "application/json",
            b'{"location": -' + b"9" * 65 + b"}",
            400,
            "BadRequest",
            "body",
            f"{NOT_ACCEPTED}a number has 65 digits; at most 64",
        ),
        (
            "application/json",
            b'{"location": 1e999}',
            400,
            "BadRequest",
            "body",
            f"{NOT_ACCEPTED}the number '1e999' is too large",
        ),
        (
            "application/json",
            b'{"location": NaN}',
            400,
            "BadRequest",
            "body",
            f"{NOT_ACCEPTED}NaN is not a JSON number; give a number or a string",
        ),
        (
            "application/json",
            b'{"location": -Infinity}',
            400,
            "BadRequest",
            "body",
            f"{NOT_ACCEPTED}-Infinity is not a JSON number; give a number or a string",
        ),
        (
            "application/json",
            b'{"location": "eastus", "location": "westus"}',
            400,
            "BadRequest",
            "body",
            f"{NOT_ACCEPTED}the key 'location' appears twice in one object; give it once",
        ),
        (
            "application/json",
            b'{"location": "eastus"',
            400,
            "BadRequest",
            "body",
            f"{NOT_JSON}Expecting ',' delimiter: line 1 column 22 (char 21)",
        ),
        (
            "application/json",
            b'{"location": "eastus',
            400,
            "BadRequest",
            "body",
            f"{NOT_JSON}Unterminated string starting at: line 1 column 14 (char 13)",
        ),
        (
            "application/json",
            b'{"location": "\\ud800"}',  # a lone surrogate, which json.loads lets through
            400,
            "BadRequest",
            "location",
            "The request is not valid: location: Input should be a valid string, unable to parse "
            "raw data as a unicode string",
        ),
        (
            "application/json",
            b"   ",
            400,
            "BadRequest",
            "body",
            "the request body must be a JSON object",
        ),
        (
            "text/plain",
            b"",  # no body: nothing to refuse as text
            400,
            "BadRequest",
            "body",
            "the request body must be a JSON object",
        ),
        (
            "application/json",
            b'["location"]',
            400,
            "BadRequest",
            "body",
            "the request body must be a JSON object",
        ),
        (
            "application/json",
            b'{"location": "\\u00e9ast", "tags": {"\\u0000": "\\n"}, "x": 1}',
            400,
            "BadRequest",
            "x",
            "The request is not valid: x: is not a field of this object; remove it or check "
            "its spelling",
        ),
    ],
)
async def test_refused(
    content_type: str, body: bytes, status: int, code: str, target: str, message: str
) -> None:
    async with client(small_app(ROOMY)) as http:
        response = await http.put("/things", content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    error = error_of(response)
    assert (error["code"], error.get("target"), error["message"]) == (code, target, message)


async def test_the_depth_limit_comes_from_the_settings() -> None:
    """LIMITS allows 8 levels: 8 pass, 9 do not (the default, 32, would take both)."""
    assert LIMITS.max_json_depth == 8
    async with client(small_app()) as http:
        ok = await http.put("/things", content=deep(8))
        refused = await http.put("/things", content=deep(9))
    assert ok.status_code == 400
    assert error_of(ok)["target"] == "tags"  # parsed, then refused by the model: a list
    assert refused.status_code == 400
    assert error_of(refused)["message"].startswith("the request body nests arrays and objects 9")


@pytest.mark.parametrize(
    ("text", "deepest"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 1),  # brackets in a string
        ('{"a": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\\"}', 1),  # escaped quotes
        ('["\\\\", [[]]]', 3),  # an escaped backslash ends the string before its quote
        ("[" * 32 + "]" * 32, 32),
        ("[" * 33 + "]" * 33, 33),
        ("[[]]" * 1000, 2),  # depth, not count
        ('"unterminated [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[', 0),
    ],
)
def test_check_depth(text: str, deepest: int) -> None:
    check_depth(text, deepest)  # exactly the limit passes
    if deepest:
        with pytest.raises(InvalidRequest) as info:
            check_depth(text, deepest - 1)
        assert info.value.message.startswith(
            f"the request body nests arrays and objects {deepest} levels deep; bai accepts at "
            f"most {deepest - 1}"
        )
        assert info.value.target == "body"


async def test_what_the_bai_cli_sends_is_accepted() -> None:
    """The CLI's own client builds the request (httpx `json=`), the small app takes it."""
    cli = Client(url="http://bai", token="t")
    sent = cli.http.build_request("PUT", "/things", json={"location": "eastus", "tags": {"é": "✓"}})
    cli.http.close()
    async with client(small_app()) as http:
        response = await http.put("/things", content=sent.content, headers=dict(sent.headers))
    assert response.status_code == 200, response.text
    assert response.json() == {"location": "eastus", "tags": {"é": "✓"}}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_public_recipes_fit_the_limits(recipe: Path) -> None:
    """The Batch AI recipes pass parse_body's checks and the model's bounds, with the default
    depth, as the job.json files they are."""
    data: Any = load_json(recipe.read_bytes(), "application/json", 32)
    data.pop("$schema")
    data["properties"]["cluster"] = {"id": "/subscriptions/s/resourceGroups/rg/x/clusters/c"}
    job = JobCreateParameters.model_validate(data)
    assert job.properties.node_count >= 1
    assert json.loads(recipe.read_text())["properties"]["nodeCount"] == job.properties.node_count
