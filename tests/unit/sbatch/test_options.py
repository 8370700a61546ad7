"""The option table: complete against sbatch 22.05's documentation, and getopt's lookups."""

from __future__ import annotations

import pytest

from adapter.sbatch.options import BY_NAME, BY_SHORT, OPTIONS, SbatchError, lookup_long
from adapter.sbatch.parse import ENVIRONMENT

# Every option of `man sbatch` on the dev cluster (slurm-wlm 22.05.8); `sbatch --help` and
# `sbatch --usage` name no other.
MAN_PAGE = [
    "account",
    "acctg-freq",
    "array",
    "batch",
    "bb",
    "bbf",
    "begin",
    "chdir",
    "cluster-constraint",
    "clusters",
    "comment",
    "constraint",
    "container",
    "contiguous",
    "core-spec",
    "cores-per-socket",
    "cpu-freq",
    "cpus-per-gpu",
    "cpus-per-task",
    "deadline",
    "delay-boot",
    "dependency",
    "distribution",
    "error",
    "exclude",
    "exclusive",
    "export",
    "export-file",
    "extra-node-info",
    "get-user-env",
    "gid",
    "gpu-bind",
    "gpu-freq",
    "gpus",
    "gpus-per-node",
    "gpus-per-socket",
    "gpus-per-task",
    "gres",
    "gres-flags",
    "help",
    "hint",
    "hold",
    "ignore-pbs",
    "input",
    "job-name",
    "kill-on-invalid-dep",
    "licenses",
    "mail-type",
    "mail-user",
    "mcs-label",
    "mem",
    "mem-bind",
    "mem-per-cpu",
    "mem-per-gpu",
    "mincpus",
    "network",
    "nice",
    "no-kill",
    "no-requeue",
    "nodefile",
    "nodelist",
    "nodes",
    "ntasks",
    "ntasks-per-core",
    "ntasks-per-gpu",
    "ntasks-per-node",
    "ntasks-per-socket",
    "open-mode",
    "output",
    "overcommit",
    "oversubscribe",
    "parsable",
    "partition",
    "power",
    "prefer",
    "priority",
    "profile",
    "propagate",
    "qos",
    "quiet",
    "reboot",
    "requeue",
    "reservation",
    "signal",
    "sockets-per-node",
    "spread-job",
    "switches",
    "test-only",
    "thread-spec",
    "threads-per-core",
    "time",
    "time-min",
    "tmp",
    "uid",
    "usage",
    "use-min-nodes",
    "verbose",
    "version",
    "wait",
    "wait-all-nodes",
    "wckey",
    "wrap",
]
# In sbatch's getopt table (src/common/slurm_opt.c) but not in its documentation.
UNDOCUMENTED = ["cluster", "context", "ntasks-per-tres", "tasks-per-node"]
# The "-X, --name" pairs of the man page.
SHORT = dict(
    pair.split(":")
    for pair in [
        "A:account",
        "B:extra-node-info",
        "C:constraint",
        "D:chdir",
        "F:nodefile",
        "G:gpus",
        "H:hold",
        "J:job-name",
        "L:licenses",
        "M:clusters",
        "N:nodes",
        "O:overcommit",
        "Q:quiet",
        "S:core-spec",
        "V:version",
        "W:wait",
        "a:array",
        "b:begin",
        "c:cpus-per-task",
        "d:dependency",
        "e:error",
        "h:help",
        "i:input",
        "k:no-kill",
        "m:distribution",
        "n:ntasks",
        "o:output",
        "p:partition",
        "q:qos",
        "s:oversubscribe",
        "t:time",
        "v:verbose",
        "w:nodelist",
        "x:exclude",
    ]
)
# The SBATCH_* variables of the man page's INPUT ENVIRONMENT VARIABLES, and those 22.05's
# code reads besides (opt.c, env_vars).
MAN_ENVIRONMENT = [
    "ACCOUNT",
    "ACCTG_FREQ",
    "ARRAY_INX",
    "BATCH",
    "CLUSTERS",
    "CONSTRAINT",
    "CONTAINER",
    "CORE_SPEC",
    "CPUS_PER_GPU",
    "DEBUG",
    "DELAY_BOOT",
    "DISTRIBUTION",
    "ERROR",
    "EXCLUSIVE",
    "EXPORT",
    "GET_USER_ENV",
    "GPU_BIND",
    "GPU_FREQ",
    "GPUS",
    "GPUS_PER_NODE",
    "GPUS_PER_TASK",
    "GRES",
    "GRES_FLAGS",
    "HINT",
    "IGNORE_PBS",
    "INPUT",
    "JOB_NAME",
    "MEM_BIND",
    "MEM_PER_CPU",
    "MEM_PER_GPU",
    "MEM_PER_NODE",
    "NETWORK",
    "NO_KILL",
    "NO_REQUEUE",
    "OPEN_MODE",
    "OUTPUT",
    "OVERCOMMIT",
    "PARTITION",
    "POWER",
    "PROFILE",
    "QOS",
    "REQUEUE",
    "RESERVATION",
    "SIGNAL",
    "SPREAD_JOB",
    "THREAD_SPEC",
    "THREADS_PER_CORE",
    "TIMELIMIT",
    "USE_MIN_NODES",
    "WAIT",
    "WAIT_ALL_NODES",
    "WCKEY",
]
CODE_ONLY_ENVIRONMENT = ["BURST_BUFFER", "CLUSTER_CONSTRAINT", "CPU_FREQ_REQ", "GPUS_PER_SOCKET"]
# sbatch reads these two itself; they set no option of the table.
SWITCH_ENVIRONMENT = ["REQ_SWITCH", "WAIT4SWITCH"]

