"""`bai usage`: nodes and GPU quotas per node type (`az batchai list-usages`)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from adapter.cli.client import DEFAULT_SUBSCRIPTION, Client
from adapter.cli.common import Output
from adapter.cli.output import Format, emit, prop

COLUMNS = [
    ("Name", prop("name", "localizedValue")),
    ("Current", prop("currentValue")),
    ("Limit", prop("limit")),
]


def usage(
    location: Annotated[
        str, typer.Option("-l", "--location", help="Location (any name; bai has one).")
    ] = "onprem",
    output: Output = Format.table,
) -> None:
    """Your GPU use and limits per node type (an admin sees the site's), and the nodes."""
    sub = os.environ.get("BAI_SUBSCRIPTION", DEFAULT_SUBSCRIPTION)
    path = f"/subscriptions/{sub}/providers/Microsoft.BatchAI/locations/{location}/usages"
    emit(list(Client().pages(path)), COLUMNS, output)
