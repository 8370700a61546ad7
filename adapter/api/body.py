"""Request bodies parsed by hand, so every problem becomes a 400 that names the field."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from adapter.api.errors import validation_error
from adapter.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        data: Any = json.loads(raw) if raw.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}", target="body") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object", target="body")
    data.pop("$schema", None)  # recipe files carry it
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None
