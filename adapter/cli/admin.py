"""Operator commands on the service host: `bai serve`, `bai token`, `bai slurm nodes`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from adapter.cli.common import Output
from adapter.cli.output import Format, console
from adapter.errors import InvalidRequest

# The settings, the store and the backends are imported by the commands that use them: every
# `bai` command loads this module, and they are most of its start-up time.
if TYPE_CHECKING:
    from adapter.records import TokenRecord

# adapter.auth.DEFAULT_EXPIRY (a unit test keeps the two equal), not imported: adapter.auth
# loads the settings and the store.
DEFAULT_EXPIRY = "90d"

ConfigOption = Annotated[
    str | None,
    typer.Option("--config", "-c", help="Settings file (TOML or YAML); else $BAI_CONFIG."),
]
token_app = typer.Typer(help="API tokens (run on the service host).", no_args_is_help=True)
slurm_app = typer.Typer(
    help="Look at the Slurm cluster directly (operators).", no_args_is_help=True
)


def serve(config: ConfigOption = None) -> None:
    """Run the bai service over HTTPS."""
    import uvicorn

    from adapter import logs
    from adapter.api.app import build_services, create_app
    from adapter.settings import load_settings
    from adapter.tls import ensure_self_signed

    settings = load_settings(config)
    logs.configure()
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None or key is None:
        cert, key = ensure_self_signed(settings.state_dir / "tls")
    app = create_app(build_services(settings))
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_config=None,
        access_log=False,
        # Idle keep-alive clients must not hold a restart up.
        timeout_graceful_shutdown=5,
    )


Expires = Annotated[
    str,
    typer.Option(
        "--expires",
        help="When the token stops working: 12h, 30d, 2w from now, an ISO date (2026-12-31, "
        "from 00:00 UTC) or time (2026-12-31T18:00+01:00), or never.",
    ),
]


CREATE_HELP = (
    "Print a new bearer token bound to a Unix user (stored only as its SHA-256).\n\n"
    "The token is printed once, on stdout; its id and expiry go to stderr. It expires after 90 "
    "days unless --expires says otherwise. System accounts (root; uids below UID_MIN, or above "
    "UID_MAX up to 65535, of /etc/login.defs) get none unless the setting "
    "auth.allow_system_users names them."
)
LIST_HELP = (
    "Every token: id, label, user, admin, created, last used (to the minute), expires.\n\n"
    "Never the token nor its hash: the id is the start of the hash, enough to revoke it by. "
    "Times are relative to now; -o json has them exact."
)
REVOKE_HELP = (
    "Revoke tokens: the very next request with one of them gets 401.\n\n"
    "Give ids (at least 8 of their hex digits), --label, --user or --expired; every token any "
    "of them matches is revoked. Nothing is revoked if one of them matches no token."
)


@token_app.command("create", help=CREATE_HELP)
def token_create(
    user: Annotated[str, typer.Option("--user", help="Unix user the token acts as.")],
    admin: Annotated[bool, typer.Option("--admin", help="May act for every user.")] = False,
    label: Annotated[str, typer.Option("--label", help="What it is for (shown by list).")] = "",
    expires: Expires = DEFAULT_EXPIRY,
    config: ConfigOption = None,
) -> None:
    """Print a new bearer token bound to a Unix user (stored only as its SHA-256)."""
    from adapter.auth import create_token, hash_token, parse_expiry, short_ids
    from adapter.clock import now
    from adapter.settings import load_settings
    from adapter.store import Store

    settings = load_settings(config)
    at = now()
    when = parse_expiry(expires, at)
    store = Store(settings.db_path)
    try:
        token = create_token(
            store, user, policy=settings.auth, at=at, expires=when, admin=admin, label=label
        )
        ident = short_ids([r.hash for r in store.tokens()])[hash_token(token)]
    finally:
        store.close()
    print(token)
    until = f"expires {when:%Y-%m-%d %H:%M} UTC" if when else "never expires"
    Console(stderr=True).print(
        f"token {ident} for {user}{' (admin)' if admin else ''}, {until}; "
        f"revoke it with `bai token revoke {ident}`",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@token_app.command("list", help=LIST_HELP)
def token_list(output: Output = Format.table, config: ConfigOption = None) -> None:
    """Every token, never the token nor its hash."""
    from adapter.auth import short_ids
    from adapter.clock import now
    from adapter.settings import load_settings
    from adapter.store import Store

    settings = load_settings(config)
    store = Store(settings.db_path)
    try:
        records = store.tokens()
    finally:
        store.close()
    at = now()
    ids = short_ids([r.hash for r in records])
    if output == Format.json:
        print(json.dumps([token_json(r, ids[r.hash], at) for r in records], indent=2))
        return
    console.print(token_table(records, ids, at))


def token_json(record: TokenRecord, ident: str, at: datetime) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": ident,
        "label": record.label,
        "user": record.user,
        "admin": record.admin,
        "created": iso(record.created),
        "lastUsed": iso(record.last_used),
        "expires": iso(record.expires),
        "expired": record.expires is not None and record.expires <= at,
    }


def token_table(records: list[TokenRecord], ids: dict[str, str], at: datetime) -> Table:
    """Fits 80 columns: times relative to now (`-o json` has them exact); labels wrap."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("ID", no_wrap=True)
    table.add_column("Label")
    table.add_column("User")
    for title in ("Admin", "Created", "Last used", "Expires"):
        table.add_column(title, no_wrap=True)
    for r in records:
        if r.expires is None:
            expires = Text("never")
        elif r.expires <= at:
            expires = Text("expired", style="red")
        else:
            expires = Text(f"in {span(r.expires - at)}")
        table.add_row(
            ids[r.hash],
            Text(r.label),
            Text(r.user),
            "yes" if r.admin else "",
            f"{r.created:%Y-%m-%d}",
            "never" if r.last_used is None else f"{span(at - r.last_used)} ago",
            expires,
        )
    return table


