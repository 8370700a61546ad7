"""Slurm hostlist expressions (`gpu-a100-[1-3,5],gpu-t4-1`) expanded into node names."""

from __future__ import annotations

import itertools
import re

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def expand_hostlist(expr: str) -> list[str]:
    """Expand a hostlist expression into node names, in order, without duplicates."""
    names: list[str] = []
    for part in _split_top_level(expr.strip()):
        for name in _expand_one(part):
            if name not in names:
                names.append(name)
    return names


def _split_top_level(expr: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in expr:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in hostlist {expr!r}")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise ValueError(f"unbalanced '[' in hostlist {expr!r}")
    parts.append("".join(current))
    return [p for p in parts if p]


def _expand_one(part: str) -> list[str]:
    # Pieces alternate literal text and bracket contents: "a[1-2]b[3]" -> a, 1-2, b, 3.
    pieces = re.split(r"\[([^\]]*)\]", part)
    choices: list[list[str]] = []
    for i, piece in enumerate(pieces):
        choices.append(_expand_ranges(piece, part) if i % 2 else [piece])
    return ["".join(combo) for combo in itertools.product(*choices)]


def _expand_ranges(body: str, part: str) -> list[str]:
    out: list[str] = []
    for item in body.split(","):
        m = _RANGE.match(item.strip())
        if not m:
            raise ValueError(f"bad range {item!r} in hostlist {part!r}")
        lo, hi = m.group(1), m.group(2) or m.group(1)
        width = len(lo)
        out.extend(str(n).zfill(width) for n in range(int(lo), int(hi) + 1))
    return out
