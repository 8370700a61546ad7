"""The adapter-owned partition include file, and partition specs as slurm.conf words.

A bad line in this file makes every Slurm command fail and can stop slurmctld, so lines are
only ever rendered from a validated `PartitionSpec`, and no value is ever empty: on 22.05
`Nodes= Default=NO` reads `Default=NO` as a node name and slurmctld exits.
"""

from __future__ import annotations

from adapter.backends.base import PartitionSpec

HEADER = (
    "# Partitions of bai clusters. Owned by the bai adapter: it rewrites this file, then applies\n"
    "# each change live with scontrol. Do not edit by hand.\n"
)


def partition_words(spec: PartitionSpec, *, live: bool = False) -> list[str]:
    """The `Key=Value` words of a partition, for slurm.conf (or, with `live`, for scontrol).

    Every setting is always written, so an update also resets what an earlier spec set.
    """
    max_time = "UNLIMITED" if spec.max_time_minutes is None else str(spec.max_time_minutes)
    # DefaultTime cannot be unset (NONE is refused); defaulting to MaxTime means the same.
    default_time = (
        str(spec.default_time_minutes) if spec.default_time_minutes is not None else max_time
    )
    words = [f"PartitionName={spec.name}"]
    if spec.nodes or live:
        # Live, an empty `Nodes=` argument empties the partition; in the file it must be absent.
        words.append(f"Nodes={','.join(spec.nodes)}")
    words += [
        "Default=NO",
        f"PriorityTier={spec.priority_tier}",
        f"PreemptMode={spec.preempt_mode}",
        f"GraceTime={spec.grace_time_seconds}",
        f"MaxTime={max_time}",
        f"DefaultTime={default_time}",
        f"OverSubscribe={'EXCLUSIVE' if spec.exclusive else 'NO'}",
        f"AllowGroups={','.join(spec.allow_groups) if spec.allow_groups else 'ALL'}",
        f"State={spec.state}",
    ]
    return words


def partition_line(spec: PartitionSpec) -> str:
    """One slurm.conf line for the partition."""
    return " ".join(partition_words(spec))


def upsert_partition(text: str, spec: PartitionSpec) -> str:
    """The include file with the partition's line added or replaced; other lines kept."""
    lines = _partition_lines(text)
    lines[spec.name] = partition_line(spec)
    return _render(text, lines)


def drop_partition(text: str, name: str) -> str:
    """The include file without the named partition."""
    lines = _partition_lines(text)
    lines.pop(name, None)
    return _render(text, lines)


def partition_names(text: str) -> list[str]:
    """Names of the partitions in an include file."""
    return sorted(_partition_lines(text))


def _partition_name(line: str) -> str | None:
    first = line.split(maxsplit=1)[0] if line.strip() else ""
    key, _, value = first.partition("=")
    return value if key.lower() == "partitionname" and value else None


def _partition_lines(text: str) -> dict[str, str]:
    lines = {}
    for line in text.splitlines():
        name = _partition_name(line)
        if name:
            lines[name] = line.strip()
    return lines


def _render(text: str, partitions: dict[str, str]) -> str:
    # Keep whatever else is there (an operator's NodeSet line, comments), header first.
    others = [
        line
        for line in text.splitlines()
        if line.strip() and not _partition_name(line) and f"{line}\n" not in HEADER
    ]
    body = others + [partitions[name] for name in sorted(partitions)]
    return HEADER + "".join(f"{line}\n" for line in body)
