"""The store's narrow reads and writes: operations in progress found by target and kind
without reading them all, a submitted job's Slurm id written without the rest of the job, and
a job's secrets cleared for good. Its schema version (migrated forward, a newer one refused),
backups through SQLite's backup API and restores."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapter.errors import StoreError
from adapter.records import Operation, OperationKind, OperationStatus, Workspace
from adapter.store import SCHEMA_VERSION, Store, backup, restore
from tests.unit.jobs.factories import stored_job


def op(
    n: int, kind: OperationKind, target: str, status: OperationStatus = "InProgress"
) -> Operation:
    t = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    return Operation(f"op{n}", kind, target, status, None, t, t, "alice")


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


def test_begin_operation_returns_the_one_in_progress_or_a_new_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "bai.db")

    first, new = store.begin_operation("delete-job", "a", "alice")
    again, again_new = store.begin_operation("delete-job", "a", "alice")
    other, other_new = store.begin_operation("terminate-job", "a", "alice")
    # Another user deleting the same (shared) thing gets an operation of their own to poll.
    bobs, bobs_new = store.begin_operation("delete-job", "a", "bob")

    assert (new, again_new, other_new, bobs_new) == (True, False, True, True)
    assert again == first and other.id != first.id and bobs.id != first.id
    assert (first.owner, bobs.owner) == ("alice", "bob")
    assert store.operation(first.id) == first and first.status == "InProgress"
    store.succeed_operations("a")
    done = store.operation(bobs.id)
    assert done is not None and done.status == "Succeeded"
    after, after_new = store.begin_operation("delete-job", "a", "alice")
    assert after_new and after.id != first.id


def test_a_version_1_store_gains_owners_and_token_columns(tmp_path: Path) -> None:
    path = tmp_path / "bai.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE workspaces (
            sub TEXT NOT NULL, rg TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,
            location TEXT NOT NULL, tags TEXT NOT NULL, created TEXT NOT NULL,
            state TEXT NOT NULL, state_changed TEXT NOT NULL, PRIMARY KEY (sub, rg, name));
        CREATE TABLE experiments (
            sub TEXT NOT NULL, rg TEXT NOT NULL COLLATE NOCASE, ws TEXT NOT NULL COLLATE NOCASE,
            name TEXT NOT NULL COLLATE NOCASE, created TEXT NOT NULL, state TEXT NOT NULL,
            state_changed TEXT NOT NULL, PRIMARY KEY (sub, rg, ws, name));
        CREATE TABLE operations (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL,
            status TEXT NOT NULL, error TEXT, created TEXT NOT NULL, updated TEXT NOT NULL);
        CREATE TABLE tokens (
            hash TEXT PRIMARY KEY, unix_user TEXT NOT NULL, admin INTEGER NOT NULL,
            label TEXT NOT NULL, created TEXT NOT NULL);
        INSERT INTO workspaces VALUES ('s', 'rg', 'w', 'eastus', '{}',
            '2026-01-01T00:00:00+00:00', 'succeeded', '2026-01-01T00:00:00+00:00');
        INSERT INTO operations VALUES ('op1', 'delete-job', 'a', 'InProgress', NULL,
            '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00');
        PRAGMA user_version=1;
        """
    )
    old.close()

    store = Store(path)

    ws = store.workspace("s", "rg", "w")
    assert ws is not None and ws.owner == "root"  # only admins see what predates owners
    o = store.operation("op1")
    assert o is not None and o.owner == "root"
    assert store._db.execute("PRAGMA user_version").fetchone()[0] == 2
    store.close()
    assert Store(path).workspace("s", "rg", "w") is not None  # reopening migrates nothing twice


def test_set_slurm_id_writes_only_the_id_and_reports_a_terminate(tmp_path: Path) -> None:
    store = Store(tmp_path / "bai.db")
    job = stored_job("u1")
    store.put_job(job)

    assert store.set_slurm_id("u1", 41) is False
    # A terminate recorded while the submission was in flight is kept and reported.
    stored = store.job_by_uid("u1")
    assert stored is not None and stored.slurm_id == 41
    stored.terminate, stored.execution_state = True, "failed"
    store.put_job(stored)

    assert store.set_slurm_id("u1", 42) is True
    final = store.job_by_uid("u1")
    assert final is not None
    assert (final.slurm_id, final.terminate, final.execution_state) == (42, True, "failed")
    assert store.set_slurm_id("gone", 43) is False


