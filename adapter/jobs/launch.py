"""How each Batch AI toolkit starts its processes on Slurm (pure; batchai.md 6-7).

Ranks and hosts come from Slurm: tasks are `srun` steps, a task's index is `$SLURM_PROCID`.
MPI toolkits form one world: `srun --mpi=<plugin>` (PMIx by default) gives every rank its place,
or the site's `mpirun`, for the toolkits the operator names, starts them (docs/jobs.md, "MPI").
Processes are not bound to CPUs (Batch AI did not bind them): a node runs more tasks than it has
CPUs when processCount asks for it. User command lines and arguments are shell text by Batch AI's
definition: they run as the job's user, in bash, after bai's own values were exported quoted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapter.scripts.shell import expand_path, quote

STDOUT = '"$BAI_STDOUTERR/stdout.txt"'
# Toolkits whose tasks write stdout-<task>.txt and stderr-<task>.txt (batchai.md 7).
PER_TASK_OUTPUT = frozenset({"pytorch", "caffe2", "tensorflow"})
STDERR = '"$BAI_STDOUTERR/stderr.txt"'


# A job without an image and without pythonInterpreterPath runs this interpreter, found on the
# node's own PATH when the task starts: Debian and RHEL nodes have python3, not always python.
FIND_PYTHON = '"$(command -v python3 || command -v python || echo python3)"'


@dataclass(frozen=True)
class Runtime:
    """How this site starts a job's processes (settings.jobs), and the nodes' CPU count."""

    srun_mpi: str = "pmix"
    # argv template of the site's mpirun: {processes} and {per_node} are filled in.
    mpirun: Sequence[str] = ()
    mpirun_toolkits: frozenset[str] = frozenset()
    python: str = ""  # '' : FIND_PYTHON
    cpus: int = 0  # CPUs per node; 0 when unknown


@dataclass(frozen=True)
class Launch:
    """The launch block of a job script, and the toolkit's own environment."""

    lines: Sequence[str]
    environment: Sequence[tuple[str, str]] = ()


def python_command(
    settings: Mapping[str, Any],
    args_key: str,
    variables: Mapping[str, str],
    field: str,
    interpreter: str = "python",
) -> str:
    """`<interpreter> <script> <args>`: bai expands the script path, the args stay shell.
    `interpreter` (shell text) is used when the job names none."""
    script = expand_path(
        settings["pythonScriptFilePath"], variables, field=f"{field}.pythonScriptFilePath"
    )
    named = settings.get("pythonInterpreterPath")
    args = settings.get(args_key) or ""
    return f"{quote(named) if named else interpreter} {quote(script)} {args}".rstrip()


def default_python(runtime: Runtime, image: bool) -> str:
    """The interpreter of a job that names none: an image's own `python` (as Batch AI ran it),
    else the operator's `jobs.python`, else python3 or python from the node's PATH."""
    if image:
        return "python"
    return quote(runtime.python) if runtime.python else FIND_PYTHON


def _container(prefix: bool) -> str:
    return '"${BAI_CONTAINER[@]}" ' if prefix else ""


def _srun(
    tasks: int,
    nodes: int,
    output: str,
    error: str,
    command: str,
    *,
    mpi: str | None = None,
    per_node: int | None = None,
    container: bool = False,
    cpus: int = 0,
) -> str:
    per = per_node or math.ceil(tasks / nodes)
    used = min(nodes, math.ceil(tasks / per))
    mpi_opt = f" --mpi={quote(mpi)}" if mpi else ""
    # More tasks on a node than it has CPUs: Slurm refuses the step unless told to share them.
    over = " --overcommit" if cpus and per > cpus else ""
    return (
        f"bai_run srun --overlap --nodes={used} --ntasks={tasks} --ntasks-per-node={per}"
        f"{mpi_opt}{over} --open-mode=append --output={output} --error={error} "
        f"{_container(container)}bash -c {quote(command)}"
    )


def _mpi(tool: str, tasks: int, nodes: int, command: str, runtime: Runtime, container: bool) -> str:
    """One MPI world of `tasks` ranks, stdout.txt and stderr.txt: srun with the site's MPI
    plugin, or the site's mpirun for the toolkits it is configured for. mpirun starts its
    daemons through Slurm within the job and gathers the ranks' output on the batch shell's,
    which is already stdout.txt and stderr.txt."""
    if tool not in runtime.mpirun_toolkits:
        return _srun(
            tasks,
            nodes,
            STDOUT,
            STDERR,
            command,
            mpi=runtime.srun_mpi,
            container=container,
            cpus=runtime.cpus,
        )
    fill = {"processes": str(tasks), "per_node": str(math.ceil(tasks / nodes))}
    argv = " ".join(quote(word.format(**fill)) for word in runtime.mpirun)
    return f"bai_run {argv} {_container(container)}bash -c {quote(command)}"


