"""Every option sbatch 22.05 accepts, and what `bai sbatch` does with each.

The order of OPTIONS is sbatch's own (src/common/slurm_opt.c, common_options): getopt_long lists
the candidates of an ambiguous prefix in table order, so the order is part of sbatch's messages.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Treatment = Literal["translated", "passed", "refused"]
Arg = Literal["none", "required", "optional"]

TRY_HELP = 'Try "sbatch --help" for more information'


class SbatchError(Exception):
    """What sbatch would print on stderr before exiting with `code`."""

    def __init__(self, *lines: str, code: int = 1) -> None:
        super().__init__("\n".join(lines))
        self.lines: tuple[str, ...] = lines
        self.code = code


class Option(NamedTuple):
    """One long option of sbatch's getopt table (or bai's own, `bai_only`)."""

    name: str
    short: str | None
    arg: Arg
    env: str | None
    treatment: Treatment
    note: str
    bai_only: bool = False
    # Another name for the same option in sbatch's table (same getopt value).
    alias_of: str | None = None


_T: Treatment = "translated"
_P: Treatment = "passed"
_R: Treatment = "refused"
_SBATCH = "use plain sbatch"
_AS_IS = "given to sbatch as it is"

OPTIONS: tuple[Option, ...] = (
    Option("account", "A", "required", "SBATCH_ACCOUNT", _T, "the job's account"),
    Option("acctg-freq", None, "required", "SBATCH_ACCTG_FREQ", _P, _AS_IS),
    Option(
        "array",
        "a",
        "required",
        "SBATCH_ARRAY_INX",
        _T,
        "the tasks, checked as slurmctld checks them",
    ),
    Option("batch", None, "required", "SBATCH_BATCH", _P, _AS_IS),
    Option("begin", "b", "required", None, _P, _AS_IS),
    Option("bb", None, "required", "SBATCH_BURST_BUFFER", _P, _AS_IS),
    Option("bbf", None, "required", None, _P, "sbatch adds the file to the script"),
    Option(
        "cluster-constraint",
        None,
        "required",
        "SBATCH_CLUSTER_CONSTRAINT",
        _R,
        f"a bai job runs on this cluster; {_SBATCH}",
    ),
    Option("chdir", "D", "required", None, _T, "the job's working directory"),
    Option(
        "cluster",
        None,
        "required",
        None,
        _R,
        f"a bai job runs on this cluster; {_SBATCH} -M",
        alias_of="clusters",
    ),
    Option(
        "clusters",
        "M",
        "required",
        "SBATCH_CLUSTERS",
        _R,
        f"a bai job runs on this cluster; {_SBATCH} -M",
    ),
    Option("comment", None, "required", None, _T, "the job's comment"),
    Option("container", None, "required", "SBATCH_CONTAINER", _P, _AS_IS),
    Option("context", None, "required", None, _P, _AS_IS),
    Option("contiguous", None, "none", None, _P, _AS_IS),
    Option("constraint", "C", "required", "SBATCH_CONSTRAINT", _T, "node features the job needs"),
    Option("core-spec", "S", "required", "SBATCH_CORE_SPEC", _P, _AS_IS),
    Option("cores-per-socket", None, "required", None, _P, _AS_IS),
    Option("cpu-freq", None, "required", "SBATCH_CPU_FREQ_REQ", _P, _AS_IS),
    Option(
        "cpus-per-gpu", None, "required", "SBATCH_CPUS_PER_GPU", _T, "checked as sbatch checks it"
    ),
    Option("cpus-per-task", "c", "required", None, _T, "checked as sbatch checks it"),
    Option("deadline", None, "required", None, _P, _AS_IS),
    Option("delay-boot", None, "required", "SBATCH_DELAY_BOOT", _P, _AS_IS),
    Option("dependency", "d", "required", None, _T, "checked as slurmctld checks it"),
    Option("distribution", "m", "required", "SBATCH_DISTRIBUTION", _P, _AS_IS),
    Option("error", "e", "required", "SBATCH_ERROR", _T, "the pattern of the job's stderr file"),
    Option("exclude", "x", "required", None, _T, "nodes the job must not run on"),
    Option("exclusive", None, "optional", "SBATCH_EXCLUSIVE", _T, "checked as sbatch checks it"),
    Option("export", None, "required", "SBATCH_EXPORT", _T, "the variables the job gets"),
    Option("export-file", None, "required", None, _P, _AS_IS),
    Option("extra-node-info", "B", "required", None, _P, _AS_IS),
    Option(
        "get-user-env",
        None,
        "optional",
        "SBATCH_GET_USER_ENV",
        _P,
        "your login environment, under the job's",
    ),
    Option("gid", None, "required", None, _R, "it is for root, and bai sbatch submits as you"),
    Option("gpu-bind", None, "required", "SBATCH_GPU_BIND", _P, _AS_IS),
    Option("gpu-freq", None, "required", "SBATCH_GPU_FREQ", _P, _AS_IS),
    Option("gpus", "G", "required", "SBATCH_GPUS", _T, "the job's GPUs"),
    Option("gpus-per-node", None, "required", "SBATCH_GPUS_PER_NODE", _T, "the job's GPUs"),
    Option("gpus-per-socket", None, "required", "SBATCH_GPUS_PER_SOCKET", _T, "the job's GPUs"),
    Option("gpus-per-task", None, "required", "SBATCH_GPUS_PER_TASK", _T, "the job's GPUs"),
    Option("gres", None, "required", "SBATCH_GRES", _T, "the job's generic resources (GPUs)"),
    Option("gres-flags", None, "required", "SBATCH_GRES_FLAGS", _P, _AS_IS),
    Option("help", "h", "none", None, _T, "prints sbatch's help; submits nothing"),
    Option("hint", None, "required", "SBATCH_HINT", _P, _AS_IS),
    Option("hold", "H", "none", None, _T, "the job is submitted held"),
    Option("ignore-pbs", None, "none", "SBATCH_IGNORE_PBS", _T, "#PBS and #BSUB lines are ignored"),
    Option("input", "i", "required", "SBATCH_INPUT", _T, "the pattern of the job's stdin file"),
    Option(
        "job-name", "J", "required", "SBATCH_JOB_NAME", _T, "the job's name (default: the script's)"
    ),
    Option("kill-on-invalid-dep", None, "required", None, _P, _AS_IS),
    Option("licenses", "L", "required", None, _P, _AS_IS),
    Option("mail-type", None, "required", None, _T, "checked as sbatch checks it"),
    Option("mail-user", None, "required", None, _T, "who gets the job's mail"),
    Option("mcs-label", None, "required", None, _P, _AS_IS),
    Option("mem", None, "required", "SBATCH_MEM_PER_NODE", _T, "checked as sbatch checks it"),
    Option("mem-bind", None, "required", "SBATCH_MEM_BIND", _P, _AS_IS),
    Option(
        "mem-per-cpu", None, "required", "SBATCH_MEM_PER_CPU", _T, "checked as sbatch checks it"
    ),
    Option(
        "mem-per-gpu", None, "required", "SBATCH_MEM_PER_GPU", _T, "checked as sbatch checks it"
    ),
    Option("mincpus", None, "required", None, _P, _AS_IS),
    Option("network", None, "required", "SBATCH_NETWORK", _P, _AS_IS),
    Option("nice", None, "optional", None, _T, "checked as sbatch checks it"),
    Option("no-kill", "k", "optional", "SBATCH_NO_KILL", _P, _AS_IS),
    Option("no-requeue", None, "none", "SBATCH_NO_REQUEUE", _T, "Slurm never requeues the job"),
    Option("nodefile", "F", "required", None, _P, "sbatch reads the node list from it"),
    Option("nodelist", "w", "required", None, _T, "nodes the job must run on"),
    Option("nodes", "N", "required", None, _T, "the node count, checked as sbatch does"),
    Option("ntasks", "n", "required", None, _T, "checked as sbatch checks it"),
    Option("ntasks-per-core", None, "required", None, _P, _AS_IS),
    Option("ntasks-per-gpu", None, "required", None, _P, _AS_IS),
    Option("ntasks-per-node", None, "required", None, _T, "checked as sbatch checks it"),
    Option("ntasks-per-socket", None, "required", None, _P, _AS_IS),
    Option("ntasks-per-tres", None, "required", None, _P, _AS_IS),
    Option("open-mode", None, "required", "SBATCH_OPEN_MODE", _T, "checked as sbatch checks it"),
    Option("output", "o", "required", "SBATCH_OUTPUT", _T, "the pattern of the job's stdout file"),
    Option("overcommit", "O", "none", "SBATCH_OVERCOMMIT", _P, _AS_IS),
    Option("oversubscribe", "s", "none", None, _P, _AS_IS),
    Option("parsable", None, "none", None, _T, "prints the job id alone"),
    Option("partition", "p", "required", "SBATCH_PARTITION", _T, "the partition: a bai cluster"),
    Option("power", None, "required", "SBATCH_POWER", _P, _AS_IS),
    Option("prefer", None, "required", None, _P, _AS_IS),
    Option("priority", None, "required", None, _P, _AS_IS),
    Option("profile", None, "required", "SBATCH_PROFILE", _P, _AS_IS),
    Option("propagate", None, "optional", None, _P, _AS_IS),
    Option("qos", "q", "required", "SBATCH_QOS", _T, "the job's QOS"),
    Option("quiet", "Q", "none", None, _T, "prints nothing on success"),
    Option("reboot", None, "none", None, _P, _AS_IS),
    Option("requeue", None, "none", "SBATCH_REQUEUE", _T, "Slurm may requeue the job"),
    Option("reservation", None, "required", "SBATCH_RESERVATION", _P, _AS_IS),
    Option("signal", None, "required", "SBATCH_SIGNAL", _T, "checked as sbatch checks it"),
    Option("sockets-per-node", None, "required", None, _P, _AS_IS),
    Option("spread-job", None, "none", "SBATCH_SPREAD_JOB", _P, _AS_IS),
    Option("switches", None, "required", None, _P, _AS_IS),
    Option(
        "tasks-per-node",
        None,
        "required",
        None,
        _T,
        "sbatch's other name for --ntasks-per-node",
        alias_of="ntasks-per-node",
    ),
    Option(
        "test-only",
        None,
        "none",
        None,
        _R,
        f"no job for bai to record; {_SBATCH} --test-only",
    ),
    Option("thread-spec", None, "required", "SBATCH_THREAD_SPEC", _P, _AS_IS),
    Option("threads-per-core", None, "required", "SBATCH_THREADS_PER_CORE", _P, _AS_IS),
    Option(
        "time", "t", "required", "SBATCH_TIMELIMIT", _T, "the time limit, checked as sbatch does"
    ),
    Option("time-min", None, "required", None, _T, "checked as sbatch checks it"),
    Option("tmp", None, "required", None, _P, _AS_IS),
    Option("uid", None, "required", None, _R, "it is for root, and bai sbatch submits as you"),
    Option("use-min-nodes", None, "none", "SBATCH_USE_MIN_NODES", _P, _AS_IS),
    Option("verbose", "v", "none", "SBATCH_DEBUG", _T, "sbatch's log level"),
    Option("version", "V", "none", None, _T, "prints sbatch's version; submits nothing"),
    Option("usage", None, "none", None, _T, "prints sbatch's usage; submits nothing"),
    Option("wait", "W", "none", "SBATCH_WAIT", _T, "waits, then exits with the job's exit code"),
    Option("wait-all-nodes", None, "required", "SBATCH_WAIT_ALL_NODES", _P, _AS_IS),
    Option("wckey", None, "required", "SBATCH_WCKEY", _P, _AS_IS),
    Option("wrap", None, "required", None, _T, "the script is built as sbatch builds it"),
    Option(
        "experiment",
        None,
        "required",
        None,
        _T,
        "the bai experiment (else BAI_EXPERIMENT)",
        bai_only=True,
    ),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
BY_SHORT: dict[str, Option] = {o.short: o for o in OPTIONS if o.short}

# Handled by sbatch's first pass over the command line only: in #SBATCH lines sbatch checks
# their syntax and then ignores them (SBATCH_DEBUG still sets --verbose).
FIRST_PASS = frozenset({"help", "quiet", "usage", "verbose", "version", "wrap"})


def canonical(option: Option) -> Option:
    """The option an alias stands for (itself otherwise)."""
    return BY_NAME[option.alias_of] if option.alias_of else option


def lookup_long(text: str, *, bai: bool = True) -> Option:
    """The option `--text` names, as getopt_long finds it: an exact name, else a unique prefix.

    `text` is the word without its leading `--`, `=value` included (sbatch's messages quote
    it). bai's own options match exactly only, so sbatch's prefixes keep their meaning; with
    `bai=False` (the #SBATCH lines) they are unknown, as in sbatch.
    """
    name = text.partition("=")[0]
    exact = BY_NAME.get(name)
    if exact is not None and (bai or not exact.bai_only):
        return exact
    found: Option | None = None
    ambiguous: list[Option] = []
    for option in OPTIONS:
        if option.bai_only or not option.name.startswith(name):
            continue
        if found is None:
            found = option
        elif canonical(found) != canonical(option) or found.arg != option.arg:
            # glibc marks the first match and each later one that differs from it.
            if not ambiguous:
                ambiguous.append(found)
            ambiguous.append(option)
    if ambiguous:
        names = " ".join(f"'--{o.name}'" for o in ambiguous)
        raise SbatchError(
            f"sbatch: option '--{text}' is ambiguous; possibilities: {names}", TRY_HELP, code=255
        )
    if found is None:
        raise SbatchError(f"sbatch: unrecognized option '--{text}'", TRY_HELP, code=255)
    return found