def test_clear_job_secrets_drops_them_for_good(tmp_path: Path) -> None:
    store = Store(tmp_path / "bai.db")
    job = stored_job("u1", secrets={"TOKEN": "s3cret"})
    store.put_job(job)
    store.put_job(stored_job("u2", name="job2", secrets={"OTHER": "kept"}))

    store.clear_job_secrets("u1")

    cleared = store.job_by_uid("u1")
    assert cleared is not None and cleared.secrets == {}
    # A copy read before the clear, written back with a new state, does not bring them back.
    job.execution_state = "running"
    store.put_job(job)
    again = store.job_by_uid("u1")
    assert again is not None and again.secrets == {} and again.execution_state == "running"
    raw = store._db.execute("SELECT secrets FROM jobs WHERE uid = 'u1'").fetchone()[0]
    assert raw == "{}"
    other = store.job_by_uid("u2")
    assert other is not None and other.secrets == {"OTHER": "kept"}
    store.clear_job_secrets("gone")  # no such job: nothing happens


def test_jobs_are_read_one_page_at_a_time_in_a_stable_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "bai.db")
    t = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(5):
        store.put_job(stored_job(f"u{n}", name=f"j{n}", created=t + timedelta(seconds=n % 2)))

    everything = [j.name for j in store.jobs("s", "rg", "ws", "exp")]
    pages = [
        [j.name for j in store.jobs("s", "rg", "ws", "exp", limit=2, offset=o)] for o in (0, 2, 4)
    ]

    assert everything == ["j0", "j2", "j4", "j1", "j3"]  # by creation, ties by uid
    assert pages == [["j0", "j2"], ["j4", "j1"], ["j3"]]


def workspace(name: str, at: datetime) -> Workspace:
    return Workspace("s", "rg", name, "eastus", {}, at, "succeeded", at, "alice")


def test_a_store_newer_than_this_bai_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "bai.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()

    with pytest.raises(StoreError) as err:
        Store(path)

    assert f"schema version {SCHEMA_VERSION + 1}, newer than this bai's {SCHEMA_VERSION}" in str(
        err.value
    )
    assert "bai admin restore" in str(err.value)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_a_backup_is_one_consistent_snapshot_taken_while_the_store_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bai.db"
    store = Store(path)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    stop = threading.Event()

    def write() -> None:  # the service, writing while the backup runs
        n = 0
        while not stop.is_set() and n < 5000:
            store.put_workspace(workspace(f"w{n}", at))
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    while len(store.workspaces("s")) < 50:
        time.sleep(0.01)
    version = backup(path, tmp_path / "copy.db")
    stop.set()
    writer.join()

    copy = tmp_path / "copy.db"
    assert version == SCHEMA_VERSION
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    # One self-contained file (no -wal or -shm beside it), and no partial file left.
    assert sorted(os.listdir(tmp_path)) == ["bai.db", "bai.db-shm", "bai.db-wal", "copy.db"]
    opened = Store(copy)
    names = [w.name for w in opened.workspaces("s")]
    opened.close()
    # A prefix of what was written, each row whole: one snapshot.
    assert 50 <= len(names) <= len(store.workspaces("s"))
    assert sorted(names, key=lambda n: int(n[1:])) == [f"w{i}" for i in range(len(names))]


def test_a_backup_never_replaces_a_file_and_needs_a_store(tmp_path: Path) -> None:
    path = tmp_path / "bai.db"
    Store(path).close()
    taken = tmp_path / "taken.db"
    taken.write_text("keep me")

    with pytest.raises(StoreError, match="taken.db exists: name a new file"):
        backup(path, taken)
    with pytest.raises(StoreError, match="no store at"):
        backup(tmp_path / "missing.db", tmp_path / "new.db")

    assert taken.read_text() == "keep me"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".partial")]


def test_restore_brings_the_backup_back_and_refuses_what_is_not_a_bai_store(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bai.db"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    store = Store(path)
    store.put_workspace(workspace("kept", at))
    backup(path, tmp_path / "b.db")
    store.put_workspace(workspace("after", at))
    store.close()

    assert restore(tmp_path / "b.db", path) == SCHEMA_VERSION
    assert [w.name for w in Store(path).workspaces("s")] == ["kept"]

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\0not sqlite" * 100)
    with pytest.raises(StoreError, match="garbage.db is not a bai store"):
        restore(garbage, path)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="other.db is not a bai store"):
        restore(other, path)
    newer = tmp_path / "newer.db"
    backup(path, newer)
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this bai's"):
        restore(newer, path)
    with pytest.raises(StoreError, match="no backup file"):
        restore(tmp_path / "missing.db", path)
    assert [w.name for w in Store(path).workspaces("s")] == ["kept"]
