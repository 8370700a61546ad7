"""`bai admin`: operating a deployment on the service host: backups of the store, restores, and
one check of the whole deployment (docs/deploy.md)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from adapter.cli.admin import ConfigOption
from adapter.cli.output import console
from adapter.errors import InvalidRequest

app = typer.Typer(
    help="Operate the deployment: backups, restores, checks (run on the service host).",
    no_args_is_help=True,
)


@app.command("backup")
def backup(
    target: Annotated[Path, typer.Argument(help="The new file to write (never replaced).")],
    config: ConfigOption = None,
) -> None:
    """Copy the store through SQLite's backup API: one consistent snapshot, taken while the
    service runs; mode 0600 (it holds token hashes and job secrets)."""
    from adapter.settings import load_settings
    from adapter.store import backup as backup_store

    settings = load_settings(config)
    version = backup_store(settings.db_path, target)
    size = target.stat().st_size
    print(f"backed up {settings.db_path} to {target} (schema version {version}, {size} bytes)")


@app.command("restore")
def restore(
    source: Annotated[Path, typer.Argument(help="A file `bai admin backup` wrote.")],
    config: ConfigOption = None,
) -> None:
    """Make the store the backup's, with the service stopped; an older backup's schema is
    migrated forward when the service starts, a newer one is refused."""
    from adapter.settings import load_settings
    from adapter.store import restore as restore_store

    settings = load_settings(config)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    if _answers(host, settings.port):
        raise InvalidRequest(
            f"the service answers on {host}:{settings.port}: stop it first "
            "(systemctl stop bai), restore, then start it"
        )
    version = restore_store(source, settings.db_path)
    print(f"restored {settings.db_path} from {source} (schema version {version})")
    print("start the service: it migrates an older schema forward")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@app.command("check")
def check(
    user: Annotated[
        str | None,
        typer.Option("--user", help="The canary job's user (default: its cluster's owner)."),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option("--cluster", help="The canary job's cluster (default: the first with nodes)."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check the deployment end to end, as the service uses it: the store, Slurm through the
    runner, the partitions file, munge, the storage accounts and a canary job. Exits 1 if a
    check failed; each failure says what to fix."""
    import asyncio

    from adapter.api.app import slurm_backend
    from adapter.check import run_checks
    from adapter.settings import load_settings

    settings = load_settings(config)
    backend = slurm_backend(settings)
    findings = asyncio.run(run_checks(settings, backend, canary_user=user, canary_cluster=cluster))
    table = Table("Check", "Result", "Found, and what to do")
    for f in findings:
        style = {"ok": "green", "FAILED": "red"}.get(f.result, "yellow")
        found = escape(f.detail) + (f"\n[bold]fix:[/bold] {escape(f.fix)}" if f.fix else "")
        table.add_row(f.check, f"[{style}]{f.result}[/{style}]", found)
    console.print(table)
    if any(f.failed for f in findings):
        raise SystemExit(1)
