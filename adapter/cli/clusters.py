"""`bai cluster create/show/list/resize/auto-scale/delete` and `bai cluster node list`."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from adapter.cli.client import Client, CliError
from adapter.cli.common import NoWait, Output, ResourceGroup, Workspace, Yes, confirm, scope
from adapter.cli.output import Format, emit, prop

app = typer.Typer(help="Clusters: Slurm partitions of identical GPU nodes.", no_args_is_help=True)
node_app = typer.Typer(help="Nodes of a cluster.", no_args_is_help=True)
app.add_typer(node_app, name="node")

Name = Annotated[str, typer.Option("-n", "--name", help="Cluster name.")]


def _count(state: str) -> Any:
    return prop("properties", "nodeStateCounts", f"{state}NodeCount")


def _state(item: dict[str, Any]) -> str:
    props = item.get("properties", {})
    return (
        "deleting"
        if props.get("provisioningState") == "deleting"
        else props.get("allocationState", "")
    )


COLUMNS = [
    ("Name", prop("name")),
    ("Resource Group", lambda c: c["id"].split("/")[4]),
    ("Workspace", lambda c: c["id"].split("/")[8]),
    ("VM Size", prop("properties", "vmSize")),
    ("Priority", prop("properties", "vmPriority")),
    ("State", _state),
    ("Idle", _count("idle")),
    ("Running", _count("running")),
    ("Preparing", _count("preparing")),
    ("Leaving", _count("leaving")),
    ("Unusable", _count("unusable")),
]


def scale_settings(target: int | None, min_: int | None, max_: int | None) -> dict[str, Any] | None:
    """The scale rules of `az batchai cluster create`."""
    if (min_ is None) != (max_ is None):
        raise CliError("give --min and --max together")
    if min_ is None or max_ is None:
        return {"manual": {"targetNodeCount": target}} if target is not None else None
    if min_ > max_:
        raise CliError(f"--min {min_} is greater than --max {max_}")
    if min_ == max_ and target in (None, min_):
        return {"manual": {"targetNodeCount": min_}}
    return {
        "autoScale": {
            "minimumNodeCount": min_,
            "maximumNodeCount": max_,
            "initialNodeCount": target or 0,
        }
    }


def _ssh_key(value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return path.read_text().strip() if path.is_file() else value


@app.command()
def create(
    name: Name,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    config_file: Annotated[
        Path | None,
        typer.Option(
            "-f", "--config-file", help="ClusterCreateParameters JSON; flags override it."
        ),
    ] = None,
    vm_size: Annotated[
        str | None, typer.Option("-s", "--vm-size", help="Node type (or a VM size alias).")
    ] = None,
    vm_priority: Annotated[
        str | None, typer.Option("--vm-priority", help="dedicated or lowpriority.")
    ] = None,
    target: Annotated[int | None, typer.Option("-t", "--target")] = None,
    min_: Annotated[int | None, typer.Option("--min")] = None,
    max_: Annotated[int | None, typer.Option("--max")] = None,
    setup_task: Annotated[str | None, typer.Option("--setup-task")] = None,
    setup_task_output: Annotated[str | None, typer.Option("--setup-task-output")] = None,
    user_name: Annotated[str | None, typer.Option("-u", "--user-name")] = None,
    ssh_key: Annotated[
        str | None, typer.Option("-k", "--ssh-key", help="Public key text or a .pub file.")
    ] = None,
    output: Output = Format.table,
) -> None:
    """Create a cluster (a Slurm partition of identical nodes)."""
    body: dict[str, Any] = {"properties": {}}
    if config_file is not None:
        body = json.loads(config_file.read_text())
        body.pop("$schema", None)
    props = body.setdefault("properties", {})
    if vm_size:
        props["vmSize"] = vm_size
    if vm_priority:
        props["vmPriority"] = vm_priority
    scale = scale_settings(target, min_, max_)
    if scale is not None:
        props["scaleSettings"] = scale
    elif "scaleSettings" not in props:
        raise CliError("give -t/--target, or --min and --max (or scaleSettings in -f)")
    account = props.setdefault("userAccountSettings", {})
    account["adminUserName"] = user_name or account.get("adminUserName") or getpass.getuser()
    key = _ssh_key(ssh_key)
    if key:
        account["adminUserSshPublicKey"] = key
    if setup_task:
        if not setup_task_output:
            raise CliError("--setup-task needs --setup-task-output (where its logs go)")
        props.setdefault("nodeSetup", {})["setupTask"] = {
            "commandLine": setup_task,
            "stdOutErrPathPrefix": setup_task_output,
        }
    path = f"{scope(resource_group).workspace(workspace)}/clusters/{name}"
    emit(Client().put(path, body), COLUMNS, output)


@app.command()
def show(
    name: Name,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    output: Output = Format.table,
) -> None:
    """Show a cluster with its node state counts."""
    emit(
        Client().get(f"{scope(resource_group).workspace(workspace)}/clusters/{name}"),
        COLUMNS,
        output,
    )


@app.command("list")
def list_(
    workspace: Workspace, resource_group: ResourceGroup = "default", output: Output = Format.table
) -> None:
    """List the clusters of a workspace."""
    path = f"{scope(resource_group).workspace(workspace)}/clusters"
    emit(list(Client().pages(path)), COLUMNS, output)


@app.command()
def resize(
    name: Name,
    workspace: Workspace,
    target: Annotated[int, typer.Option("-t", "--target")],
    resource_group: ResourceGroup = "default",
    output: Output = Format.table,
) -> None:
    """Set a fixed number of nodes."""
    path = f"{scope(resource_group).workspace(workspace)}/clusters/{name}"
    client = Client()
    current = client.get(path)["properties"].get("scaleSettings", {}).get("manual") or {}
    manual = {
        "targetNodeCount": target,
        "nodeDeallocationOption": current.get("nodeDeallocationOption", "requeue"),
    }
    emit(client.patch(path, {"properties": {"scaleSettings": {"manual": manual}}}), COLUMNS, output)


@app.command("auto-scale")
def auto_scale(
    name: Name,
    workspace: Workspace,
    min_: Annotated[int, typer.Option("--min")],
    max_: Annotated[int, typer.Option("--max")],
    resource_group: ResourceGroup = "default",
    output: Output = Format.table,
) -> None:
    """Let the cluster grow while jobs wait and shrink when nodes idle."""
    path = f"{scope(resource_group).workspace(workspace)}/clusters/{name}"
    body = {
        "properties": {
            "scaleSettings": {"autoScale": {"minimumNodeCount": min_, "maximumNodeCount": max_}}
        }
    }
    emit(Client().patch(path, body), COLUMNS, output)


@app.command()
def delete(
    name: Name,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    yes: Yes = False,
    no_wait: NoWait = False,
) -> None:
    """Delete a cluster (its jobs are cancelled, or waited for with waitforjobcompletion)."""
    confirm(f"cluster {name}", yes)
    Client().delete(
        f"{scope(resource_group).workspace(workspace)}/clusters/{name}", wait=not no_wait
    )


@node_app.command("list")
def node_list(
    cluster: Annotated[str, typer.Option("-c", "--cluster", help="Cluster name.")],
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    output: Output = Format.table,
) -> None:
    """Every node of a cluster with the IP address and port to SSH to."""
    base = scope(resource_group).workspace(workspace)
    path = f"{base}/clusters/{cluster}/listRemoteLoginInformation"
    nodes = list(Client().pages(path, method="POST"))
    emit(
        nodes,
        [("ID", prop("nodeId")), ("IP", prop("ipAddress")), ("SSH Port", prop("port"))],
        output,
    )
