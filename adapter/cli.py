"""The `bai` command line."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from adapter import __version__
from adapter.backends import CliBackend, LocalRunner
from adapter.errors import BaiError

app = typer.Typer(
    help="bai: the Azure Batch AI experience on Slurm GPU clusters.", no_args_is_help=True
)
slurm_app = typer.Typer(help="Look at the Slurm cluster directly (operators, on a login node).")
app.add_typer(slurm_app, name="slurm")
console = Console()


@app.command()
def version() -> None:
    """Print the bai version."""
    console.print(__version__)


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


def main() -> None:
    """Console entry point: errors become one line with what to do next."""
    try:
        app()
    except BaiError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise SystemExit(1) from None
