"""The batch script that prepares a node joining a cluster (pure).

It runs as the cluster's admin user on the node, inside the node's setup reservation: installs
the admin's SSH key if one was given, then runs `nodeSetup.setupTask.commandLine` with its
environment, writing `stdout-<node>.txt` and `stderr-<node>.txt` under
`{stdOutErrPathPrefix}/{sub}/{rg}/workspaces/{ws}/clusters/{cluster}/{uuid}` as Batch AI did.
Its Slurm options are data (`setup_options`), as a job.json job's are, and its `#SBATCH` lines
are rendered from that value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from adapter.backends.slurm_options import SlurmOptions
from adapter.scripts.shell import export, quote


@dataclass(frozen=True)
class SetupJob:
    """What the setup script of one node needs to know."""

    partition: str
    node: str
    reservation: str
    comment: str
    output_dir: str | None  # already expanded, absolute; None: no setup task, no output
    mount_root: str
    command_line: str | None
    environment: Mapping[str, str]
    secrets_file: str | None  # 0600 file of `export NAME=value` lines, owned by the user
    ssh_public_key: str | None


def setup_output_suffix(sub: str, rg: str, ws: str, cluster: str, uid: str) -> str:
    """`stdOutErrPathSuffix` of a cluster's setup task."""
    return f"{sub}/{rg}/workspaces/{ws}/clusters/{cluster}/{uid}"


def render_setup(job: SetupJob) -> tuple[SlurmOptions, str]:
    """The setup job as a backend submits it: its Slurm options, and the script that carries
    them as its `#SBATCH` lines."""
    return setup_options(job), render_setup_script(job)


def setup_options(job: SetupJob) -> SlurmOptions:
    """One whole node, the one named, inside its setup reservation; the script writes its own
    output files (or none), so Slurm's goes nowhere."""
    return SlurmOptions(
        job_name="bai-setup",
        partition=job.partition,
        nodelist=job.node,
        reservation=job.reservation,
        nodes=1,
        exclusive=True,
        comment=job.comment,
        output="/dev/null",
    )


def render_setup_script(job: SetupJob) -> str:
    lines = [
        "#!/bin/bash",
        "# bai: node setup",
        *setup_options(job).directives(),
        "",
        "# environment",
        export("AZ_BATCHAI_MOUNT_ROOT", job.mount_root),
    ]
    lines += [export(name, value) for name, value in job.environment.items()]
    if job.secrets_file:
        lines += [f"set -a; . {quote(job.secrets_file)}; set +a"]
    if job.output_dir:
        lines += [
            "",
            "# output",
            f"out_dir={quote(job.output_dir)}",
            'mkdir -p -- "$out_dir" || exit 1',
            'exec >"$out_dir/stdout-$SLURMD_NODENAME.txt" 2>"$out_dir/stderr-$SLURMD_NODENAME.txt"',
        ]
    if job.ssh_public_key:
        key = quote(job.ssh_public_key)
        lines += [
            "",
            "# the admin user's SSH key",
            'mkdir -p -m 700 "$HOME/.ssh" && touch "$HOME/.ssh/authorized_keys" &&',
            '  chmod 600 "$HOME/.ssh/authorized_keys" || exit 1',
            f'grep -qxF {key} "$HOME/.ssh/authorized_keys" ||',
            f'  printf "%s\\n" {key} >>"$HOME/.ssh/authorized_keys" || exit 1',
        ]
    if job.command_line:
        lines += ["", "# setup task", f"exec bash -c {quote(job.command_line)}"]
    return "\n".join(lines) + "\n"
