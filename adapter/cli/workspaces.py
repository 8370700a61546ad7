"""`bai workspace create/update/show/list/delete`; sharing with Unix groups is the workspace's
`bai-groups` tag (adapter.tenancy), which any ARM client can set too."""

from __future__ import annotations

from typing import Annotated

import typer

from adapter.cli.client import Client
from adapter.cli.common import Output, ResourceGroup, Yes, confirm, scope
from adapter.cli.output import Format, emit, prop

# adapter.tenancy.SHARE_TAG (a unit test keeps the two equal), not imported: adapter.tenancy
# loads the store and the settings, most of the CLI's start-up time.
SHARE_TAG = "bai-groups"

app = typer.Typer(help="Workspaces: namespaces for clusters and experiments.", no_args_is_help=True)
Name = Annotated[str, typer.Option("-n", "--name", "--workspace", help="Workspace name.")]
COLUMNS = [
    ("Name", prop("name")),
    ("Location", prop("location")),
    ("State", prop("properties", "provisioningState")),
    ("Shared with", prop("tags", SHARE_TAG)),
]
ShareWith = Annotated[
    str | None,
    typer.Option(
        "--share-with",
        help="Unix groups (comma-separated) whose members may see the workspace and use its "
        "clusters; '' to stop sharing.",
    ),
]


@app.command()
def create(
    name: Name,
    resource_group: ResourceGroup = "default",
    location: Annotated[str, typer.Option("-l", "--location")] = "onprem",
    share_with: ShareWith = None,
    output: Output = Format.table,
) -> None:
    """Create a workspace (or update your own: its location and sharing)."""
    body: dict[str, object] = {"location": location}
    if share_with:
        body["tags"] = {SHARE_TAG: share_with}
    ws = Client().put(scope(resource_group).workspace(name), body)
    emit(ws, COLUMNS, output)


@app.command()
def update(
    name: Name,
    resource_group: ResourceGroup = "default",
    share_with: ShareWith = None,
    output: Output = Format.table,
) -> None:
    """Change who a workspace is shared with (its other tags are kept)."""
    if share_with is None:
        raise typer.BadParameter("nothing to change: give --share-with GROUPS (or '')")
    client, path = Client(), scope(resource_group).workspace(name)
    tags = {k: v for k, v in (client.get(path).get("tags") or {}).items() if k != SHARE_TAG}
    if share_with.strip():
        tags[SHARE_TAG] = share_with
    emit(client.patch(path, {"tags": tags}), COLUMNS, output)


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
