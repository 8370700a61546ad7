"""The batch script of a `bai sbatch` job (pure): bai's node preparation, then the user's script.

Slurm runs this wrapper where it would have run the user's script, with the user's options on
sbatch's command line, so everything Slurm does with the job (output files, environment,
working directory, signals) is as for a plain sbatch. The wrapper adds what a bai job gets:
the cluster's mounts on every node, the AZ_BATCHAI_* variables, the execution log (outcome,
requeues, preemption notices, the low-priority cap), then runs the user's script, which bai
stored in the job's spool, with its arguments and standard input, and exits with its status.
It writes nothing to the job's standard output or error: those are the user's alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adapter.jobs.layout import JobLayout
from adapter.jobs.script import helper_lines, prepare_lines, teardown_lines
from adapter.scripts.shell import export, quote

SCRIPT_NAME = "script"  # the user's script, in the job's spool
NO_LIMIT_SECONDS = 10 * 365 * 24 * 3600  # a job without a time limit: TERM is never the limit's


@dataclass(frozen=True)
class SbatchWrapper:
    title: str
    uid: str
    layout: JobLayout
    array: bool  # a job array: each task keeps its own execution log
    time_limit_seconds: int | None
    capped: bool
    gpus_per_node: int
    node_addresses: Mapping[str, str]
    args: Sequence[str]
    user_volumes: bool
    # USR1 is the user's, not bai's preemption notice alone (which bai asks for on a
    # low-priority cluster when the user gave no --signal of their own).
    forward_usr1: bool = False


def _forwarding(usr1: bool) -> list[str]:
    """Signals sent to the batch shell (`--signal=B:...`, `scancel --batch -s ...`) are the
    user's script's: the wrapper passes them on. TERM and KILL reach every process of the job
    from Slurm itself; USR1 is also bai's preemption notice, always logged, and passed on
    unless bai alone asked for it (it would end a script that never traps it)."""
    notice = 'bai_log notice "\\"signal\\":\\"USR1\\""'
    lines = [
        "bai_forward() {",
        '  [ -n "$BAI_CHILD" ] && kill -s "$1" "$BAI_CHILD" 2>/dev/null',
        "  return 0",
        "}",
        "for bai_sig in HUP INT QUIT USR2 ALRM CONT WINCH URG; do",
        '  trap "bai_forward $bai_sig" "$bai_sig"',
        "done",
    ]
    if usr1:
        lines.append(f"trap '{notice}; bai_forward USR1' USR1")
    return lines


def execution_log(spool: str, task: int | None) -> str:
    """Where a run's events go: one log per job, or per task of an array."""
    return f"{spool}/execution.log" if task is None else f"{spool}/execution.{task}.log"


def render_sbatch_wrapper(job: SbatchWrapper) -> str:
    lay = job.layout
    log = (
        f'{quote(lay.spool)}"/execution.${{SLURM_ARRAY_TASK_ID}}.log"'
        if job.array
        else quote(lay.execution_log)
    )
    limit = job.time_limit_seconds or NO_LIMIT_SECONDS
    out = [
        "#!/bin/bash",
        f"# bai sbatch job {job.title.replace(chr(10), ' ')} ({job.uid}); rendered by bai: it",
        "# prepares the nodes as for every bai job, then runs your script as sbatch would have.",
        # --export=NONE leaves the batch shell without PATH on some sites.
        ': "${PATH:=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}"',
        "",
        "# -- bai",
        f"BAI_EXEC_LOG={log}",
        "BAI_STDOUTERR=",
        f"BAI_SPOOL={quote(lay.spool)}",
        f"BAI_PLAN={quote(lay.spool + '/plan.json')}",
        f"BAI_TIME_LIMIT={limit}",
        f"BAI_CAPPED={int(job.capped)}",
        f"BAI_GPUS={job.gpus_per_node}",
        "BAI_RUN_START=$(date +%s)",
        "BAI_CHILD=",
        "BAI_ENDED=",
        "declare -A BAI_NODE_ADDR=("
        + " ".join(f"[{quote(n)}]={quote(a)}" for n, a in sorted(job.node_addresses.items()))
        + ")",
        "",
        "# -- environment",
        export("AZ_BATCHAI_MOUNT_ROOT", lay.mount_root),
        export("AZ_BATCHAI_JOB_MOUNT_ROOT", lay.job_mount_root),
        export("AZ_BATCHAI_JOB_TEMP", lay.job_temp),
        export("AZ_BATCHAI_JOB_TEMP_DIR", lay.job_temp_dir),
        export("AZ_BATCHAI_SHARED_JOB_TEMP", lay.shared_temp),
        export("AZ_BATCHAI_MPI_HOST_FILE", lay.hostfile),
        export("AZ_BATCHAI_NUM_GPUS", str(job.gpus_per_node)),
    ]
    out += helper_lines()
    out += _forwarding(job.forward_usr1)
    out += teardown_lines(job.user_volumes, sbatch=True)
    out += prepare_lines(sbatch=True)
    out += [
        "",
        "# -- the hostfile, as for every bai job",
        'mkdir -p -- "$AZ_BATCHAI_SHARED_JOB_TEMP" 2>/dev/null',
        'for node in "${BAI_NODES[@]}"; do echo "$(bai_addr "$node") slots=$BAI_GPUS"; done'
        ' >"$AZ_BATCHAI_MPI_HOST_FILE" 2>/dev/null',
        "",
        "# -- your script, with its arguments and standard input, in the job's working directory",
        f'chmod u+x -- "$BAI_SPOOL/{SCRIPT_NAME}"',
        f'"$BAI_SPOOL/{SCRIPT_NAME}"' + "".join(f" {quote(a)}" for a in job.args) + " 0<&0 &",
        "BAI_CHILD=$!",
        'while :; do wait "$BAI_CHILD"; rc=$?; kill -0 "$BAI_CHILD" 2>/dev/null || break; done',
        "BAI_CHILD=",
        "bai_finish $rc",
        "",
    ]
    return "\n".join(out)
