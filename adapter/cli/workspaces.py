"""`bai workspace create/show/list/delete`."""

from __future__ import annotations

from typing import Annotated

import typer

from adapter.cli.client import Client
from adapter.cli.common import Output, ResourceGroup, Yes, confirm, scope
from adapter.cli.output import Format, emit, prop

app = typer.Typer(help="Workspaces: namespaces for clusters and experiments.", no_args_is_help=True)
Name = Annotated[str, typer.Option("-n", "--name", "--workspace", help="Workspace name.")]
COLUMNS = [
    ("Name", prop("name")),
    ("Location", prop("location")),
    ("State", prop("properties", "provisioningState")),
]


@app.command()
def create(
    name: Name,
    resource_group: ResourceGroup = "default",
    location: Annotated[str, typer.Option("-l", "--location")] = "onprem",
    output: Output = Format.table,
) -> None:
    """Create a workspace (or update its location)."""
    ws = Client().put(scope(resource_group).workspace(name), {"location": location})
    emit(ws, COLUMNS, output)


@app.command()
def show(
    name: Name, resource_group: ResourceGroup = "default", output: Output = Format.table
) -> None:
    """Show a workspace."""
    emit(Client().get(scope(resource_group).workspace(name)), COLUMNS, output)


@app.command("list")
def list_(resource_group: ResourceGroup = "default", output: Output = Format.table) -> None:
    """List the workspaces of a resource group."""
    path = scope(resource_group).workspace("").rsplit("/", 1)[0]
    emit(list(Client().pages(path)), COLUMNS, output)


@app.command()
def delete(name: Name, resource_group: ResourceGroup = "default", yes: Yes = False) -> None:
    """Delete a workspace with its clusters and experiments."""
    confirm(f"workspace {name} with all its clusters and experiments", yes)
    Client().delete(scope(resource_group).workspace(name))
