"""`bai admin check`: a deployment checked end to end, as the service would use it, on the
service host. Each check says what it found and, when it fails, what to fix:

- the store opens (the schema version this bai reads) and passes SQLite's quick check;
- Slurm answers through the configured runner (this host's commands, or the slurm.ssh host),
  with its release and usable nodes;
- the partition include file's directory takes a file written as bai writes the include file
  (a probe beside it, removed again);
- munge makes and verifies a credential here (how `bai` on login hosts proves its user);
- every storage account of the settings resolves: a `local` directory exists here, an
  nfs/cifs server's name resolves, an rclone remote names its type;
- a canary job (`true`, one node, a minute at most) runs in a bai cluster's partition (the
  first with nodes, or `--cluster`'s) as that cluster's owner (or `--user`) and completes.

A check that cannot run for want of something else (no cluster with nodes for the canary) is
skipped, not failed.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from adapter import munge
from adapter.backends.base import SlurmBackend
from adapter.backends.cli import CliBackend
from adapter.backends.slurm_options import SlurmOptions
from adapter.errors import BackendUnavailable, BaiError
from adapter.settings import Settings, StorageAccount
from adapter.store import SCHEMA_VERSION, Store

UNREACHABLE = "Slurm is out of reach: see the slurm check"


@dataclass(frozen=True)
class Finding:
    check: str
    result: str  # "ok", "FAILED" or "skipped"
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.result == "FAILED"


class Failed(Exception):
    """A check's failure: what was found, and what to do about it."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


class Skipped(Exception):
    """A check that cannot run here; the message says why."""


async def run_checks(
    settings: Settings,
    backend: SlurmBackend,
    *,
    canary_user: str | None = None,
    canary_cluster: str | None = None,
    canary_timeout: float = 120,
) -> list[Finding]:
    """Every check, in order; a failure does not stop the ones after it."""
    cli = backend if isinstance(backend, CliBackend) else None
    checks: list[tuple[str, Callable[[], Awaitable[str]]]] = [
        ("store", lambda: _store(settings)),
        ("slurm", lambda: _slurm(backend, cli)),
        ("partitions file", lambda: _include(cli)),
        ("munge", _munge),
        ("storage accounts", lambda: _accounts(settings.storage_accounts)),
        (
            "canary job",
            lambda: _canary(settings, backend, canary_user, canary_cluster, canary_timeout),
        ),
    ]
    findings = []
    for name, check in checks:
        try:
            findings.append(Finding(name, "ok", await check()))
        except Failed as exc:
            findings.append(Finding(name, "FAILED", exc.detail, exc.fix))
        except Skipped as exc:
            findings.append(Finding(name, "skipped", str(exc)))
    return findings


async def _store(settings: Settings) -> str:
    path = settings.db_path
    if not path.exists():
        raise Failed(f"no store at {path}", "start the service once (it makes the store)")
    try:
        store = Store(path)
    except BaiError as exc:
        raise Failed(str(exc), "see the message; docs/deploy.md has upgrades") from None
    try:
        verdict = store.quick_check()
    except sqlite3.DatabaseError as exc:
        verdict = str(exc)
    finally:
        store.close()
    if verdict != "ok":
        raise Failed(f"{path}: {verdict}", "restore the last backup (bai admin restore)")
    return f"{path}, schema version {SCHEMA_VERSION}"


async def _slurm(backend: SlurmBackend, cli: CliBackend | None) -> str:
    try:
        release = await cli.release() if cli else None
        nodes = await backend.nodes()
    except BaiError as exc:
        raise Failed(
            str(exc),
            "with slurm.runner = ssh: the [slurm.ssh] host, port, key and known_hosts; "
            "otherwise: slurmctld up (scontrol ping) and munged running",
        ) from None
    usable = sum(1 for n in nodes if n.usable)
    named = f"Slurm {release[0]}.{release[1]:02d}" if release else "Slurm"
    return f"{named}: {len(nodes)} nodes, {usable} usable"


