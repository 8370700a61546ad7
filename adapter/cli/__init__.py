"""The `bai` command line: `az batchai` verbs against the bai service, plus operator commands.

The typer app is adapter.cli.commands, loaded on first use of `app` or `main`: importing the
package, as the console script adapter.cli.entry does, loads neither typer nor rich nor httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapter.cli.commands import app, main

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from adapter.cli import commands

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