def launch_for(
    tool: str,
    settings: Mapping[str, Any],
    *,
    nodes: int,
    gpus: int,
    variables: Mapping[str, str],
    runtime: Runtime,
    container: bool,
    image: bool,
    field: str,
) -> Launch:
    """The launch of one toolkit. `container`: its processes start under the site's container
    command; `image`: the job names an image (its processes find the image's python)."""
    c = container
    py = default_python(runtime, image)
    if tool == "custom":
        command = settings.get("commandLine") or "true"
        return Launch([f"bai_run {_container(c)}bash -c {quote(command)}"])
    if tool == "custommpi":
        procs = settings.get("processCount") or nodes
        return Launch([_mpi(tool, procs, nodes, settings["commandLine"], runtime, c)])
    if tool in {"horovod", "chainer"}:
        procs = settings.get("processCount") or nodes
        command = "exec " + python_command(settings, "commandLineArgs", variables, field, py)
        return Launch([_mpi(tool, procs, nodes, command, runtime, c)])
    if tool == "cntk":
        procs = settings.get("processCount") or nodes
        if settings.get("pythonScriptFilePath"):
            command = "exec " + python_command(settings, "commandLineArgs", variables, field, py)
        else:
            config = expand_path(
                settings["configFilePath"], variables, field=f"{field}.configFilePath"
            )
            command = (
                f"exec cntk configFile={quote(config)} {settings.get('commandLineArgs') or ''}"
            )
        return Launch([_mpi(tool, procs, nodes, command.rstrip(), runtime, c)])
    if tool == "caffe":
        procs = settings.get("processCount") or 1
        if settings.get("pythonScriptFilePath"):
            command = "exec " + python_command(settings, "commandLineArgs", variables, field, py)
        else:
            config = expand_path(
                settings["configFilePath"], variables, field=f"{field}.configFilePath"
            )
            args = settings.get("commandLineArgs") or ""
            command = f"exec caffe train --solver={quote(config)} {args}".rstrip()
        if procs == 1:
            return Launch([f"bai_run {_container(c)}bash -c {quote(command)}"])
        return Launch([_mpi(tool, procs, nodes, command, runtime, c)])
    if tool in {"pytorch", "caffe2"}:
        procs = nodes if tool == "caffe2" else (settings.get("processCount") or nodes)
        per_node = 1 if tool == "caffe2" else None
        command = "export AZ_BATCHAI_TASK_INDEX=$SLURM_PROCID; exec " + python_command(
            settings, "commandLineArgs", variables, field, py
        )
        env: list[tuple[str, str]] = []
        if tool == "pytorch":
            env = [
                (
                    "AZ_BATCHAI_PYTORCH_INIT_METHOD",
                    f"file://{variables['AZ_BATCHAI_SHARED_JOB_TEMP']}/pytorch_init",
                )
            ]
            if settings.get("communicationBackend"):
                env.append(("AZ_BATCHAI_PYTORCH_BACKEND", settings["communicationBackend"]))
        line = _srun(
            procs,
            nodes,
            '"$BAI_STDOUTERR/stdout-%t.txt"',
            '"$BAI_STDOUTERR/stderr-%t.txt"',
            command,
            per_node=per_node,
            container=c,
            cpus=runtime.cpus,
        )
        # A rerun after a requeue needs a fresh file for torch's file:// rendezvous.
        return Launch(['rm -f "$AZ_BATCHAI_SHARED_JOB_TEMP/pytorch_init"', line], env)
    if tool == "tensorflow":
        return _tensorflow(
            settings,
            nodes=nodes,
            gpus=gpus,
            variables=variables,
            container=c,
            python=py,
            field=field,
        )
    raise ValueError(f"unknown toolkit {tool}")


