"""`bai experiment create/show/list/delete`."""

from __future__ import annotations

from typing import Annotated

import typer

from adapter.cli.client import Client
from adapter.cli.common import NoWait, Output, ResourceGroup, Workspace, Yes, confirm, scope
from adapter.cli.output import Format, emit, prop

app = typer.Typer(help="Experiments: groups of jobs in a workspace.", no_args_is_help=True)
Name = Annotated[str, typer.Option("-n", "--name", help="Experiment name.")]
COLUMNS = [
    ("Name", prop("name")),
    ("Resource Group", lambda e: e["id"].split("/")[4]),
    ("Workspace", lambda e: e["id"].split("/")[8]),
    ("State", prop("properties", "provisioningState")),
]


def _path(resource_group: str, workspace: str, name: str = "") -> str:
    return f"{scope(resource_group).workspace(workspace)}/experiments/{name}".rstrip("/")


@app.command()
def create(
    name: Name,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    output: Output = Format.table,
) -> None:
    """Create an experiment (a no-op if it exists)."""
    emit(Client().put(_path(resource_group, workspace, name)), COLUMNS, output)


@app.command()
def show(
    name: Name,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    output: Output = Format.table,
) -> None:
    """Show an experiment."""
    emit(Client().get(_path(resource_group, workspace, name)), COLUMNS, output)


@app.command("list")
def list_(
    workspace: Workspace, resource_group: ResourceGroup = "default", output: Output = Format.table
) -> None:
    """List the experiments of a workspace."""
    emit(list(Client().pages(_path(resource_group, workspace))), COLUMNS, output)


@app.command()
def delete(
    name: Name,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    yes: Yes = False,
    no_wait: NoWait = False,
) -> None:
    """Delete an experiment with all its jobs (running jobs are terminated)."""
    confirm(f"experiment {name} with all its jobs", yes)
    Client().delete(_path(resource_group, workspace, name), wait=not no_wait)
