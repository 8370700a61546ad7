"""The store: SQLite in WAL mode, plain SQL so PostgreSQL can back it later (DESIGN.md 3).

Persists the records of `adapter.records` (the desired state: workspaces, experiments, clusters
and their nodes, jobs; long-running operations; API tokens) and the outcome counters of
/metrics. Reads for the API come from here, never from Slurm.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapter.clock import Clock, now
from adapter.errors import StoreError
from adapter.records import (
    Cluster,
    ClusterNode,
    Experiment,
    Job,
    JobInfo,
    Operation,
    OperationKind,
    TokenRecord,
    Workspace,
)

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY, unix_user TEXT NOT NULL, admin INTEGER NOT NULL, label TEXT NOT NULL,
    created TEXT NOT NULL, expires TEXT, last_used TEXT);
CREATE TABLE IF NOT EXISTS workspaces (
    sub TEXT NOT NULL, rg TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,
    location TEXT NOT NULL, tags TEXT NOT NULL, created TEXT NOT NULL, state TEXT NOT NULL,
    state_changed TEXT NOT NULL, owner TEXT NOT NULL, PRIMARY KEY (sub, rg, name));
CREATE TABLE IF NOT EXISTS experiments (
    sub TEXT NOT NULL, rg TEXT NOT NULL COLLATE NOCASE, ws TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, created TEXT NOT NULL, state TEXT NOT NULL,
    state_changed TEXT NOT NULL, owner TEXT NOT NULL, PRIMARY KEY (sub, rg, ws, name));
CREATE TABLE IF NOT EXISTS clusters (
    uid TEXT PRIMARY KEY, sub TEXT NOT NULL, rg TEXT NOT NULL COLLATE NOCASE,
    ws TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,
    partition TEXT NOT NULL UNIQUE, node_type TEXT NOT NULL, priority TEXT NOT NULL,
    properties TEXT NOT NULL, secrets TEXT NOT NULL, owner TEXT NOT NULL, created TEXT NOT NULL,
    provisioning_state TEXT NOT NULL, provisioning_changed TEXT NOT NULL,
    allocation_state TEXT NOT NULL, allocation_changed TEXT NOT NULL, errors TEXT NOT NULL,
    UNIQUE (sub, rg, ws, name));
CREATE TABLE IF NOT EXISTS cluster_nodes (
    cluster_uid TEXT NOT NULL REFERENCES clusters(uid) ON DELETE CASCADE, node TEXT NOT NULL,
    state TEXT NOT NULL, setup_job INTEGER, since TEXT NOT NULL, idle_since TEXT,
    PRIMARY KEY (cluster_uid, node));
CREATE TABLE IF NOT EXISTS jobs (
    uid TEXT PRIMARY KEY, sub TEXT NOT NULL, rg TEXT NOT NULL COLLATE NOCASE,
    ws TEXT NOT NULL COLLATE NOCASE, exp TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, cluster_uid TEXT NOT NULL, owner TEXT NOT NULL,
    properties TEXT NOT NULL, secrets TEXT NOT NULL, script TEXT NOT NULL, info TEXT NOT NULL,
    created TEXT NOT NULL, provisioning_state TEXT NOT NULL, provisioning_changed TEXT NOT NULL,
    execution_state TEXT NOT NULL, execution_changed TEXT NOT NULL, slurm_id INTEGER,
    terminate INTEGER NOT NULL, start_time TEXT, end_time TEXT, exit_code INTEGER,
    errors TEXT NOT NULL, restarts INTEGER NOT NULL, nodes TEXT NOT NULL,
    UNIQUE (sub, rg, ws, exp, name));
CREATE INDEX IF NOT EXISTS jobs_active ON jobs (execution_state);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT NOT NULL, labels TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (name, labels));
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL,
    error TEXT, created TEXT NOT NULL, updated TEXT NOT NULL, owner TEXT NOT NULL);
-- Finished operations stay (their status is still asked for); those in progress are few.
CREATE INDEX IF NOT EXISTS operations_in_progress ON operations (target)
    WHERE status = 'InProgress';
"""

