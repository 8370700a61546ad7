"""Output as a rich table (default) or JSON (`-o json`, for scripts)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


class Format(StrEnum):
    table = "table"
    json = "json"


Column = tuple[str, Callable[[dict[str, Any]], Any]]


def emit(
    data: dict[str, Any] | Sequence[dict[str, Any]], columns: Sequence[Column], fmt: Format
) -> None:
    if fmt == Format.json:
        print(json.dumps(data, indent=2))
        return
    rows = [data] if isinstance(data, dict) else list(data)
    table = Table(*[title for title, _ in columns])
    for row in rows:
        table.add_row(*["" if (v := get(row)) is None else str(v) for _, get in columns])
    console.print(table)


def prop(*path: str) -> Callable[[dict[str, Any]], Any]:
    """A getter for a nested key (`prop("properties", "vmSize")`)."""

    def get(item: dict[str, Any]) -> Any:
        value: Any = item
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    return get
