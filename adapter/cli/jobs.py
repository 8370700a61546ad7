"""`bai job create/show/list/wait/terminate/delete` and `bai job node list`."""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from adapter.cli import job_files
from adapter.cli.client import Client, CliError, Scope
from adapter.cli.common import (
    Experiment,
    JobName,
    NoWait,
    Output,
    ResourceGroup,
    Workspace,
    Yes,
    confirm,
    job_path,
    scope,
)
from adapter.cli.output import Format, emit, prop

app = typer.Typer(help="Jobs: programs run on the nodes of a cluster.", no_args_is_help=True)
node_app = typer.Typer(help="Nodes a job runs on.", no_args_is_help=True)
app.add_typer(job_files.app, name="file")
app.add_typer(node_app, name="node")

Name = Annotated[str, typer.Option("-n", "--name", help="Job name.")]


def _state(job: dict[str, Any]) -> str:
    props = job.get("properties", {})
    return (
        "deleting"
        if props.get("provisioningState") == "deleting"
        else props.get("executionState", "")
    )


def _info(*key: str) -> Any:
    return prop("properties", "executionInfo", *key)


COLUMNS = [
    ("Name", prop("name")),
    ("Cluster", lambda j: (prop("properties", "cluster", "id")(j) or "").rsplit("/", 1)[-1]),
    ("Tool", prop("properties", "toolType")),
    ("Nodes", prop("properties", "nodeCount")),
    ("State", _state),
    ("Exit code", _info("exitCode")),
    ("Preempted", _info("preemptionCount")),
]

# The tasks of a job array that `bai sbatch --array` submitted.
TASK_COLUMNS = [
    ("Task", prop("index")),
    ("State", prop("state")),
    ("Exit code", prop("exitCode")),
    ("Slurm job", prop("slurmJobId")),
]


def cluster_id(cluster: str, workspace_scope: Scope, workspace: str) -> str:
    """`-c`: an ARM id as is, or the name of a cluster in the job's workspace."""
    if cluster.startswith("/subscriptions/"):
        return cluster
    if not cluster or "/" in cluster:
        raise CliError(
            f"-c {cluster!r} is neither a cluster name nor an ARM id; give a cluster name "
            "from `bai cluster list` or an id starting with /subscriptions/"
        )
    return f"{workspace_scope.workspace(workspace)}/clusters/{cluster}"


def job_body(
    raw: Any, cluster: str | None, nodes: int | None, workspace_scope: Scope, workspace: str
) -> dict[str, Any]:
    """JobCreateParameters from the -f file, with -c and --nodes applied."""
    if not isinstance(raw, dict) or not isinstance(raw.get("properties", {}), dict):
        raise CliError('the job file must be a JSON object like {"properties": {...}}')
    body: dict[str, Any] = copy.deepcopy(raw)
    body.pop("$schema", None)
    props = body.setdefault("properties", {})
    if cluster is not None:
        props["cluster"] = {"id": cluster_id(cluster, workspace_scope, workspace)}
    elif not isinstance(props.get("cluster"), dict) or not props["cluster"].get("id"):
        raise CliError("give -c/--cluster (a cluster name or ARM id): the job file has no cluster")
    if nodes is not None:
        if nodes < 1:
            raise CliError(f"--nodes {nodes} must be 1 or more")
        props["nodeCount"] = nodes
    return body


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}; check the -f path") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}; fix the file") from None


@app.command()
def create(
    name: Name,
    experiment: Experiment,
    workspace: Workspace,
    config_file: Annotated[
        Path, typer.Option("-f", "--config-file", help="JobCreateParameters JSON.")
    ],
    cluster: Annotated[
        str | None,
        typer.Option("-c", "--cluster", help="Cluster name (same workspace) or ARM id."),
    ] = None,
    nodes: Annotated[
        int | None, typer.Option("--nodes", help="Overrides properties.nodeCount.")
    ] = None,
    resource_group: ResourceGroup = "default",
    output: Output = Format.table,
) -> None:
    """Submit a job to a cluster."""
    ws_scope = scope(resource_group)
    body = job_body(_read_json(config_file), cluster, nodes, ws_scope, workspace)
    path = job_path(resource_group, workspace, experiment, name)
    emit(Client().put(path, body), COLUMNS, output)