# What a store of an earlier version gains; columns are appended, so positional INSERTs keep
# matching. Rows made before owners existed become root's: only admins see them.
MIGRATIONS = {
    2: [
        "ALTER TABLE tokens ADD COLUMN expires TEXT",
        "ALTER TABLE tokens ADD COLUMN last_used TEXT",
        "ALTER TABLE workspaces ADD COLUMN owner TEXT NOT NULL DEFAULT 'root'",
        "ALTER TABLE experiments ADD COLUMN owner TEXT NOT NULL DEFAULT 'root'",
        "ALTER TABLE operations ADD COLUMN owner TEXT NOT NULL DEFAULT 'root'",
    ],
}


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _statements(script: str) -> list[str]:
    """A script's statements, to run inside a transaction (executescript commits first)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s for s in "\n".join(lines).split(";") if s.strip()]


def too_new(path: Path, version: int) -> str:
    return (
        f"the store {path} is at schema version {version}, newer than this bai's "
        f"{SCHEMA_VERSION}: a later bai release wrote it. Run that release (or a later one), or "
        "restore a backup this release made (bai admin restore)"
    )


def backup(source: Path, target: Path) -> int:
    """A consistent copy of the store at `source` in the new file `target` (mode 0600), made
    through SQLite's online backup API while the service may be writing; returns its schema
    version. The copy is checked (PRAGMA integrity_check) before it takes its name."""
    if not source.exists():
        raise StoreError(f"no store at {source}: is state_dir right in the settings?")
    exists = f"{target} exists: name a new file (a backup never replaces one)"
    if target.exists():
        raise StoreError(exists)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with (
            closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as reader,
            closing(sqlite3.connect(partial)) as copy,
        ):
            reader.execute("PRAGMA busy_timeout=5000")
            reader.backup(copy)  # every page in one step: one snapshot of the store
            version = _checked(copy, target)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        os.link(partial, target)  # fails rather than replace a file made meanwhile
    except FileExistsError:
        raise StoreError(exists) from None
    finally:
        partial.unlink(missing_ok=True)
    return version


def restore(source: Path, target: Path) -> int:
    """Make the store at `target` (the service stopped) the backup `source`, through SQLite's
    backup API; returns the backup's schema version (older ones migrate when bai starts)."""
    if not source.is_file():
        raise StoreError(f"no backup file at {source}")
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        version = _checked(reader, source)
        if version > SCHEMA_VERSION:
            raise StoreError(too_new(source, version))
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not target.exists():
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        store = sqlite3.connect(target)
        try:
            reader.backup(store)
        finally:
            store.close()
    finally:
        reader.close()
    return version


def _checked(db: sqlite3.Connection, name: Path) -> int:
    """The schema version of a store that passes SQLite's integrity check and has bai's tables."""
    try:
        verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{name} is not a bai store ({exc})") from None
    if verdict != "ok":
        raise StoreError(f"{name} fails SQLite's integrity check: {verdict}")
    if not {"tokens", "workspaces", "jobs"} <= tables:
        raise StoreError(f"{name} is not a bai store (its tables: {', '.join(sorted(tables))})")
    return version


