"""Offset bookkeeping of `bai job file stream`."""

from __future__ import annotations

import pytest

from adapter.cli.job_files import advance


@pytest.mark.parametrize(
    ("offset", "status", "body", "expected"),
    [
        (0, 206, b"hello", (5, b"hello")),
        (5, 206, b" world", (11, b" world")),
        (5, 416, b"", (5, b"")),
        (0, 416, b"", (0, b"")),  # an empty file
        (5, 200, b"hello world", (11, b" world")),  # the server ignored Range
        (0, 200, b"", (0, b"")),
        (11, 200, b"hello", (11, b"")),  # shorter than what was printed: nothing new
    ],
)
def test_advance(offset: int, status: int, body: bytes, expected: tuple[int, bytes]) -> None:
    assert advance(offset, status, body) == expected
