"""`bai sbatch` is a drop-in for `sbatch`: a corpus of sites' scripts, each submitted both ways.

Every case of tests/fixtures/sbatch-corpus (its README gives the comment lines that say how a
case is submitted) goes to plain `sbatch` and to `bai sbatch` by alice, each in a fresh
directory of hers, on a dedicated bai cluster of hers. All are submitted first, then waited for
once. Then per case: what the submission printed and its exit code, every field of
`scontrol show job` (each array task's), and every file the job left, after each mode's own job
ids, directory and node names are replaced. A field may differ only as listed below, with why.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cluster import sh
from tests.e2e.sbatch_users import (
    SUBMITTED,
    bai_sbatch,
    raw_sbatch,
    run_as,
    user_dir,
    user_env,
    wait_done,
    write,
)
from tests.e2e.service import Api, Service, counts
from tests.e2e.test_clusters import partition_of

pytestmark = pytest.mark.slurm

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "sbatch-corpus"
NOT_CASES = {"README.md", ".gitattributes"}
USER = "alice"
CLUSTER = "corpus"
HEADER = re.compile(rb"^# (submit|env|mkdir|file|release|signal)\b:? ?(.*?)\r?$", re.MULTILINE)
MODES = ("raw", "bai")

# Fields of `scontrol show job` that say nothing about the job as submitted.
IGNORED = {
    "JobId": "each submission's own (an array task's too); ids elsewhere are replaced",
    "Priority": "slurmctld gives each new job one less than the last (priority/basic)",
    "SubmitTime": "a time",
    "EligibleTime": "a time",
    "AccrueTime": "a time",
    "StartTime": "a time",
    "EndTime": "a time",
    "PreemptEligibleTime": "a time",
    "SuspendTime": "a time",
    "LastSchedEval": "a time",
    "RunTime": "how long it ran",
    "Scheduler": "which pass started it (Main or Backfill), a matter of timing",
    "NodeList": "placement: either node of the cluster",
    "BatchHost": "placement: either node of the cluster",
    "AllocNode:Sid": "the session id of the process that ran sbatch",
}


def _comment(raw: str, bai: str) -> bool:
    found = re.fullmatch(r"bai:[0-9a-f]{8}-[0-9a-f-]{27}(?: (.*))?", bai, re.DOTALL)
    return found is not None and (found.group(1) or "<absent>") == raw


def _command(raw: str, bai: str) -> bool:
    return bai == "(null)" and (raw == "(null)" or ".sh" in raw)


# Fields that differ by design, and what bai's value must be given sbatch's.
EXPECTED: dict[str, tuple[Callable[[str, str], bool], str]] = {
    "Comment": (_comment, "bai:<job uuid> names the bai job, then the user's own comment"),
    "Command": (_command, "sbatch reads bai's wrapper on its standard input"),
}

# What jobs print that differs by design: sbatch's and bai's, as patterns over the text with
# ids, directory and nodes replaced, and what both become.
EXPECTED_OUTPUT = (
    # $0 is the script bai keeps in its spool; sbatch's is slurmd's copy (neither is the
    # user's file), and the batch shell is bai's wrapper, which runs the script as its child.
    (r"\S*/job\{job\}/slurm_script", r"\S*/jobs/[0-9a-f-]{36}/script", "{$0}"),
    (r"parent: slurmstepd", r"parent: slurm_script", "parent: {the batch shell}"),
)

# `sbatch -v` lists the options it was given, and bai's client gives it some of its own.
VERBOSE_OWN = re.compile(r"^sbatch: (comment|job-name|parsable) +: .*\n", re.MULTILINE)

# Cases where bai sbatch differs from sbatch for a reason that is a bug: case -> the difference.
XFAIL: dict[str, str] = {}  # cases bai does not yet pass, with why (none now)


@dataclass(frozen=True)
class Case:
    """One fixture: its script (None for a case that has none) and how it is submitted."""

    name: str
    script: bytes | None
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    mkdirs: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    release: bool = False
    signal: str | None = None

    @property
    def waits(self) -> bool:
        """sbatch --wait returns once the job is done: it is submitted beside the others."""
        return "--wait" in self.argv


def load(path: Path) -> Case:
    sidecar = path.with_name(path.name + ".submit")
    script = None if path.suffix == ".submit" else path.read_bytes()
    header = HEADER.findall(sidecar.read_bytes() if sidecar.exists() else path.read_bytes())
    words: dict[str, list[str]] = {}
    for key, value in header:
        words.setdefault(key.decode(), []).append(value.decode())
    (submit,) = words["submit"]
    return Case(
        name=path.name,
        script=script,
        argv=tuple(shlex.split(submit)),
        env=dict(line.split("=", 1) for line in words.get("env", [])),
        mkdirs=tuple(words.get("mkdir", [])),
        files=dict(line.split(": ", 1) for line in words.get("file", [])),
        release="release" in words,
        signal=words["signal"][0] if "signal" in words else None,
    )


def cases() -> list[Case]:
    paths = sorted(CORPUS.iterdir())
    names = {p.name for p in paths}
    return [
        load(p)
        for p in paths
        if p.name not in NOT_CASES
        and not (p.suffix == ".submit" and p.name.removesuffix(".submit") in names)
    ]


CASES = cases()


@dataclass
class Run:
    """One case submitted one way, and what it left once done."""

    case: Case
    mode: str
    home: Path
    result: subprocess.CompletedProcess[str]
    job: int | None
    prev: int | None
    records: list[dict[str, str]] = field(default_factory=list)

    def ids(self) -> dict[str, str]:
        """This run's job ids, and the one it depends on, as placeholders."""
        names = {str(self.job): "{job}"} if self.job else {}
        for rec in self.records:
            task = rec.get("ArrayTaskId", "N/A")
            if task != "N/A" and rec["JobId"] != str(self.job):
                names[rec["JobId"]] = f"{{job_{task}}}"
        if self.prev is not None and "{prev}" in " ".join(self.case.argv):
            names[str(self.prev)] = "{prev}"
        return names

    def normal(self, text: str, nodes: list[str]) -> str:
        text = text.replace(str(self.home), "{dir}")
        for job, name in self.ids().items():
            text = re.sub(rf"(?<!\d){job}(?!\d)", name, text)
        for node in nodes:
            text = re.sub(rf"\b{re.escape(node)}\b", "{node}", text)
        return text


