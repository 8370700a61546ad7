"""The typer app of `bai`: its command groups, `version`, and main(), which prints errors as one
line."""

from __future__ import annotations

import typer
from rich.console import Console

from adapter import __version__
from adapter.cli import admin, clusters, deployment, dev, experiments, jobs, usage, workspaces
from adapter.errors import BaiError

app = typer.Typer(
    help="bai: the Azure Batch AI experience on Slurm GPU clusters.", no_args_is_help=True
)
app.add_typer(workspaces.app, name="workspace")
app.add_typer(clusters.app, name="cluster")
app.add_typer(experiments.app, name="experiment")
app.add_typer(jobs.app, name="job")
app.add_typer(admin.token_app, name="token")
app.add_typer(admin.slurm_app, name="slurm")
app.add_typer(deployment.app, name="admin")
app.add_typer(dev.app, name="dev", hidden=True)
app.command()(admin.serve)
app.command()(usage.usage)


@app.command()
def version() -> None:
    """Print the bai version."""
    print(__version__)


def main() -> None:
    """Console entry point: errors become one line with what to do next."""
    try:
        app(standalone_mode=False)
    except BaiError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    except (typer.Abort, KeyboardInterrupt):
        raise SystemExit(1) from None
    except Exception as exc:
        import click

        # A usage error: typer from 0.29 raises its own copy of click's exceptions (under
        # typer.TyperException), older typer click's own. Either says what was wrong, and
        # how to get help, on one line.
        usage: tuple[type[Exception], ...] = (click.ClickException,)
        if hasattr(typer, "TyperException"):
            usage += (typer.TyperException,)
        show = getattr(exc, "show", None)
        if isinstance(exc, usage) and callable(show):
            show()
            raise SystemExit(getattr(exc, "exit_code", 2)) from None
        raise
