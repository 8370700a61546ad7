"""Hostlist expansion."""

from __future__ import annotations

import pytest

from adapter.backends.hostlist import expand_hostlist


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("gpu-t4-1", ["gpu-t4-1"]),
        ("gpu-a100-[1-3]", ["gpu-a100-1", "gpu-a100-2", "gpu-a100-3"]),
        ("gpu-a100-[1-2],gpu-t4-[1-2]", ["gpu-a100-1", "gpu-a100-2", "gpu-t4-1", "gpu-t4-2"]),
        ("n[01-02,10]", ["n01", "n02", "n10"]),
        ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
        ("a,a,b", ["a", "b"]),
        ("", []),
    ],
)
def test_expand(expr: str, names: list[str]) -> None:
    assert expand_hostlist(expr) == names


@pytest.mark.parametrize("expr", ["n[1-2", "n1-2]", "n[a-b]", "n[1-]"])
def test_bad_expressions_raise(expr: str) -> None:
    with pytest.raises(ValueError, match="hostlist"):
        expand_hostlist(expr)
