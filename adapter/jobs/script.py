"""A Batch AI job rendered as one sbatch script (pure: data in, text out; DESIGN.md 5).

The script has fixed, labelled blocks: directives, bai's own variables, environment, helpers,
node preparation (mounts, on every node), directories and logs, job preparation, the toolkit
launch, and the exit record. Every value from a request goes through `adapter.scripts.shell`.
The script itself writes execution.log, so outcomes survive bai being down when the job ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from adapter.backends.slurm_options import SlurmOptions
from adapter.jobs.launch import Launch
from adapter.jobs.layout import JobLayout
from adapter.scripts.shell import export, quote

NICE = {"high": 0, "normal": 1000, "low": 2000}
HELPER = "/usr/local/libexec/bai/bai-node-helper"


@dataclass(frozen=True)
class JobScript:
    """Everything the script of one job needs, already validated and resolved."""

    title: str  # rg/ws/experiment/job, for the header comment
    uid: str
    name: str
    partition: str
    nodes: int
    gpu_type: str | None
    gpus_per_node: int
    time_limit_minutes: int
    capped: bool  # the low-priority cap shortened the requested wall clock time
    priority: str  # low | normal | high
    low_priority: bool
    grace_seconds: int
    layout: JobLayout
    environment: Sequence[tuple[str, str]]  # user environmentVariables, in order
    secrets_file: str | None
    plan_file: str  # the node helper's plan (<spool>/plan.json): job temp, mount roots, volumes
    node_addresses: Mapping[str, str]
    launch: Launch
    job_preparation: str | None
    container_prefix: Sequence[str] = ()
    image_not_used: str | None = None  # the image named by a job run on the host runtime
    host_path: Sequence[str] = field(default_factory=tuple)
    user_volumes: bool = False  # local or rclone volumes, which `teardown` undoes at the end
    # The group that may read the job's stdouterr and outputs (of a shared workspace), else only
    # the job's user may.
    share_group: str | None = None


def render_job_script(job: JobScript) -> str:
    lay = job.layout
    out: list[str] = [
        "#!/bin/bash",
        f"# bai job {_comment(job.title)} ({job.uid}); rendered by bai",
    ]
    out += _directives(job)
    out += [
        "",
        "# -- bai",
        f"BAI_EXEC_LOG={quote(lay.execution_log)}",
        f"BAI_STDOUTERR={quote(lay.stdouterr)}",
        f"BAI_SPOOL={quote(lay.spool)}",
        f"BAI_PLAN={quote(job.plan_file)}",
        f"BAI_TIME_LIMIT={job.time_limit_minutes * 60}",
        f"BAI_CAPPED={int(job.capped)}",
        f"BAI_GPUS={job.gpus_per_node}",
        "BAI_RUN_START=$(date +%s)",
        "BAI_CHILD=",
        "BAI_ENDED=",
        f"BAI_CONTAINER=({' '.join(quote(w) for w in job.container_prefix)})",
        "declare -A BAI_NODE_ADDR=("
        + " ".join(f"[{quote(n)}]={quote(a)}" for n, a in sorted(job.node_addresses.items()))
        + ")",
        "",
        "# -- environment",
    ]
    out += [export(name, value) for name, value in _batchai_environment(job)]
    out += [export(name, value) for name, value in job.environment]
    if job.secrets_file:
        out.append(f"set -a; . {quote(job.secrets_file)}; set +a")
    if job.image_not_used and job.host_path:
        out.append(f'export PATH={quote(":".join(job.host_path))}:"$PATH"')
    out += helper_lines()
    out += teardown_lines(job.user_volumes)
    out += prepare_lines()
    out += _directories(job)
    if job.job_preparation is not None:
        out += _job_preparation(job)
    out += ["", "# -- launch", *job.launch.lines, "bai_finish $?", ""]
    return "\n".join(out)


def render_job(job: JobScript) -> tuple[SlurmOptions, str]:
    """The job as a backend submits it: its Slurm options, and the script that carries them as
    its `#SBATCH` lines (what sbatch reads, and what the job's record shows)."""
    return slurm_options(job), render_job_script(job)


def slurm_options(job: JobScript) -> SlurmOptions:
    """The job's Slurm options as data; in-process submission takes them as they are."""
    gres = f"gpu:{job.gpu_type}:{job.gpus_per_node}" if job.gpus_per_node and job.gpu_type else None
    return SlurmOptions(
        job_name=job.name,
        partition=job.partition,
        nodes=job.nodes,
        exclusive=True,
        gres=gres,
        time_minutes=job.time_limit_minutes,
        nice=NICE[job.priority],
        comment=f"bai:{job.uid}",
        chdir=job.layout.spool,
        output=f"{job.layout.spool}/slurm.out",
        requeue=True,
        # The batch shell gets USR1 when the job is preempted (preempt_send_user_signal) or
        # this long before the time limit; it logs the notice and keeps going.
        signal="USR1" if job.low_priority else None,
        signal_seconds=job.grace_seconds if job.low_priority else 60,
    )


def _directives(job: JobScript) -> list[str]:
    return slurm_options(job).directives()


def _batchai_environment(job: JobScript) -> list[tuple[str, str]]:
    lay = job.layout
    env = [
        ("AZ_BATCHAI_MOUNT_ROOT", lay.mount_root),
        ("AZ_BATCHAI_JOB_MOUNT_ROOT", lay.job_mount_root),
        ("AZ_BATCHAI_JOB_TEMP", lay.job_temp),
        ("AZ_BATCHAI_JOB_TEMP_DIR", lay.job_temp_dir),
        ("AZ_BATCHAI_SHARED_JOB_TEMP", lay.shared_temp),
        ("AZ_BATCHAI_STDOUTERR_DIR", lay.stdouterr),
        ("AZ_BATCHAI_MPI_HOST_FILE", lay.hostfile),
        ("AZ_BATCHAI_NUM_GPUS", str(job.gpus_per_node)),
    ]
    env += [(f"AZ_BATCHAI_INPUT_{k}", v) for k, v in sorted(lay.inputs.items())]
    env += [(f"AZ_BATCHAI_OUTPUT_{k}", v) for k, v in sorted(lay.outputs.items())]
    env += list(job.launch.environment)
    return env


def teardown_lines(user_volumes: bool, *, sbatch: bool = False) -> list[str]:
    """User-level volumes are undone on every node when the script exits, however it exits.
    `sbatch`: as prepare_lines (no job step on one node, standard input left alone)."""
    if not user_volumes:
        return []
    every = [
        '  srun --overlap --ntasks-per-node=1 --nodes="$SLURM_JOB_NUM_NODES" \\',
        f'    --output=/dev/null {HELPER} teardown "$BAI_PLAN" >/dev/null 2>&1',
    ]
    if sbatch:
        every = [
            '  if [ "$SLURM_JOB_NUM_NODES" -eq 1 ]; then',
            f'    {HELPER} teardown "$BAI_PLAN" </dev/null >/dev/null 2>&1',
            "  else",
            '    srun --overlap --input=none --ntasks-per-node=1 --nodes="$SLURM_JOB_NUM_NODES" \\',
            f'      --output=/dev/null {HELPER} teardown "$BAI_PLAN" >/dev/null 2>&1',
            "  fi",
        ]
    return ["bai_teardown() {", *every, "}", "trap bai_teardown EXIT"]


def helper_lines() -> list[str]:
    # JSON lines; every value bai puts in is a number or a fixed word.
    return [
        "",
        "# -- helpers",
        "bai_log() {",
        '  local line; line=$(printf \'{"time":"%s","event":"%s","run":%s%s}\' '
        '"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "${SLURM_RESTART_COUNT:-0}" "${2:+,$2}")',
        '  printf "%s\\n" "$line" >>"$BAI_EXEC_LOG"',
        '  if [ -d "$BAI_STDOUTERR" ]; then',
        '    printf "%s\\n" "$line" >>"$BAI_STDOUTERR/execution.log"',
        "  fi",
        "}",
        "bai_end() {  # exit code, error code ('' when none), extra JSON fields",
        '  [ -n "$BAI_ENDED" ] && return',
        "  BAI_ENDED=1",
        '  bai_log end "\\"exit\\":$1,\\"error\\":\\"$2\\"${3:+,$3}"',
        "}",
        "bai_finish() {",
        '  if [ "$1" -eq 0 ]; then bai_end 0 ""; else bai_end "$1" JobFailed; fi',
        '  exit "$1"',
        "}",
        "bai_run() {  # run in the background, so the traps below fire while it runs",
        '  "$@" & BAI_CHILD=$!',
        "  local rc",
        '  while :; do wait "$BAI_CHILD"; rc=$?; kill -0 "$BAI_CHILD" 2>/dev/null || break; done',
        "  BAI_CHILD=",
        "  return $rc",
        "}",
        "bai_on_term() {",
        "  local elapsed=$(( $(date +%s) - BAI_RUN_START ))",
        "  local slack=$(( BAI_TIME_LIMIT / 4 < 60 ? BAI_TIME_LIMIT / 4 : 60 ))",
        "  if [ $elapsed -ge $(( BAI_TIME_LIMIT - slack )) ]; then",
        "    if [ $BAI_CAPPED -eq 1 ]; then bai_end 143 LowPriorityTimeLimitExceeded;",
        "    else bai_end 143 MaxWallClockTimeExceeded; fi",
        "  else",
        '    bai_log signal "\\"signal\\":\\"TERM\\""',
        "  fi",
        "}",
        'trap \'bai_log notice "\\"signal\\":\\"USR1\\""\' USR1',
        "trap bai_on_term TERM",
        'mapfile -t BAI_NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")',
        'bai_addr() { echo "${BAI_NODE_ADDR[$1]:-$1}"; }',
        'bai_log start "\\"nodes\\":$SLURM_JOB_NUM_NODES"',
    ]


def prepare_lines(*, sbatch: bool = False) -> list[str]:
    """The root Prolog made the job temp and the mount roots; `prepare` checks they are the
    Prolog's (exit 3 if not) and mounts the user-level volumes (exit 1, with mount-error).

    `sbatch` (a `bai sbatch` job): the batch script's standard input is the user's, so the
    step does not read it, and a one-node job prepares in the batch shell, without a step of
    its own, so the user's steps are numbered from 0 as in a plain sbatch."""
    every = [
        'srun --overlap --ntasks-per-node=1 --nodes="$SLURM_JOB_NUM_NODES" \\',
        f'  --output="$BAI_SPOOL/prepare-%n.out" {HELPER} prepare "$BAI_PLAN"',
    ]
    if sbatch:
        every = [
            'if [ "$SLURM_JOB_NUM_NODES" -eq 1 ]; then',
            f'  {HELPER} prepare "$BAI_PLAN" </dev/null >"$BAI_SPOOL/prepare-0.out" 2>&1',
            "else",
            '  srun --overlap --input=none --ntasks-per-node=1 --nodes="$SLURM_JOB_NUM_NODES" \\',
            f'    --output="$BAI_SPOOL/prepare-%n.out" {HELPER} prepare "$BAI_PLAN"',
            "fi",
        ]
    return [
        "",
        "# -- every node: job temp, mount roots, volumes",
        *every,
        "rc=$?",
        "if [ $rc -eq 3 ]; then",
        '  bai_end 1 NodePreparationFailed "\\"detail\\":\\"see $BAI_SPOOL/mount-error\\""',
        "  exit 1",
        "elif [ $rc -ne 0 ]; then",
        '  bai_end 1 VolumeMountFailed "\\"detail\\":\\"see $BAI_SPOOL/mount-error\\""',
        "  exit 1",
        "fi",
    ]


def _directories(job: JobScript) -> list[str]:
    lay = job.layout
    dirs = " ".join(quote(d) for d in [lay.stdouterr, lay.shared_temp, *lay.outputs.values()])
    fail = "{ bai_end 1 OutputDirectoryFailed; exit 1; }"
    lines = [
        "",
        "# -- directories and logs (outputs exist, owned by the job user, before the job runs)",
        f"mkdir -p -- {' '.join(quote(p) for p in lay.prefixes())} || {fail}",
        # The levels from <sub> to <job> are every user's (sticky, as /tmp): another user's
        # job under the same prefix makes its own beside them. The job's own directory, below,
        # is closed.
        f"for d in {' '.join(quote(d) for d in lay.namespace_dirs())}; do",
        f'  [ -d "$d" ] || mkdir -m 1777 -- "$d" 2>/dev/null || [ -d "$d" ] || {fail}',
        "done",
        f"mkdir -p -- {dirs} || {fail}",
        *_private(job),
        'cp -f "$BAI_EXEC_LOG" "$BAI_STDOUTERR/execution.log"',
        'exec >>"$BAI_STDOUTERR/stdout.txt" 2>>"$BAI_STDOUTERR/stderr.txt"',
        'cd "$AZ_BATCHAI_JOB_TEMP" || exit 1',
        'for node in "${BAI_NODES[@]}"; do echo "$(bai_addr "$node") slots=$BAI_GPUS"; done'
        ' >"$AZ_BATCHAI_MPI_HOST_FILE"',
    ]
    if job.image_not_used:
        lines.append(
            f'bai_log image_not_used "\\"note\\":\\"container_runtime is host: the image '
            f'was not used\\""  # image: {_comment(job.image_not_used)}'
        )
    return lines


def _private(job: JobScript) -> list[str]:
    """The job's own directories: its user's alone, or its shared workspace group's too."""
    own = " ".join(quote(d) for d in job.layout.own_dirs())
    if job.share_group is None:
        return [f"chmod 0700 -- {own} || {{ bai_end 1 OutputDirectoryFailed; exit 1; }}"]
    return [
        f"chgrp -- {quote(job.share_group)} {own} && chmod 2750 -- {own} ||"
        " { bai_end 1 OutputDirectoryFailed; exit 1; }"
    ]


def _job_preparation(job: JobScript) -> list[str]:
    prefix = '"${BAI_CONTAINER[@]}" ' if job.container_prefix else ""
    return [
        "",
        "# -- job preparation, on every node",
        'bai_run srun --overlap --ntasks-per-node=1 --nodes="$SLURM_JOB_NUM_NODES" \\',
        '  --open-mode=append --output="$BAI_STDOUTERR/stdout-job_prep.txt" \\',
        '  --error="$BAI_STDOUTERR/stderr-job_prep.txt" \\',
        f"  {prefix}bash -c {quote(job.job_preparation or '')}",
        "rc=$?",
        'bai_log job_prep "\\"exit\\":$rc"',
        'if [ $rc -ne 0 ]; then bai_end "$rc" JobPreparationFailed; exit "$rc"; fi',
    ]


def _comment(text: str) -> str:
    return text.replace("\n", " ")