def _tensorflow(
    settings: Mapping[str, Any],
    *,
    nodes: int,
    gpus: int,
    variables: Mapping[str, str],
    container: bool,
    python: str,
    field: str,
) -> Launch:
    """Parameter servers and workers as separate steps, placed and ported as Batch AI did:
    task k of a role on node k mod N; the first task on a node gets port 2222, the next 2223."""
    workers = settings.get("workerCount") or nodes
    ps = settings.get("parameterServerCount")
    if ps is None:
        ps = 1 if (nodes > 1 or workers > 1) else 0
    roles = {
        "master": python_command(settings, "masterCommandLineArgs", variables, field, python),
        "worker": python_command(settings, "workerCommandLineArgs", variables, field, python),
        "ps": python_command(settings, "parameterServerCommandLineArgs", variables, field, python),
    }
    c = _container(container)
    lines = [
        "declare -A bai_port=()",
        "bai_place() {  # role count -> sets BAI_TASK_NODES and BAI_TASK_HOSTS",
        "  BAI_TASK_NODES=(); BAI_TASK_HOSTS=()",
        "  local i node port; for ((i = 0; i < $1; i++)); do",
        "    node=${BAI_NODES[i % ${#BAI_NODES[@]}]}; port=${bai_port[$node]:-2222}",
        '    bai_port[$node]=$((port + 1)); BAI_TASK_NODES+=("$node")',
        '    BAI_TASK_HOSTS+=("$(bai_addr "$node"):$port")',
        "  done",
        "}",
        f"bai_place {ps}",
        'ps_nodes=("${BAI_TASK_NODES[@]}"); ps_hosts=("${BAI_TASK_HOSTS[@]}")',
        f"bai_place {workers}",
        'wk_nodes=("${BAI_TASK_NODES[@]}"); wk_hosts=("${BAI_TASK_HOSTS[@]}")',
        'export AZ_BATCHAI_PS_HOSTS=$(IFS=,; echo "${ps_hosts[*]}")',
        'export AZ_BATCHAI_WORKER_HOSTS=$(IFS=,; echo "${wk_hosts[*]}")',
        "bai_json_list() {",
        '  local out="" h; for h in "$@"; do out+="${out:+,}\\"$h\\""; done; echo "[$out]"',
        "}",
        'bai_cluster="{\\"ps\\":$(bai_json_list "${ps_hosts[@]}"),'
        '\\"worker\\":$(bai_json_list "${wk_hosts[@]}"),'
        '\\"master\\":$(bai_json_list "${wk_hosts[0]}")}"',
        "bai_tf_task() {  # role index node output-name command",
        '  local type=$1; [ "$1" = worker ] && [ "$2" -eq 0 ] && type=master',
        '  local tf="{\\"cluster\\":$bai_cluster,\\"task\\":{\\"type\\":\\"$type\\",'
        '\\"index\\":$2},\\"environment\\":\\"cloud\\"}"',
        '  local envs=("AZ_BATCHAI_TASK_INDEX=$2")',
        '  if [ "$ps_count" -gt 0 ] || [ "$wk_count" -gt 1 ]; then envs+=("TF_CONFIG=$tf"); fi',
        '  srun --overlap --nodes=1 --ntasks=1 --nodelist="$3" \\',
        '    --output="$BAI_STDOUTERR/stdout-$4.txt" --error="$BAI_STDOUTERR/stderr-$4.txt" \\',
        f'    {c}env "${{envs[@]}}" bash -c "$5"',
        "}",
        f"ps_count={ps}; wk_count={workers}",
        "ps_pids=()",
        f"cmd_ps={quote('exec ' + roles['ps'])}",
        f"cmd_master={quote('exec ' + roles['master'])}",
        f"cmd_worker={quote('exec ' + roles['worker'])}",
        "for ((i = 0; i < ps_count; i++)); do",
        '  bai_tf_task ps "$i" "${ps_nodes[i]}" "ps-$i" "$cmd_ps" & ps_pids+=($!)',
        "done",
        "bai_workers() {",
        "  local pids=() i rc=0",
        "  for ((i = 0; i < wk_count; i++)); do",
        '    cmd=$cmd_worker; [ "$i" -eq 0 ] && cmd=$cmd_master',
        '    bai_tf_task worker "$i" "${wk_nodes[i]}" "wk-$i" "$cmd" & pids+=($!)',
        "  done",
        '  for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done',
        "  return $rc",
        "}",
        "bai_run bai_workers",
        "rc=$?",
        "# Parameter servers serve forever; they end when the workers are done.",
        'for pid in "${ps_pids[@]}"; do kill "$pid" 2>/dev/null; done; wait',
        "(exit $rc)",
    ]
    return Launch(lines)