@app.command()
def show(
    name: Name,
    experiment: Experiment,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    output: Output = Format.table,
) -> None:
    """Show a job with its state and exit code (and each task's, for a job array)."""
    job = Client().get(job_path(resource_group, workspace, experiment, name))
    emit(job, COLUMNS, output)
    tasks = prop("properties", "sbatch", "tasks")(job)
    if tasks and output != Format.json:
        emit(tasks, TASK_COLUMNS, output)


@app.command("list")
def list_(
    experiment: Experiment,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    output: Output = Format.table,
) -> None:
    """List the jobs of an experiment."""
    path = job_path(resource_group, workspace, experiment, "").rstrip("/")
    emit(list(Client().pages(path)), COLUMNS, output)


@app.command()
def terminate(
    name: Name,
    experiment: Experiment,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    yes: Yes = False,
    no_wait: NoWait = False,
) -> None:
    """Stop a queued or running job (it ends as failed); a finished job is left as is."""
    if not yes and not typer.confirm(f"Terminate job {name}?"):
        raise typer.Abort()
    path = job_path(resource_group, workspace, experiment, name)
    Client().post_and_wait(f"{path}/terminate", wait=not no_wait)


@app.command()
def delete(
    name: Name,
    experiment: Experiment,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    yes: Yes = False,
    no_wait: NoWait = False,
) -> None:
    """Delete a job (terminated first if it is running) with its record."""
    confirm(f"job {name}", yes)
    Client().delete(job_path(resource_group, workspace, experiment, name), wait=not no_wait)


def wait_exit_code(job: dict[str, Any]) -> int | None:
    """None while the job is not finished, else the code `bai job wait` exits with."""
    props = job.get("properties", {})
    state = props.get("executionState")
    if state == "succeeded":
        return 0
    if state != "failed":
        return None
    code = (props.get("executionInfo") or {}).get("exitCode")
    # A shell sees code % 256: a multiple of 256 would read as success.
    if isinstance(code, int) and not isinstance(code, bool) and code % 256:
        return code
    return 1


def progress_line(elapsed: float, name: str, state: str, preemptions: int | None) -> str:
    """`[0:01:05] job1: queued, preempted 2 times`; preemptions only when the count rose."""
    minutes, seconds = divmod(int(elapsed), 60)
    hours, minutes = divmod(minutes, 60)
    line = f"[{hours}:{minutes:02d}:{seconds:02d}] {name}: {state}"
    if preemptions:
        line += f", preempted {preemptions} time{'s' if preemptions > 1 else ''}"
    return line


@app.command()
def wait(
    name: Name,
    experiment: Experiment,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between polls.", min=0.1)
    ] = 15,
) -> None:
    """Wait for a job to finish; exit 0 if it succeeded, else with its exit code."""
    client = Client()
    path = job_path(resource_group, workspace, experiment, name)
    started = time.monotonic()
    last_state, last_preemptions = "", 0
    while True:
        job = client.get(path)
        state = _state(job)
        preemptions = int(_info("preemptionCount")(job) or 0)
        rose = preemptions > last_preemptions
        if state != last_state or rose:
            elapsed = time.monotonic() - started
            print(progress_line(elapsed, name, state, preemptions if rose else None), flush=True)
        last_state, last_preemptions = state, max(preemptions, last_preemptions)
        code = wait_exit_code(job)
        if code is not None:
            break
        time.sleep(interval)
    if code:
        errors = _info("errors")(job) or []
        for error in errors:
            print(f"{error.get('code', 'Error')}: {error.get('message', '')}", file=sys.stderr)
        if not errors:
            print(f"job {name} failed with exit code {code}", file=sys.stderr)
        raise SystemExit(code)


@node_app.command("list")
def node_list(
    job: JobName,
    experiment: Experiment,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    output: Output = Format.table,
) -> None:
    """The nodes a job runs on with the IP address and port to SSH to."""
    path = f"{job_path(resource_group, workspace, experiment, job)}/listRemoteLoginInformation"
    nodes = list(Client().pages(path, method="POST"))
    emit(
        nodes,
        [("ID", prop("nodeId")), ("IP", prop("ipAddress")), ("SSH Port", prop("port"))],
        output,
    )