def span(delta: timedelta) -> str:
    """A duration in its largest unit, short: `45 s`, `12 min`, `30 h`, `89 d`."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size, below in (("s", 1, 60), ("min", 60, 3600), ("h", 3600, 2 * 86400)):
        if seconds < below:
            return f"{seconds // size} {unit}"
    return f"{seconds // 86400} d"


@token_app.command("revoke", help=REVOKE_HELP)
def token_revoke(
    ids: Annotated[list[str] | None, typer.Argument(help="Token ids, as list shows them.")] = None,
    label: Annotated[str | None, typer.Option("--label", help="Every token with it.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Every token of this user.")] = None,
    expired: Annotated[bool, typer.Option("--expired", help="Every expired token.")] = False,
    config: ConfigOption = None,
) -> None:
    """Revoke tokens by id, label, user or expiry."""
    from adapter.auth import select_tokens, short_ids
    from adapter.clock import now
    from adapter.settings import load_settings
    from adapter.store import Store

    if not ids and label is None and user is None and not expired:
        raise InvalidRequest("name the tokens to revoke: ids, --label, --user or --expired")
    settings = load_settings(config)
    store = Store(settings.db_path)
    try:
        records = store.tokens()
        at = now()
        chosen = select_tokens(
            records, ids=ids or [], label=label, user=user, expired_at=at if expired else None
        )
        store.delete_tokens([r.hash for r in chosen])
    finally:
        store.close()
    names = short_ids([r.hash for r in records])
    for r in chosen:
        print(f"revoked {names[r.hash]} ({r.user}{', ' + repr(r.label) if r.label else ''})")


@slurm_app.command("nodes")
def slurm_nodes(config: ConfigOption = None) -> None:
    """Every Slurm node: address, state, GPUs, partitions, reason (through the service's runner:
    this host's commands, or the slurm.ssh host's)."""
    import asyncio

    from adapter.backends import CliBackend, LocalRunner, Runner
    from adapter.backends.ssh import SshRunner
    from adapter.settings import load_settings

    slurm = load_settings(config).slurm
    runner: Runner = SshRunner.from_settings(slurm.ssh) if slurm.runner == "ssh" else LocalRunner()
    nodes = asyncio.run(CliBackend(runner).nodes())
    table = Table("Node", "Address", "State", "GPUs", "Used", "Partitions", "Reason")
    for n in nodes:
        state = "+".join([n.state, *sorted(n.flags)])
        gpus = f"{n.gpu_type}:{n.gpus}" if n.gpu_type else str(n.gpus)
        table.add_row(
            n.name, n.address, state, gpus, str(n.gpus_used), ",".join(n.partitions), n.reason
        )
    console.print(table)