def parse_records(job: int) -> list[dict[str, str]]:
    """`scontrol show job -o` of a job, every record (each of an array's tasks), by task."""
    out = sh("scontrol", "show", "job", "-o", str(job)).stdout.splitlines()
    assert out, f"Slurm does not know job {job}"
    records = []
    for line in out:
        pairs = re.findall(r"(\w[\w:/]*)=(.*?)(?= \w[\w:/]*=|$)", line.strip())
        records.append({key: value.strip() for key, value in pairs})
    task = "ArrayTaskId"
    return sorted(records, key=lambda r: int(r[task]) if r.get(task, "").isdigit() else -1)


def left_files(home: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def prepare(case: Case, homes: list[Path]) -> Path:
    home = user_dir(USER)
    homes.append(home)
    entry = pwd.getpwnam(USER)
    for name in case.mkdirs:
        (home / name).mkdir()
        os.chown(home / name, entry.pw_uid, entry.pw_gid)
    for name, text in case.files.items():
        write(home, name, text + "\n", USER)
    if case.script is not None:
        write(home, case.name, case.script, USER)
    return home


def submit(
    service: Service, case: Case, mode: str, target: str, prev: int | None, homes: list[Path]
) -> Run:
    home = prepare(case, homes)
    words = [w.replace("{prev}", str(prev)) for w in case.argv]
    stdin = None
    if words[-2:] == ["<", "{script}"]:
        words, stdin = words[:-2], case.script
    argv = ["-p", target, *(w.replace("{script}", case.name) for w in words)]
    if mode == "raw":
        # The job's environment is the submitter's: the same as bai's client has.
        env = {"BAI_URL": service.url, "BAI_CA": service.ca, **case.env}
        result = raw_sbatch(USER, argv, home, stdin=stdin, env=env)
    else:
        result = bai_sbatch(service, USER, argv, home, stdin=stdin, env=case.env)
    return Run(case, mode, home, result, submitted(result, home), prev)


def submitted(result: subprocess.CompletedProcess[str], home: Path) -> int | None:
    """The job's id: as sbatch printed it, or (--quiet) the job that runs in `home`."""
    found = SUBMITTED.search(result.stdout) or re.match(r"(\d+)(;\S*)?$", result.stdout)
    if found:  # --wait: its exit code is the job's
        return int(found.group(1))
    if result.returncode != 0:
        return None
    for line in sh("scontrol", "show", "job", "-o").stdout.splitlines():
        if f" WorkDir={home} " in line:
            return int(line.split("=", 1)[1].split()[0])
    raise AssertionError(f"no job in {home}: {result}")


def send_signal(run: Run, timeout: float = 90) -> None:
    """`scancel --batch --signal=SIG`, as a user would, once the script says it waits."""
    deadline = time.monotonic() + timeout
    out = run.home / f"slurm-{run.job}.out"
    while not (out.exists() and "waiting" in out.read_text()):
        assert time.monotonic() < deadline, f"job {run.job} never waited for its signal"
        time.sleep(0.2)
    argv = ["scancel", "--batch", f"--signal={run.case.signal}", str(run.job)]
    sent = run_as(USER, argv, run.home, env=user_env(USER))
    assert sent.returncode == 0, sent.stderr


@dataclass
class Corpus:
    runs: dict[str, dict[str, Run]]  # case -> mode -> run
    nodes: list[str]


@contextlib.contextmanager
def workspace_of_alice(service: Service) -> Iterator[Api]:
    admin = Api(service, service.token("root", admin=True))
    alice = Api(service, service.token(USER), rg=admin.rg)
    try:
        yield alice
    finally:
        for ws in admin.call("GET", admin.path("workspaces")).json()["value"]:
            admin.delete_workspace(ws["name"])
        alice.close()
        admin.close()


def cluster_of_alice(alice: Api, name: str, priority: str, count: int) -> str:
    """A t4x1 cluster of alice's in a new workspace, its nodes idle: its partition."""
    ws = f"ws-{uuid.uuid4().hex[:6]}"
    alice.workspace(ws)
    alice.cluster(
        ws,
        name,
        {
            "vmSize": "t4x1",
            "vmPriority": priority,
            "scaleSettings": {"manual": {"targetNodeCount": count}},
            "userAccountSettings": {"adminUserName": USER},
        },
    )
    alice.wait_cluster(ws, name, lambda p: counts(p)["idle"] == count)
    return partition_of(alice, ws, name)


def run_corpus(
    service: Service, cases: list[Case], partition: str, cluster: str, homes: list[Path]
) -> Corpus:
    """Each case both ways: all submitted (raw sbatch first), then waited for once."""
    runs: dict[str, dict[str, Run]] = {}
    prev: dict[str, int | None] = {"raw": None, "bai": None}
    waiting: dict[tuple[str, str], Future[Run]] = {}
    signals: list[Future[None]] = []
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for mode in MODES:
            target = partition if mode == "raw" else cluster
            for case in cases:
                if case.waits:
                    waiting[case.name, mode] = pool.submit(
                        submit, service, case, mode, target, prev[mode], homes
                    )
                    continue
                run = submit(service, case, mode, target, prev[mode], homes)
                runs.setdefault(case.name, {})[mode] = run
                prev[mode] = run.job or prev[mode]
                if case.signal and run.job:
                    signals.append(pool.submit(send_signal, run))
        submitted = [r for by_mode in runs.values() for r in by_mode.values()]
        for run in submitted:
            if run.case.release and run.job:
                argv = ["scontrol", "release", str(run.job)]
                released = run_as(USER, argv, run.home, env=user_env(USER))
                assert released.returncode == 0, released.stderr
        for sent in signals:
            sent.result()
        wait_done([r.job for r in submitted if r.job], timeout=150)
        for (name, mode), later in waiting.items():
            runs.setdefault(name, {})[mode] = later.result()
    for by_mode in runs.values():
        for run in by_mode.values():
            if run.job:
                run.records = parse_records(run.job)
    print(f"{sum(map(len, runs.values()))} submissions done in {time.monotonic() - start:.1f} s")
    nodes = sorted(set(sh("sinfo", "-h", "-N", "-p", partition, "-o", "%N").stdout.split()))
    return Corpus(runs, nodes)


@contextlib.contextmanager
def directories() -> Iterator[list[Path]]:
    """The users' directories the runs make, removed afterwards."""
    homes: list[Path] = []
    try:
        yield homes
    finally:
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def alice_api(service: Service) -> Iterator[Api]:
    """alice, in a resource group of her own for this module's workspaces."""
    with workspace_of_alice(service) as api:
        yield api


@pytest.fixture(scope="module")
def corpus(service: Service, alice_api: Api) -> Iterator[Corpus]:
    """Every case, both ways, on a dedicated t4x1 cluster of alice's with two nodes."""
    assert alice_api.free_dedicated("t4x1") >= 2, "the corpus needs both t4x1 nodes"
    partition = cluster_of_alice(alice_api, CLUSTER, "dedicated", 2)
    with directories() as homes:
        yield run_corpus(service, CASES, partition, CLUSTER, homes)


def differences(raw: Run, bai: Run, nodes: list[str]) -> list[str]:
    """How bai's job differs from sbatch's, bar the listed fields."""
    out = []

    def same(what: str, r: str, b: str) -> None:
        if r != b:
            out.append(f"{what}:\n  raw: {r!r}\n  bai: {b!r}")

    same("exit code", str(raw.result.returncode), str(bai.result.returncode))
    same("stdout", raw.normal(raw.result.stdout, nodes), bai.normal(bai.result.stdout, nodes))
    r_err, b_err = (run.normal(run.result.stderr, nodes) for run in (raw, bai))
    if "-v" in raw.case.argv:
        r_err, b_err = VERBOSE_OWN.sub("", r_err), VERBOSE_OWN.sub("", b_err)
    same("stderr", r_err, b_err)
    same("tasks", str(len(raw.records)), str(len(bai.records)))
    for r_rec, b_rec in zip(raw.records, bai.records, strict=False):
        task = r_rec.get("ArrayTaskId", "N/A")
        where = "" if task == "N/A" else f" (task {task})"
        for key in sorted(set(r_rec) | set(b_rec)):
            if key in IGNORED:
                continue
            r = raw.normal(r_rec.get(key, "<absent>"), nodes)
            b = bai.normal(b_rec.get(key, "<absent>"), nodes)
            if key in EXPECTED:
                if not EXPECTED[key][0](r, b):
                    out.append(f"{key}{where} is not as expected:\n  raw: {r!r}\n  bai: {b!r}")
            else:
                same(key + where, r, b)
    r_files = {raw.normal(k, nodes): v for k, v in left_files(raw.home).items()}
    b_files = {bai.normal(k, nodes): v for k, v in left_files(bai.home).items()}
    same("files", " ".join(sorted(r_files)), " ".join(sorted(b_files)))
    for name in sorted(set(r_files) & set(b_files)):
        r = raw.normal(r_files[name].decode(errors="replace"), nodes)
        b = bai.normal(b_files[name].decode(errors="replace"), nodes)
        for r_pattern, b_pattern, both in EXPECTED_OUTPUT:
            r, b = re.sub(r_pattern, both, r), re.sub(b_pattern, both, b)
        same(f"file {name}", r, b)
    return out


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=XFAIL[case.name])] if case.name in XFAIL else []
    return pytest.param(case.name, id=case.name, marks=marks)


