"""Operator commands on the service host: `bai serve`, `bai token create`, `bai slurm nodes`."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from adapter.backends import CliBackend, LocalRunner
from adapter.cli.output import console
from adapter.settings import load_settings

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


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="Unix user the token acts as.")],
    admin: Annotated[bool, typer.Option("--admin", help="May act for every user.")] = False,
    label: Annotated[str, typer.Option("--label")] = "",
    config: ConfigOption = None,
) -> None:
    """Print a new bearer token bound to a Unix user (stored only as a hash)."""
    from adapter.auth import create_token
    from adapter.store import Store

    settings = load_settings(config)
    store = Store(settings.db_path)
    try:
        print(create_token(store, user, admin=admin, label=label))
    finally:
        store.close()


@slurm_app.command("nodes")
def slurm_nodes() -> None:
    """Every Slurm node: address, state, GPUs, partitions, reason."""
    nodes = asyncio.run(CliBackend(LocalRunner()).nodes())
    table = Table("Node", "Address", "State", "GPUs", "Used", "Partitions", "Reason")
    for n in nodes:
        state = "+".join([n.state, *sorted(n.flags)])
        gpus = f"{n.gpu_type}:{n.gpus}" if n.gpu_type else str(n.gpus)
        table.add_row(
            n.name, n.address, state, gpus, str(n.gpus_used), ",".join(n.partitions), n.reason
        )
    console.print(table)
