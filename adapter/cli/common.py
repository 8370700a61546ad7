"""Options shared by the CLI commands (the `az batchai` spellings)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from adapter.cli.client import DEFAULT_SUBSCRIPTION, Scope
from adapter.cli.output import Format

ResourceGroup = Annotated[
    str,
    typer.Option(
        "-g",
        "--resource-group",
        envvar="BAI_RESOURCE_GROUP",
        help="Resource group (a namespace in bai).",
    ),
]
Workspace = Annotated[str, typer.Option("-w", "--workspace", help="Workspace name.")]
Experiment = Annotated[str, typer.Option("-e", "--experiment", help="Experiment name.")]
JobName = Annotated[str, typer.Option("-j", "--job", help="Job name.")]
Output = Annotated[Format, typer.Option("-o", "--output", help="table or json.")]
Yes = Annotated[bool, typer.Option("-y", "--yes", help="Do not ask for confirmation.")]
NoWait = Annotated[
    bool, typer.Option("--no-wait", help="Return once accepted; do not wait for the operation.")
]


def scope(resource_group: str) -> Scope:
    return Scope(os.environ.get("BAI_SUBSCRIPTION", DEFAULT_SUBSCRIPTION), resource_group)


def job_path(resource_group: str, workspace: str, experiment: str, job: str) -> str:
    return f"{scope(resource_group).workspace(workspace)}/experiments/{experiment}/jobs/{job}"


def confirm(what: str, yes: bool) -> None:
    if not yes and not typer.confirm(f"Delete {what}?"):
        raise typer.Abort()