def test_the_corpus_is_large_enough_and_each_case_says_how_it_is_submitted() -> None:
    assert len(CASES) >= 18
    assert all(c.argv for c in CASES)


@pytest.mark.parametrize("name", [_param(c) for c in CASES])
def test_bai_sbatch_submits_as_sbatch_does(corpus: Corpus, name: str) -> None:
    runs = corpus.runs[name]
    found = differences(runs["raw"], runs["bai"], corpus.nodes)
    assert not found, "\n".join(found)


LOW_PRIORITY = ("01-args.sh", "37-two-days.sh")


@pytest.fixture(scope="module")
def low_priority(service: Service, alice_api: Api) -> Iterator[Corpus]:
    """A few cases, both ways, on a low-priority t4x1 cluster of alice's with one node."""
    partition = cluster_of_alice(alice_api, "corpuslow", "lowpriority", 1)
    cases = [c for c in CASES if c.name in LOW_PRIORITY]
    with directories() as homes:
        yield run_corpus(service, cases, partition, "corpuslow", homes)


def test_on_a_low_priority_cluster_bai_caps_the_time_limit_sbatch_refuses(
    low_priority: Corpus,
) -> None:
    # Without --time: the cap is the partition's limit and its default, so nothing differs
    # (the notice bai asks for, --signal=B:USR1@<grace>, is not in scontrol's fields).
    plain = low_priority.runs["01-args.sh"]
    assert differences(plain["raw"], plain["bai"], low_priority.nodes) == []
    # Over the cap: the partition refuses the job, bai submits it with the cap as its limit.
    raw, bai = (
        low_priority.runs["37-two-days.sh"]["raw"],
        low_priority.runs["37-two-days.sh"]["bai"],
    )
    assert raw.result.returncode == 1 and raw.job is None
    assert raw.result.stderr == (
        "sbatch: error: Batch job submission failed: Requested time limit is invalid "
        "(missing or exceeds some limit)\n"
    )
    assert bai.result.returncode == 0 and bai.result.stderr == ""
    (record,) = bai.records
    assert record["TimeLimit"] == "1-00:00:00" and record["JobState"] == "COMPLETED"
