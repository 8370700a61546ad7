"""The adapter-owned partition include file."""

from __future__ import annotations

from typing import Any

import pytest

from adapter.backends.base import PartitionSpec
from adapter.backends.partition_conf import (
    HEADER,
    drop_partition,
    partition_line,
    partition_names,
    partition_words,
    upsert_partition,
)

LOW = PartitionSpec(
    name="c1-low",
    nodes=("gpu-a100-1", "gpu-a100-2"),
    priority_tier=1,
    preempt_mode="REQUEUE",
    grace_time_seconds=30,
    max_time_minutes=1440,
)


def test_line_has_every_setting() -> None:
    assert partition_line(LOW) == (
        "PartitionName=c1-low Nodes=gpu-a100-1,gpu-a100-2 Default=NO PriorityTier=1 "
        "PreemptMode=REQUEUE GraceTime=30 MaxTime=1440 DefaultTime=1440 OverSubscribe=EXCLUSIVE "
        "AllowGroups=ALL State=UP"
    )
    assert "MaxTime=UNLIMITED DefaultTime=UNLIMITED" in partition_line(PartitionSpec(name="d"))


def test_empty_partition_has_no_nodes_word_in_the_file_but_empties_it_live() -> None:
    # `Nodes= Default=NO` in slurm.conf makes slurmctld read Default=NO as a node and exit.
    assert "Nodes" not in partition_line(PartitionSpec(name="e"))
    assert "Nodes=" in partition_words(PartitionSpec(name="e"), live=True)


def test_upsert_replace_and_drop_keep_header_and_other_lines() -> None:
    text = HEADER + "NodeSet=extra Feature=x\n"
    text = upsert_partition(text, LOW)
    text = upsert_partition(text, PartitionSpec(name="a-ded", nodes=("gpu-t4-1",)))
    text = upsert_partition(text, PartitionSpec(name="c1-low", nodes=("gpu-a100-3",)))
    assert text.startswith(HEADER)
    assert text.count("c1-low") == 1 and "Nodes=gpu-a100-3 " in text
    assert partition_names(text) == ["a-ded", "c1-low"]
    assert "NodeSet=extra Feature=x\n" in text
    assert text.index("a-ded") < text.index("c1-low")
    text = drop_partition(text, "c1-low")
    assert partition_names(text) == ["a-ded"] and text.startswith(HEADER)
    assert drop_partition(text, "missing") == text
    assert upsert_partition("", LOW).startswith(HEADER)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "bad name"},
        {"name": "x\nPartitionName=evil"},
        {"name": "ok", "nodes": ("n1 Default=YES",)},
        {"name": "ok", "allow_groups": ("g;rm",)},
        {"name": "ok", "preempt_mode": "SUSPEND"},
        {"name": "ok", "state": "UP\n"},
        {"name": "ok", "max_time_minutes": 0},
        {"name": "ok", "grace_time_seconds": -1},
        {"name": ""},
    ],
)
def test_invalid_specs_never_reach_the_file(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid partition spec"):
        PartitionSpec(**kwargs)