async def _include(backend: CliBackend | None) -> str:
    if backend is None:
        raise Skipped("the backend writes no include file")
    probe = f"{backend.include_path}.check-{uuid.uuid4().hex[:8]}"
    text = "# bai admin check: a probe, removed at once\n"
    try:
        await backend.runner.write_text(probe, text)
        back = await backend.runner.read_text(probe)
        await backend.runner.remove(probe)
    except BackendUnavailable as exc:
        raise Failed(str(exc), UNREACHABLE) from None
    except BaiError as exc:
        raise Failed(
            str(exc),
            f"the runner's account must own {Path(backend.include_path).parent} "
            "(ansible/roles/slurm_config makes it so)",
        ) from None
    if back != text:
        raise Failed(f"{probe} read back other text", "check the file system of the include")
    return f"{backend.include_path}: its directory takes bai's writes"


async def _munge() -> str:
    try:
        who = munge.decode(munge.encode())
    except BaiError as exc:
        raise Failed(
            str(exc),
            "start munged (systemctl start munge); its key must be the cluster's "
            "(/etc/munge/munge.key, the same on every host)",
        ) from None
    return f"a credential made and verified here (uid {who.uid})"


async def _accounts(accounts: dict[str, StorageAccount]) -> str:
    if not accounts:
        raise Skipped("no storage_accounts in the settings")
    bad = []
    for name, account in sorted(accounts.items()):
        problem = await asyncio.to_thread(_account_problem, account)
        if problem:
            bad.append(f"{name}: {problem}")
    if bad:
        raise Failed(
            "; ".join(bad),
            "make what is missing on this host, or correct the account in storage_accounts",
        )
    return f"{len(accounts)} resolve: {', '.join(sorted(accounts))}"


def _account_problem(account: StorageAccount) -> str:
    if account.kind == "local":
        where = account.adapter_path or account.path or ""
        return "" if where and Path(where).is_dir() else f"no directory {where or '(no path)'}"
    if account.kind == "rclone":
        return "" if account.remote.get("type") else "its remote names no type"
    server = account.server or ""
    try:
        socket.getaddrinfo(server, None)
    except (OSError, UnicodeError):
        return f"server {server or '(none)'} does not resolve"
    return ""


async def _canary(
    settings: Settings,
    backend: SlurmBackend,
    user: str | None,
    name: str | None,
    timeout: float,
) -> str:
    store = Store(settings.db_path)
    try:
        clusters = [c for c in store.clusters() if c.nodes and name in (None, c.name)]
    finally:
        store.close()
    if not clusters:
        raise Skipped(
            f"no bai cluster {'named ' + name + ' ' if name else ''}has nodes: create one "
            "(bai cluster create) and run again"
        )
    cluster = clusters[0]
    user = user or cluster.owner
    if user == "root":
        raise Skipped(f"{cluster.name} belongs to root: name a user with --user")
    options = SlurmOptions(
        job_name="bai-check",
        partition=cluster.partition,
        nodes=1,
        time_minutes=1,
        chdir="/tmp",
        output="/dev/null",
    )
    script = "\n".join(["#!/bin/bash", *options.directives(), "true", ""])
    started = time.monotonic()
    try:
        job_id = await backend.submit_job(options, script, user=user)
        while True:
            jobs = [j for j in await backend.jobs([cluster.partition]) if j.job_id == job_id]
            if jobs and jobs[0].finished:
                break
            if time.monotonic() - started > timeout:
                await backend.cancel(job_id)
                why = jobs[0].state_reason if jobs else "not seen"
                raise Failed(
                    f"job {job_id} not done in {timeout:.0f} s ({why})",
                    f"look at the nodes of {cluster.partition} (bai slurm nodes)",
                )
            await asyncio.sleep(1)
    except BackendUnavailable as exc:
        raise Failed(str(exc), UNREACHABLE) from None
    except BaiError as exc:
        raise Failed(str(exc), f"submit as {user} by hand: sbatch -p {cluster.partition}") from None
    job = jobs[0]
    if job.state != "COMPLETED":
        raise Failed(
            f"job {job_id} ended {job.state} (exit {job.exit_status}) on {','.join(job.nodes)}",
            "the node's slurmd log, and the Prolog (/usr/local/libexec/bai/prolog)",
        )
    took = time.monotonic() - started
    return f"job {job_id} of {user} in {cluster.partition} completed in {took:.0f} s"
