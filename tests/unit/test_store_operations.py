"""Long-running operations in the store: found by target and kind without reading them all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapter.store import Operation, Store


def op(n: int, kind: str, target: str, status: str = "InProgress") -> Operation:
    t = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    return Operation(f"op{n}", kind, target, status, None, t, t)


def test_operations_in_progress_by_target_and_kind(tmp_path: Path) -> None:
    store = Store(tmp_path / "bai.db")
    for o in (
        op(1, "delete-job", "a"),
        op(2, "terminate-job", "a"),
        op(3, "delete-job", "b"),
        op(4, "delete-job", "a", status="Succeeded"),
    ):
        store.put_operation(o)

    assert [o.id for o in store.operations_in_progress()] == ["op1", "op2", "op3"]
    assert [o.id for o in store.operations_in_progress(target="a")] == ["op1", "op2"]
    assert [o.id for o in store.operations_in_progress(kind="delete-job")] == ["op1", "op3"]
    assert store.operations_in_progress(target="a", kind="terminate-job") == [
        op(2, "terminate-job", "a")
    ]

    store.succeed_operations("a")

    assert [o.id for o in store.operations_in_progress()] == ["op3"]
    done = store.operation("op1")
    assert done is not None and done.status == "Succeeded" and done.updated > done.created
    plan = " ".join(
        str(row[-1])
        for row in store._db.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM operations "
            "WHERE status = 'InProgress' AND target = ?",
            ("a",),
        )
    )
    assert "operations_in_progress" in plan  # the partial index, not a scan of every operation