class Store:
    """Access to the SQLite store. One connection, used from the event loop thread."""

    def __init__(self, path: Path, clock: Clock = now) -> None:
        self.clock = clock  # the time operations begin and succeed
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        new = not path.exists()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if new:
            os.chmod(path, 0o600)  # tokens and secrets live here
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives bai crashing; only a power loss can drop the last ones.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self._db.close()
            raise StoreError(too_new(path, version))
        self._migrate(version)
        self.path = path

    def close(self) -> None:
        self._db.close()

    def _migrate(self, version: int) -> None:
        """Bring the store forward to SCHEMA_VERSION in one transaction (a new store: SCHEMA
        makes every table as it is now; it also adds what an older one lacks); the version is
        recorded in the same transaction."""
        with self.transaction() as db:
            if version:
                for step in sorted(v for v in MIGRATIONS if v > version):
                    for sql in MIGRATIONS[step]:
                        db.execute(sql)
            for statement in _statements(SCHEMA):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
            return row

    def _run(self, sql: str, *args: Any) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    def quick_check(self) -> str:
        """SQLite's quick integrity check: `ok`, or what is wrong."""
        row = self._one("PRAGMA quick_check")
        return str(row[0]) if row else "no answer"

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    # -- tokens --------------------------------------------------------------------------------

    def add_token(
        self,
        token_hash: str,
        user: str,
        admin: bool,
        label: str,
        *,
        created: datetime,
        expires: datetime | None,
    ) -> None:
        self._run(
            "INSERT INTO tokens (hash, unix_user, admin, label, created, expires, last_used) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL)",
            token_hash,
            user,
            int(admin),
            label,
            _ts(created),
            _ts(expires) if expires else None,
        )

    def token(self, token_hash: str) -> TokenRecord | None:
        row = self._one("SELECT * FROM tokens WHERE hash = ?", token_hash)
        return self._token_record(row) if row else None

    def tokens(self) -> list[TokenRecord]:
        """Every token, oldest first."""
        return [self._token_record(r) for r in self._all("SELECT * FROM tokens ORDER BY created")]

    def touch_token(self, token_hash: str, at: datetime) -> None:
        self._run("UPDATE tokens SET last_used = ? WHERE hash = ?", _ts(at), token_hash)

    def delete_tokens(self, hashes: list[str]) -> int:
        """Revoke: the rows go, so the very next request with one of them fails."""
        with self.transaction() as db:
            return sum(
                db.execute("DELETE FROM tokens WHERE hash = ?", (h,)).rowcount for h in hashes
            )

    @staticmethod
    def _token_record(row: sqlite3.Row) -> TokenRecord:
        created = _dt(row["created"])
        assert created is not None
        return TokenRecord(
            hash=row["hash"],
            user=row["unix_user"],
            admin=bool(row["admin"]),
            label=row["label"],
            created=created,
            expires=_dt(row["expires"]),
            last_used=_dt(row["last_used"]),
        )

    # -- workspaces ----------------------------------------------------------------------------

    def put_workspace(self, ws: Workspace) -> None:
        self._run(
            "INSERT INTO workspaces VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sub, rg, name) "
            "DO UPDATE SET location = excluded.location, tags = excluded.tags, "
            "state = excluded.state, state_changed = excluded.state_changed",
            ws.sub,
            ws.rg,
            ws.name,
            ws.location,
            json.dumps(ws.tags),
            _ts(ws.created),
            ws.state,
            _ts(ws.state_changed),
            ws.owner,
        )

    def workspace(self, sub: str, rg: str, name: str) -> Workspace | None:
        row = self._one(
            "SELECT * FROM workspaces WHERE sub = ? AND rg = ? AND name = ?", sub, rg, name
        )
        return _workspace(row) if row else None

    def workspaces(self, sub: str, rg: str | None = None) -> list[Workspace]:
        if rg is None:
            rows = self._all("SELECT * FROM workspaces WHERE sub = ? ORDER BY rg, name", sub)
        else:
            rows = self._all(
                "SELECT * FROM workspaces WHERE sub = ? AND rg = ? ORDER BY name", sub, rg
            )
        return [_workspace(r) for r in rows]

    def delete_workspace(self, sub: str, rg: str, name: str) -> None:
        self._run("DELETE FROM workspaces WHERE sub = ? AND rg = ? AND name = ?", sub, rg, name)

    # -- experiments ---------------------------------------------------------------------------

    def put_experiment(self, ex: Experiment) -> None:
        self._run(
            "INSERT INTO experiments VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (sub, rg, ws, name) DO UPDATE SET state = excluded.state, "
            "state_changed = excluded.state_changed",
            ex.sub,
            ex.rg,
            ex.ws,
            ex.name,
            _ts(ex.created),
            ex.state,
            _ts(ex.state_changed),
            ex.owner,
        )

    def experiment(self, sub: str, rg: str, ws: str, name: str) -> Experiment | None:
        row = self._one(
            "SELECT * FROM experiments WHERE sub = ? AND rg = ? AND ws = ? AND name = ?",
            sub,
            rg,
            ws,
            name,
        )
        return _experiment(row) if row else None

    def experiments(
        self, sub: str, rg: str, ws: str, *, limit: int = -1, offset: int = 0
    ) -> list[Experiment]:
        rows = self._all(
            "SELECT * FROM experiments WHERE sub = ? AND rg = ? AND ws = ? ORDER BY name "
            "LIMIT ? OFFSET ?",
            sub,
            rg,
            ws,
            limit,
            offset,
        )
        return [_experiment(r) for r in rows]

    def delete_experiment(self, sub: str, rg: str, ws: str, name: str) -> None:
        self._run(
            "DELETE FROM experiments WHERE sub = ? AND rg = ? AND ws = ? AND name = ?",
            sub,
            rg,
            ws,
            name,
        )

    # -- clusters ------------------------------------------------------------------------------

    def put_cluster(self, c: Cluster) -> None:
        """Insert or replace a cluster and its node rows, atomically."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO clusters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (uid) DO UPDATE SET properties = excluded.properties, "
                "secrets = excluded.secrets, provisioning_state = excluded.provisioning_state, "
                "provisioning_changed = excluded.provisioning_changed, "
                "allocation_state = excluded.allocation_state, "
                "allocation_changed = excluded.allocation_changed, errors = excluded.errors",
                (
                    c.uid,
                    c.sub,
                    c.rg,
                    c.ws,
                    c.name,
                    c.partition,
                    c.node_type,
                    c.priority,
                    json.dumps(c.properties),
                    json.dumps(c.secrets),
                    c.owner,
                    _ts(c.created),
                    c.provisioning_state,
                    _ts(c.provisioning_changed),
                    c.allocation_state,
                    _ts(c.allocation_changed),
                    json.dumps(c.errors),
                ),
            )
            db.execute("DELETE FROM cluster_nodes WHERE cluster_uid = ?", (c.uid,))
            db.executemany(
                "INSERT INTO cluster_nodes VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.uid,
                        n.node,
                        n.state,
                        n.setup_job,
                        _ts(n.since),
                        _ts(n.idle_since) if n.idle_since else None,
                    )
                    for n in c.nodes.values()
                ],
            )

    def cluster(self, sub: str, rg: str, ws: str, name: str) -> Cluster | None:
        rows = self._all(
            "SELECT * FROM clusters WHERE sub = ? AND rg = ? AND ws = ? AND name = ?",
            sub,
            rg,
            ws,
            name,
        )
        return self._with_nodes(rows)[0] if rows else None

    def cluster_by_uid(self, uid: str) -> Cluster | None:
        rows = self._all("SELECT * FROM clusters WHERE uid = ?", uid)
        return self._with_nodes(rows)[0] if rows else None

    def clusters(
        self, sub: str | None = None, rg: str | None = None, ws: str | None = None
    ) -> list[Cluster]:
        """Clusters of a workspace, or every cluster when no scope is given."""
        if sub is None:
            rows = self._all("SELECT * FROM clusters ORDER BY sub, rg, ws, name")
        else:
            rows = self._all(
                "SELECT * FROM clusters WHERE sub = ? AND rg = ? AND ws = ? ORDER BY name",
                sub,
                rg,
                ws,
            )
        return self._with_nodes(rows)

    def delete_cluster(self, uid: str) -> None:
        self._run("DELETE FROM clusters WHERE uid = ?", uid)

    def _with_nodes(self, rows: list[sqlite3.Row]) -> list[Cluster]:
        clusters = [_cluster(r) for r in rows]
        if not clusters:
            return []
        by_uid = {c.uid: c for c in clusters}
        marks = ",".join("?" * len(by_uid))
        for row in self._all(
            f"SELECT * FROM cluster_nodes WHERE cluster_uid IN ({marks}) ORDER BY node", *by_uid
        ):
            by_uid[row["cluster_uid"]].nodes[row["node"]] = ClusterNode(
                node=row["node"],
                state=row["state"],
                setup_job=row["setup_job"],
                since=datetime.fromisoformat(row["since"]),
                idle_since=_dt(row["idle_since"]),
            )
        return clusters

    # -- jobs ----------------------------------------------------------------------------------

    def put_job(self, j: Job) -> None:
        """Insert a job, or update what changes over its life. Secrets are written only when
        the job is inserted: once cleared, a copy of the job still holding them cannot bring
        them back."""
        self._run(
            f"INSERT INTO jobs VALUES ({', '.join('?' * 25)}) ON CONFLICT (uid) DO UPDATE SET "
            "provisioning_state = excluded.provisioning_state, "
            "provisioning_changed = excluded.provisioning_changed, "
            "execution_state = excluded.execution_state, "
            "execution_changed = excluded.execution_changed, slurm_id = excluded.slurm_id, "
            "terminate = excluded.terminate, start_time = excluded.start_time, "
            "end_time = excluded.end_time, exit_code = excluded.exit_code, "
            "errors = excluded.errors, restarts = excluded.restarts, nodes = excluded.nodes",
            j.uid,
            j.sub,
            j.rg,
            j.ws,
            j.exp,
            j.name,
            j.cluster_uid,
            j.owner,
            json.dumps(j.properties),
            json.dumps(j.secrets),
            j.script,
            json.dumps(j.info),
            _ts(j.created),
            j.provisioning_state,
            _ts(j.provisioning_changed),
            j.execution_state,
            _ts(j.execution_changed),
            j.slurm_id,
            int(j.terminate),
            _ts(j.start_time) if j.start_time else None,
            _ts(j.end_time) if j.end_time else None,
            j.exit_code,
            json.dumps(j.errors),
            j.restarts,
            json.dumps(j.nodes),
        )

    def job(self, sub: str, rg: str, ws: str, exp: str, name: str) -> Job | None:
        row = self._one(
            "SELECT * FROM jobs WHERE sub = ? AND rg = ? AND ws = ? AND exp = ? AND name = ?",
            sub,
            rg,
            ws,
            exp,
            name,
        )
        return _job(row) if row else None

    def set_slurm_id(self, uid: str, slurm_id: int) -> bool:
        """Record a submitted job's Slurm id (nothing else); True if a terminate came first."""
        rows = self._all(
            "UPDATE jobs SET slurm_id = ? WHERE uid = ? RETURNING terminate", slurm_id, uid
        )
        return bool(rows and rows[0]["terminate"])

    def clear_job_secrets(self, uid: str) -> None:
        """Drop a job's secret values, once its 0600 secrets file holds them: from then on the
        file is what the job reads, on every run, and the store keeps no clear copy."""
        self._run("UPDATE jobs SET secrets = '{}' WHERE uid = ?", uid)

    def job_by_uid(self, uid: str) -> Job | None:
        row = self._one("SELECT * FROM jobs WHERE uid = ?", uid)
        return _job(row) if row else None

    def jobs(
        self, sub: str, rg: str, ws: str, exp: str, *, limit: int = -1, offset: int = 0
    ) -> list[Job]:
        """An experiment's jobs, oldest first; `limit`/`offset` read one page of them."""
        rows = self._all(
            "SELECT * FROM jobs WHERE sub = ? AND rg = ? AND ws = ? AND exp = ? "
            "ORDER BY created, uid LIMIT ? OFFSET ?",
            sub,
            rg,
            ws,
            exp,
            limit,
            offset,
        )
        return [_job(r) for r in rows]

    def active_jobs(self) -> list[Job]:
        """Jobs not yet succeeded or failed, and finished jobs being deleted."""
        rows = self._all(
            "SELECT * FROM jobs WHERE execution_state NOT IN ('succeeded', 'failed') "
            "OR provisioning_state = 'deleting' ORDER BY created"
        )
        return [_job(r) for r in rows]

    def count_jobs(self) -> dict[str, int]:
        rows = self._all("SELECT execution_state, COUNT(*) AS n FROM jobs GROUP BY execution_state")
        return {r["execution_state"]: r["n"] for r in rows}

    def rename_job(self, uid: str, name: str) -> bool:
        """Give a job a new name within its experiment; False if another job has it."""
        try:
            self._run("UPDATE jobs SET name = ? WHERE uid = ?", name, uid)
        except sqlite3.IntegrityError:
            return False
        return True

    def set_job_info(self, uid: str, info: JobInfo) -> None:
        """Replace what bai keeps of a job beside Slurm's view (a job array's tasks)."""
        self._run("UPDATE jobs SET info = ? WHERE uid = ?", json.dumps(info), uid)

    def delete_job(self, uid: str) -> None:
        self._run("DELETE FROM jobs WHERE uid = ?", uid)

    # -- metric counters (outcomes seen by bai; kept across restarts and job deletions) --------

    def put_counter(self, name: str, labels: str, value: str) -> None:
        self._run(
            "INSERT INTO counters VALUES (?, ?, ?) ON CONFLICT (name, labels) "
            "DO UPDATE SET value = excluded.value",
            name,
            labels,
            value,
        )

    def counters(self) -> list[tuple[str, str, str]]:
        return [(r["name"], r["labels"], r["value"]) for r in self._all("SELECT * FROM counters")]

    def active_job_counts(self) -> list[tuple[str, str, int]]:
        """(cluster uid, execution state, count) of unfinished jobs."""
        rows = self._all(
            "SELECT cluster_uid, execution_state, COUNT(*) AS n FROM jobs "
            "WHERE execution_state NOT IN ('succeeded', 'failed') "
            "GROUP BY cluster_uid, execution_state"
        )
        return [(r["cluster_uid"], r["execution_state"], r["n"]) for r in rows]

    # -- operations ----------------------------------------------------------------------------

    def put_operation(self, op: Operation) -> None:
        self._run(
            "INSERT INTO operations VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "status = excluded.status, error = excluded.error, updated = excluded.updated",
            op.id,
            op.kind,
            op.target,
            op.status,
            json.dumps(op.error) if op.error else None,
            _ts(op.created),
            _ts(op.updated),
            op.owner,
        )

    def operation(self, op_id: str) -> Operation | None:
        row = self._one("SELECT * FROM operations WHERE id = ?", op_id)
        return _operation(row) if row else None

    def operations_in_progress(
        self, *, target: str | None = None, kind: OperationKind | None = None
    ) -> list[Operation]:
        """Operations still in progress (of this target, of this kind), oldest first."""
        sql, args = "SELECT * FROM operations WHERE status = 'InProgress'", list[str]()
        if target is not None:
            sql, args = sql + " AND target = ?", [*args, target]
        if kind is not None:
            sql, args = sql + " AND kind = ?", [*args, kind]
        return [_operation(row) for row in self._all(sql + " ORDER BY created", *args)]

    def begin_operation(
        self, kind: OperationKind, target: str, owner: str
    ) -> tuple[Operation, bool]:
        """The operation of this kind in progress on `target` for `owner`, or a new one; True
        if new. Two users deleting one shared thing each get an operation they may poll."""
        existing = [
            op for op in self.operations_in_progress(target=target, kind=kind) if op.owner == owner
        ]
        if existing:
            return existing[0], False
        t = self.clock()
        op = Operation(str(uuid.uuid4()), kind, target, "InProgress", None, t, t, owner)
        self.put_operation(op)
        return op, True

    def succeed_operations(self, target: str) -> None:
        """Every operation in progress on `target` has succeeded."""
        self._run(
            "UPDATE operations SET status = 'Succeeded', updated = ? "
            "WHERE status = 'InProgress' AND target = ?",
            _ts(self.clock()),
            target,
        )


