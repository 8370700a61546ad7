"""Request bodies parsed by hand, so every problem becomes a 4xx that names the field."""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from adapter.api.errors import validation_error
from adapter.api.limits import limits_of
from adapter.errors import InvalidRequest, RequestError

M = TypeVar("M", bound=BaseModel)

JSON = "application/json"
# No field of a Batch AI body holds a number this long; Python would refuse past 4300 digits.
MAX_DIGITS = 64
# A JSON string, escapes included (an unterminated one runs to the end); what is not a bracket.
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class UnsupportedMediaType(RequestError):
    """The request body is not sent as JSON (415)."""

    status = 415
    code = "UnsupportedMediaType"


class _Refused(ValueError):
    """A JSON value bai refuses although json.loads would take it."""


async def parse_body(request: Request, model: type[M]) -> M:
    """The body as `model`: JSON (415 for another content type), nested at most
    `api.max_json_depth` deep, then validated; every problem is a 4xx naming the field."""
    raw = await request.body()
    depth = limits_of(request.scope).max_json_depth
    data = load_json(raw, request.headers.get("content-type"), depth)
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object", target="body")
    data.pop("$schema", None)  # recipe files carry it
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


def load_json(raw: bytes, content_type: str | None, max_depth: int) -> Any:
    """The JSON value of a body (None when it is empty), or the 4xx that says what is wrong."""
    if not raw.strip():
        return None
    check_content_type(content_type)
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")  # a BOM may be ignored (RFC 8259)
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"the request body is not UTF-8 (byte {exc.start} is {raw[exc.start]:#04x}); "
            "send JSON encoded as UTF-8",
            target="body",
        ) from None
    check_depth(text, max_depth)
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
        )
    except _Refused as exc:
        raise InvalidRequest(f"the request body is not accepted: {exc}", target="body") from None
    except ValueError as exc:  # JSONDecodeError among them
        raise InvalidRequest(f"the request body is not valid JSON: {exc}", target="body") from None


def check_content_type(value: str | None) -> None:
    """Refuse a body that is not `application/json` (parameters such as charset=utf-8 are
    fine); no Content-Type at all is taken as JSON."""
    if not value or not value.strip():
        return
    media, _, parameters = value.partition(";")
    media = media.strip().lower()
    if media != JSON:
        raise UnsupportedMediaType(
            f"the request body is sent as {_shown(media)}; send JSON with 'Content-Type: {JSON}'",
            target="Content-Type",
        )
    for parameter in parameters.split(";"):
        key, _, charset = parameter.partition("=")
        charset = charset.strip().strip('"').lower()
        if key.strip().lower() == "charset" and charset not in {"utf-8", "utf8"}:
            raise UnsupportedMediaType(
                f"the request body is sent in charset {_shown(charset)}; send it as UTF-8 "
                f"('Content-Type: {JSON}; charset=utf-8')",
                target="Content-Type",
            )


def check_depth(text: str, limit: int) -> None:
    """Refuse arrays and objects nested deeper than `limit`, found without recursion (strings
    removed, then the running count of brackets), before json.loads could recurse into them."""
    brackets = _NOT_BRACKETS.sub("", _STRINGS.sub("", text))
    deepest = max(accumulate(map(_STEP.__getitem__, brackets)), default=0)
    if deepest > limit:
        raise InvalidRequest(
            f"the request body nests arrays and objects {deepest} levels deep; bai accepts at "
            f"most {limit} and Batch AI bodies need 9 at most, so check how it is built",
            target="body",
        )


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:  # json.loads would keep the last silently; other parsers the first
            raise _Refused(f"the key {_shown(key)} appears twice in one object; give it once")
        obj[key] = value
    return obj


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _Refused(f"a number has {len(text.lstrip('-'))} digits; at most {MAX_DIGITS}")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {_shown(text)} is too large")
    return value


def _constant(text: str) -> Any:
    raise _Refused(f"{text} is not a JSON number; give a number or a string")


def _shown(value: str) -> str:
    """A value quoted for a message, cut to 64 characters."""
    return repr(value[:64] + "…") if len(value) > 64 else repr(value)