TRANSLATED = [
    "job-name",
    "nodes",
    "ntasks",
    "ntasks-per-node",
    "cpus-per-task",
    "gres",
    "gpus",
    "gpus-per-node",
    "gpus-per-task",
    "gpus-per-socket",
    "cpus-per-gpu",
    "mem-per-gpu",
    "time",
    "time-min",
    "mem",
    "mem-per-cpu",
    "output",
    "error",
    "input",
    "chdir",
    "export",
    "array",
    "dependency",
    "mail-type",
    "mail-user",
    "requeue",
    "no-requeue",
    "signal",
    "nice",
    "nodelist",
    "exclude",
    "exclusive",
    "constraint",
    "qos",
    "account",
    "comment",
    "hold",
    "partition",
    "wrap",
    "parsable",
    "wait",
    "ignore-pbs",
    "quiet",
    "verbose",
    "help",
    "usage",
    "version",
    "open-mode",
    "experiment",
]
REFUSED = ["clusters", "cluster", "cluster-constraint", "uid", "gid", "test-only"]


def test_every_option_of_sbatch_is_in_the_table() -> None:
    sbatch = [o.name for o in OPTIONS if not o.bai_only]
    assert sorted(sbatch) == sorted(MAN_PAGE + UNDOCUMENTED)
    assert len(sbatch) == len(set(sbatch)) == 106


def test_short_forms_are_sbatch_s() -> None:
    assert {letter: o.name for letter, o in BY_SHORT.items()} == SHORT


def test_treatments() -> None:
    assert {o.name for o in OPTIONS if o.treatment == "translated"} == set(TRANSLATED) | {
        "tasks-per-node"
    }
    assert {o.name for o in OPTIONS if o.treatment == "refused"} == set(REFUSED)
    assert all(o.note for o in OPTIONS)
    assert [o.name for o in OPTIONS if o.bai_only] == ["experiment"]


def test_aliases() -> None:
    assert BY_NAME["tasks-per-node"].alias_of == "ntasks-per-node"
    assert BY_NAME["cluster"].alias_of == "clusters"
    assert all(BY_NAME[o.alias_of].alias_of is None for o in OPTIONS if o.alias_of)


def test_environment_variables() -> None:
    names = {var for var, _ in ENVIRONMENT}
    expected = {f"SBATCH_{v}" for v in MAN_ENVIRONMENT + CODE_ONLY_ENVIRONMENT}
    expected -= {f"SBATCH_{v}" for v in SWITCH_ENVIRONMENT} | {"SBATCH_IGNORE_PBS"}
    assert names == expected | {"SLURM_CLUSTERS", "SLURM_HINT"}
    for var, name in ENVIRONMENT:
        if var.startswith("SBATCH_"):
            assert BY_NAME[name].env == var
    assert BY_NAME["ignore-pbs"].env == "SBATCH_IGNORE_PBS"
    with_env = {o.env for o in OPTIONS if o.env}
    assert with_env == names - {"SLURM_CLUSTERS", "SLURM_HINT"} | {"SBATCH_IGNORE_PBS"}


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("nodes", "nodes"),
        ("ntasks-per-n=2", "ntasks-per-node"),
        ("mem", "mem"),  # exact beats the longer mem-*
        ("cluster", "cluster"),
        ("clusters=a", "clusters"),
        ("tasks", "tasks-per-node"),
        ("experiment=x", "experiment"),
        ("export", "export"),
        ("wra", "wrap"),
    ],
)
def test_lookup_long(text: str, name: str) -> None:
    assert lookup_long(text).name == name


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "ex=1",
            "sbatch: option '--ex=1' is ambiguous; possibilities: '--exclude' '--exclusive'"
            " '--export' '--export-file' '--extra-node-info'",
        ),
        ("exp", "sbatch: option '--exp' is ambiguous; possibilities: '--export' '--export-file'"),
        # reference/sbatch.md's `--node=2` is ambiguous in 22.05.
        (
            "node=2",
            "sbatch: option '--node=2' is ambiguous; possibilities: '--nodefile' '--nodelist'"
            " '--nodes'",
        ),
        (
            "cl",
            "sbatch: option '--cl' is ambiguous; possibilities: '--cluster-constraint'"
            " '--cluster' '--clusters'",
        ),
        (
            "me",
            "sbatch: option '--me' is ambiguous; possibilities: '--mem' '--mem-bind'"
            " '--mem-per-cpu' '--mem-per-gpu'",
        ),
        ("expe", "sbatch: unrecognized option '--expe'"),  # bai's --experiment: exact only
        ("experimen=x", "sbatch: unrecognized option '--experimen=x'"),
        ("foo=bar", "sbatch: unrecognized option '--foo=bar'"),
    ],
)
def test_lookup_long_errors(text: str, line: str) -> None:
    with pytest.raises(SbatchError) as caught:
        lookup_long(text)
    assert caught.value.lines == (line, 'Try "sbatch --help" for more information')
    assert caught.value.code == 255


def test_bai_options_are_unknown_where_sbatch_reads_alone() -> None:
    with pytest.raises(SbatchError, match="unrecognized option '--experiment=x'"):
        lookup_long("experiment=x", bai=False)
