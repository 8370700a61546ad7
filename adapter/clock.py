"""The clock the services read the time from: injected, so a test sets the time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def now() -> datetime:
    """The real clock (UTC)."""
    return datetime.now(UTC)