def _operation(row: sqlite3.Row) -> Operation:
    return Operation(
        id=row["id"],
        kind=row["kind"],
        target=row["target"],
        status=row["status"],
        error=json.loads(row["error"]) if row["error"] else None,
        created=datetime.fromisoformat(row["created"]),
        updated=datetime.fromisoformat(row["updated"]),
        owner=row["owner"],
    )


def _workspace(row: sqlite3.Row) -> Workspace:
    return Workspace(
        sub=row["sub"],
        rg=row["rg"],
        name=row["name"],
        location=row["location"],
        tags=json.loads(row["tags"]),
        created=datetime.fromisoformat(row["created"]),
        state=row["state"],
        state_changed=datetime.fromisoformat(row["state_changed"]),
        owner=row["owner"],
    )


def _experiment(row: sqlite3.Row) -> Experiment:
    return Experiment(
        sub=row["sub"],
        rg=row["rg"],
        ws=row["ws"],
        name=row["name"],
        created=datetime.fromisoformat(row["created"]),
        state=row["state"],
        state_changed=datetime.fromisoformat(row["state_changed"]),
        owner=row["owner"],
    )


def _cluster(row: sqlite3.Row) -> Cluster:
    return Cluster(
        uid=row["uid"],
        sub=row["sub"],
        rg=row["rg"],
        ws=row["ws"],
        name=row["name"],
        partition=row["partition"],
        node_type=row["node_type"],
        priority=row["priority"],
        properties=json.loads(row["properties"]),
        secrets=json.loads(row["secrets"]),
        owner=row["owner"],
        created=datetime.fromisoformat(row["created"]),
        provisioning_state=row["provisioning_state"],
        provisioning_changed=datetime.fromisoformat(row["provisioning_changed"]),
        allocation_state=row["allocation_state"],
        allocation_changed=datetime.fromisoformat(row["allocation_changed"]),
        errors=json.loads(row["errors"]),
    )


def _job(row: sqlite3.Row) -> Job:
    return Job(
        uid=row["uid"],
        sub=row["sub"],
        rg=row["rg"],
        ws=row["ws"],
        exp=row["exp"],
        name=row["name"],
        cluster_uid=row["cluster_uid"],
        owner=row["owner"],
        properties=json.loads(row["properties"]),
        secrets=json.loads(row["secrets"]),
        script=row["script"],
        info=json.loads(row["info"]),
        created=datetime.fromisoformat(row["created"]),
        provisioning_state=row["provisioning_state"],
        provisioning_changed=datetime.fromisoformat(row["provisioning_changed"]),
        execution_state=row["execution_state"],
        execution_changed=datetime.fromisoformat(row["execution_changed"]),
        slurm_id=row["slurm_id"],
        terminate=bool(row["terminate"]),
        start_time=_dt(row["start_time"]),
        end_time=_dt(row["end_time"]),
        exit_code=row["exit_code"],
        errors=json.loads(row["errors"]),
        restarts=row["restarts"],
        nodes=json.loads(row["nodes"]),
    )
