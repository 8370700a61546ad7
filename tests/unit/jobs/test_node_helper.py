"""slurm/bai-node-helper run for real on a fake node.

The node is a temporary directory: a spool with the root plan (<spool>/plans/<uuid>.json, 0600
in a 0700 directory, as adapter/jobs/spool.py writes it) and the user's plan, a job root, a
root-only state directory and a node log. On PATH: a fake `mount` (and a site's approved mount
command) that records its argv and then really mounts a small tmpfs on the last argument, so
the helper's mount-id recording and unmounting by id are exercised for real; a fake `scontrol`
that only records (nothing reaches a slurmctld); and `umount` that records and fails (the helper
must never unmount by path).

Needs root (the Prolog mounts and chowns; `prepare` runs as the job's user through setpriv): the
tests run as root. The job's user is alice, the other user bob (created if missing).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HELPER = Path(__file__).resolve().parents[3] / "slurm" / "bai-node-helper"
UID = "0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
OTHER_UID = "11111111-2222-4333-8444-555555555555"
JOB_ID = 42
FAIL_SOURCE = "bad:/export"  # the fake mount fails for it
NOOP_SOURCE = "noop:/export"  # the fake mount says it succeeded and mounts nothing
ROOT_KINDS = {"nfs", "cifs", "unmanaged"}
STATUS = ".bai-root-mounts.json"
USERS = ("alice", "bob")

MOUNT = """#!{python}
import json, os, subprocess, sys
with open({record!r}, "a") as fh:
    fh.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
watch = os.environ.get("BAI_TEST_WATCH", "")
if watch:  # what the job temp looked like while root mounted into it
    st = os.lstat(watch)
    with open({seen!r}, "a") as fh:
        fh.write(json.dumps([st.st_uid, st.st_mode & 0o7777, os.path.islink(watch)]) + "\\n")
if {fail!r} in sys.argv[1:]:
    if {stderr!r}:
        print({stderr!r}, file=sys.stderr)
    sys.exit(32)
if {noop!r} in sys.argv[1:]:
    sys.exit(0)
if "-o" in sys.argv and sys.argv[sys.argv.index("-o") + 1].startswith("remount,"):
    sys.exit(subprocess.run(["/usr/bin/mount", *sys.argv[1:]]).returncode)  # as it is asked
argv = ["/usr/bin/mount", "-t", "tmpfs", "-o", "size=1m", "bai-test", sys.argv[-1]]
sys.exit(subprocess.run(argv).returncode)
"""

RECORDER = """#!{python}
import json, os, sys
with open({record!r}, "a") as fh:
    fh.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
sys.exit({code})
"""


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo."""

    id: int
    point: str
    fstype: str
    device: str  # major:minor


def mountinfo() -> list[Mount]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        out.append(Mount(int(fields[0]), point, fields[fields.index("-") + 1], fields[2]))
    return out


def mounts_under(path: Path) -> list[Mount]:
    return [m for m in mountinfo() if m.point.startswith(f"{path}/")]


def _fuse_usable() -> str:
    for tool in ("rclone", "fusermount3"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not Path("/dev/fuse").exists():
        return "/dev/fuse is missing"
    return ""


@dataclass
class Node:
    """One fake node: spool, job root, state, log, fake tools, and the helper's environment."""

    base: Path
    spool_root: Path
    spool: Path
    job_root: Path
    job_temp: Path
    state: Path
    log: Path
    storage: Path
    record: Path
    scontrol_record: Path
    seen: Path
    env: dict[str, str]
    user: pwd.struct_passwd
    other: pwd.struct_passwd

    @property
    def plans(self) -> Path:
        return self.spool_root / "plans"

    @property
    def root_plan(self) -> Path:
        return self.plans / f"{UID}.json"

    @property
    def user_plan(self) -> Path:
        return self.spool / "plan.json"

    def write_plans(
        self, vols: list[dict[str, str]], slurm_job_id: int | None = JOB_ID, **changes: Any
    ) -> Path:
        """The root plan and the user's plan, as the service writes them; the user's path."""
        roots = [str(self.job_temp / "mounts"), str(self.job_temp / "cluster-mounts")]
        plan = {
            "uid": UID,
            "owner_uid": self.user.pw_uid,
            "owner_gid": self.user.pw_gid,
            "slurm_job_id": slurm_job_id,
            "job_temp": str(self.job_temp),
            "mount_roots": roots,
            "volumes": [v for v in vols if v["kind"] in ROOT_KINDS],
            **changes,
        }
        self.plans.mkdir(mode=0o700, exist_ok=True)
        self.plans.chmod(0o700)
        self.root_plan.unlink(missing_ok=True)
        fd = os.open(self.root_plan, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(plan, fh, indent=1)
        user = {
            "spool": str(self.spool),
            "job_temp": plan["job_temp"],
            "mount_roots": plan["mount_roots"],
            "volumes": vols,
            "rclone_config": str(self.spool / "rclone.conf"),
        }
        self.user_plan.write_text(json.dumps(user, indent=1))
        self.user_plan.chmod(0o600)
        for name in ("plan.json", "rclone.conf"):
            (self.spool / name).touch()
            os.chown(self.spool / name, self.user.pw_uid, self.user.pw_gid)
        return self.user_plan

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HELPER), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def root_flags(self) -> list[str]:
        return [
            *("--spool", str(self.spool_root), "--job-root", str(self.job_root)),
            *("--state", str(self.state), "--log", str(self.log)),
        ]

    def prolog(self, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("prolog", *self.root_flags(), **env)

    def epilog(self, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("epilog", *self.root_flags(), **env)

    def as_user(
        self, *argv: str, user: pwd.struct_passwd | None = None
    ) -> subprocess.CompletedProcess[str]:
        who = user or self.user
        drop = ["setpriv", f"--reuid={who.pw_uid}", f"--regid={who.pw_gid}", "--init-groups"]
        env = {
            **self.env,
            "HOME": who.pw_dir,
            "USER": who.pw_name,
            "RCLONE_CACHE_DIR": str(self.base / f"cache-{who.pw_name}"),
        }
        return subprocess.run([*drop, *argv], env=env, capture_output=True, text=True, timeout=120)

    def prepare(self) -> subprocess.CompletedProcess[str]:
        return self.as_user(str(HELPER), "prepare", str(self.user_plan))

    def calls(self) -> list[list[str]]:
        return read_jsonl(self.record)

    def scontrol_calls(self) -> list[list[str]]:
        return read_jsonl(self.scontrol_record)

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def record_of_job(self) -> dict[str, Any] | None:
        path = self.state / f"{UID}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def chown_to_user(self, *paths: Path) -> None:
        for path in paths:
            os.lchown(path, self.user.pw_uid, self.user.pw_gid)


def read_jsonl(path: Path) -> list[Any]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def make_node(base: Path, users: dict[str, pwd.struct_passwd], stderr: str) -> Node:
    alice, bob = users["alice"], users["bob"]
    spool_root = base / "spool"
    spool = spool_root / "jobs" / UID
    spool.mkdir(parents=True)
    spool.chmod(0o700)
    os.chown(spool, alice.pw_uid, alice.pw_gid)
    job_root = base / "jobroot"
    job_root.mkdir()
    storage = base / "storage"
    storage.mkdir()
    os.chown(storage, alice.pw_uid, alice.pw_gid)
    bin_dir = base / "fakebin"
    bin_dir.mkdir()
    record, scontrol_record, seen = base / "calls.jsonl", base / "scontrol.jsonl", base / "seen"
    mount = MOUNT.format(
        python=sys.executable,
        record=str(record),
        seen=str(seen),
        fail=FAIL_SOURCE,
        noop=NOOP_SOURCE,
        stderr=stderr,
    )
    tools = {
        "mount": mount,
        "site-mount": mount,  # an operator-approved unmanaged mount command
        "umount": RECORDER.format(python=sys.executable, record=str(record), code=1),
        "scontrol": RECORDER.format(python=sys.executable, record=str(scontrol_record), code=0),
    }
    for name, text in tools.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "SLURM_JOB_COMMENT": f"bai:{UID}",
        "SLURM_JOB_ID": str(JOB_ID),
        "SLURM_JOB_UID": str(alice.pw_uid),
        "SLURM_JOB_GID": str(alice.pw_gid),
        "SLURMD_NODENAME": "n1",
        "BAI_TEST_WATCH": str(job_root / UID),
    }
    return Node(
        base=base,
        spool_root=spool_root,
        spool=spool,
        job_root=job_root,
        job_temp=job_root / UID,
        state=base / "state",
        log=base / "log" / "node-helper.log",
        storage=storage,
        record=record,
        scontrol_record=scontrol_record,
        seen=seen,
        env=env,
        user=alice,
        other=bob,
    )


@pytest.fixture(scope="session")
def users() -> dict[str, pwd.struct_passwd]:
    """alice (the job's user) and bob: real unprivileged users, created if this host lacks them."""
    assert os.geteuid() == 0, "these tests mount, chown and drop privileges: run them as root"
    for name in USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "-m", name], check=True, capture_output=True)
    return {name: pwd.getpwnam(name) for name in USERS}


@pytest.fixture
def base() -> Iterator[Path]:
    """The fake node's directory. Not tmp_path: pytest's is under a 0700 directory of root's,
    which alice (prepare, her FUSE mount) could not reach."""
    path = Path(tempfile.mkdtemp(prefix="bai-node-helper-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        clean_mounts(path)
        shutil.rmtree(path)


def clean_mounts(path: Path) -> None:
    """What a test (or a failing helper) left mounted under `path`, and the FUSE servers."""
    for mount in sorted(mounts_under(path), key=lambda m: m.point.count("/"), reverse=True):
        subprocess.run(["umount", "-l", mount.point], capture_output=True, check=False)
    left = mounts_under(path)
    assert not left, f"still mounted after the test: {left}"
    for pid in fuse_servers(path):
        with_timeout_kill(pid)


def fuse_servers(path: Path) -> list[int]:
    """The rclone processes this test started (their command lines name its directory)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"rclone") and str(path).encode() in b" ".join(cmdline):
            pids.append(int(entry.name))
    return pids


def with_timeout_kill(pid: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            return
        time.sleep(0.1)
    os.kill(pid, 9)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


@pytest.fixture
def node(base: Path, users: dict[str, pwd.struct_passwd]) -> Node:
    return make_node(base, users, stderr="mount.nfs: access denied by server")


def volumes(n: Node) -> list[dict[str, str]]:
    jt = n.job_temp
    return [
        {
            "label": "V-nfs (nfs)",
            "kind": "nfs",
            "source": "nas1:/export/data",
            "options": "vers=4.1,ro",
            "mountpoint": f"{jt}/mounts/nfs",
        },
        {
            "label": "V-nfs-nodev (nfs2)",
            "kind": "nfs",
            "source": "nas1:/",
            "options": "nodev,soft",
            "mountpoint": f"{jt}/mounts/nfs2",
        },
        {
            "label": "V-cifs (smb)",
            "kind": "cifs",
            "source": "//smb1/share",
            "options": "vers=3.0,file_mode=0644",
            "mountpoint": f"{jt}/mounts/deep/smb",
        },
        {
            "label": "V-cifs-bare (smb2)",
            "kind": "cifs",
            "source": "//smb1/other",
            "options": "",
            "mountpoint": f"{jt}/mounts/smb2",
        },
        {
            "label": "V-unmanaged (pub)",
            "kind": "unmanaged",
            "source": "site-mount --opt 'a b' nas9:/pub",
            "options": "",
            "mountpoint": f"{jt}/cluster-mounts/pub",
        },
        {
            "label": "V-bad (bad)",
            "kind": "nfs",
            "source": FAIL_SOURCE,
            "options": "",
            "mountpoint": f"{jt}/mounts/bad",
        },
        {
            "label": "V-local (loc)",
            "kind": "local",
            "source": str(n.storage / "share"),
            "options": "",
            "mountpoint": f"{jt}/mounts/loc",
        },
    ]


def nfs_volume(n: Node, mountpoint: str = "mounts/nfs") -> dict[str, str]:
    return {
        "label": "V-nfs (nfs)",
        "kind": "nfs",
        "source": "nas1:/export/data",
        "options": "vers=4.1",
        "mountpoint": f"{n.job_temp}/{mountpoint}",
    }


def owner(path: Path) -> tuple[int, int]:
    st = path.lstat()
    return st.st_uid, st.st_gid


def assert_refused(
    n: Node, result: subprocess.CompletedProcess[str], why: str, job: int = JOB_ID
) -> None:
    """Nothing done for the job; the refusal in the node log and in the job's AdminComment."""
    assert result.returncode == 0, result.stderr  # a refusal never drains the node
    assert [c for c in n.calls() if c[0] != "umount"] == []
    assert not n.job_temp.exists() and not n.job_temp.is_symlink()
    assert n.record_of_job() is None
    [line] = n.log_lines()
    assert "refused:" in line and why in line, line
    [call] = n.scontrol_calls()
    assert call[:3] == ["scontrol", "update", f"JobId={job}"], call
    assert call[3].startswith("AdminComment=bai: ") and why in call[3], call
    assert len(call) == 4 and len(call[3]) <= 250


# -- Prolog: mounting ---------------------------------------------------------------------------


def test_prolog_mounts_root_volumes_with_forced_nosuid_nodev_and_records_them(node: Node) -> None:
    """The operator's options plus nosuid,nodev (never doubled), cifs with the job user's
    uid/gid, the site command with the mount path appended; every mount recorded by its mount
    id in the root-only state directory; mounted while the job temp was root's and 0700."""
    node.write_plans(volumes(node))
    result = node.prolog()
    assert result.returncode == 0, result.stderr
    jt, alice = node.job_temp, node.user
    ids = f"uid={alice.pw_uid},gid={alice.pw_gid}"
    assert node.calls() == [
        [
            "mount",
            "-t",
            "nfs",
            "-o",
            "vers=4.1,ro,nosuid,nodev",
            "nas1:/export/data",
            f"{jt}/mounts/nfs",
        ],
        ["mount", "-t", "nfs", "-o", "nodev,soft,nosuid", "nas1:/", f"{jt}/mounts/nfs2"],
        [
            "mount",
            "-t",
            "cifs",
            "-o",
            f"vers=3.0,file_mode=0644,nosuid,nodev,{ids}",
            "//smb1/share",
            f"{jt}/mounts/deep/smb",
        ],
        ["mount", "-t", "cifs", "-o", f"nosuid,nodev,{ids}", "//smb1/other", f"{jt}/mounts/smb2"],
        ["site-mount", "--opt", "a b", "nas9:/pub", f"{jt}/cluster-mounts/pub"],
        # what the site's command mounted is made nosuid,nodev afterwards
        ["mount", "-o", "remount,bind,nosuid,nodev", f"{jt}/cluster-mounts/pub"],
        ["mount", "-t", "nfs", "-o", "nosuid,nodev", FAIL_SOURCE, f"{jt}/mounts/bad"],
    ]
    assert read_jsonl(node.seen) == [[0, 0o700, False]] * 7
    # recorded by mount id, and those are the mounts the kernel has there
    record = node.record_of_job()
    assert record is not None and record["job_id"] == JOB_ID and record["nodes"] == ["n1"]
    mounted = {m.id: m for m in mounts_under(jt)}
    assert {m["mountpoint"]: m["mount_id"] for m in record["mounts"]} == {
        m.point: m.id for m in mounted.values()
    }
    points = ("mounts/nfs", "mounts/nfs2", "mounts/deep/smb", "mounts/smb2", "cluster-mounts/pub")
    assert sorted(m.point for m in mounted.values()) == sorted(f"{jt}/{p}" for p in points)
    assert {m.fstype for m in mounted.values()} == {"tmpfs"}
    assert stat.S_IMODE(node.state.stat().st_mode) == 0o700 and owner(node.state) == (0, 0)
    # then handed to the user: the job temp and every directory the Prolog made on the way
    uid_gid = (alice.pw_uid, alice.pw_gid)
    assert owner(jt) == uid_gid and stat.S_IMODE(jt.stat().st_mode) == 0o700
    for name in ("mounts", "cluster-mounts", "mounts/deep", "mounts/bad"):
        assert (jt / name).is_dir() and owner(jt / name) == uid_gid, name
    assert node.job_root.stat().st_uid == 0  # never above the job's own directory
    assert not (jt / "mounts" / "loc").exists()  # local volumes are the job user's (prepare)
    assert not (node.storage / "share").exists()
    assert json.loads((jt / STATUS).read_text()) == {
        "V-bad (bad)": "mount.nfs: access denied by server"
    }
    assert node.scontrol_calls() == [] and node.log_lines() == []


def test_prepare_succeeds_on_what_the_prolog_mounted_and_links_local_volumes(node: Node) -> None:
    """The happy path as the job's user: root volumes are mounts, a local volume becomes a
    link to a directory prepare creates; a requeued run prepares again."""
    vols = [v for v in volumes(node) if v["source"] != FAIL_SOURCE]
    node.write_plans(vols)
    assert node.prolog().returncode == 0
    for _ in range(2):
        result = node.prepare()
        assert result.returncode == 0, result.stderr
        link = node.job_temp / "mounts" / "loc"
        assert link.is_symlink() and os.readlink(link) == str(node.storage / "share")
        assert owner(node.storage / "share") == (node.user.pw_uid, node.user.pw_gid)
    assert not (node.spool / "mount-error").exists()


@pytest.mark.parametrize(
    ("source", "stderr", "message"),
    [
        (FAIL_SOURCE, "mount.nfs: access denied by server", "mount.nfs: access denied by server"),
        (FAIL_SOURCE, "", "mount exited 32"),  # the mount command said nothing
        (NOOP_SOURCE, "", "mount said it succeeded, but nothing is mounted there"),
    ],
)
def test_mount_failures_are_recorded_for_prepare_which_names_the_volume(
    base: Path, users: dict[str, pwd.struct_passwd], source: str, stderr: str, message: str
) -> None:
    """A bad volume is never a Prolog failure (that would drain the node): the Prolog records it
    in <job temp>/.bai-root-mounts.json and `prepare`, as the job's user, fails with exit 1 and
    a mount-error naming the volume; the other volumes are still mounted."""
    node = make_node(base, users, stderr=stderr)
    vols = [
        nfs_volume(node),
        {**nfs_volume(node, "mounts/bad"), "label": "V-bad (bad)", "source": source},
    ]
    node.write_plans(vols)
    result = node.prolog()
    assert result.returncode == 0, result.stderr
    assert json.loads((node.job_temp / STATUS).read_text()) == {"V-bad (bad)": message}
    assert [m.point for m in mounts_under(node.job_temp)] == [f"{node.job_temp}/mounts/nfs"]
    result = node.prepare()
    assert result.returncode == 1, result.stderr
    text = f"volume V-bad (bad): {message}"
    assert (node.spool / "mount-error").read_text() == text + "\n"
    assert text in result.stderr
    assert owner(node.spool / "mount-error")[0] == node.user.pw_uid  # written as the user


def test_prepare_fails_when_a_root_volume_is_not_mounted_any_more(node: Node) -> None:
    """The Prolog reported no error but the mount is gone: prepare does not run the job on an
    empty directory."""
    node.write_plans([nfs_volume(node)])
    assert node.prolog().returncode == 0
    [mount] = mounts_under(node.job_temp)
    subprocess.run(["/usr/bin/umount", mount.point], check=True)
    assert node.prepare().returncode == 1
    assert (node.spool / "mount-error").read_text() == (
        "volume V-nfs (nfs): the Prolog did not mount it (see the node's log)\n"
    )


def test_a_job_without_volumes_still_gets_a_fresh_job_temp_of_its_user(node: Node) -> None:
    """Every bai job's job temp is made by the Prolog (root, then the user's), never by the
    job, so `prepare` can tell it is the Prolog's."""
    node.write_plans([])
    result = node.prolog()
    assert result.returncode == 0, result.stderr
    assert node.calls() == []
    jt, uid_gid = node.job_temp, (node.user.pw_uid, node.user.pw_gid)
    assert jt.is_dir() and not jt.is_symlink()
    assert owner(jt) == uid_gid and stat.S_IMODE(jt.stat().st_mode) == 0o700
    for name in ("mounts", "cluster-mounts"):
        assert (jt / name).is_dir() and owner(jt / name) == uid_gid
    assert json.loads((jt / STATUS).read_text()) == {}
    assert node.record_of_job() == {
        "job_id": JOB_ID,
        "owner_uid": node.user.pw_uid,
        "nodes": ["n1"],
        "mounts": [],
    }
    assert node.prepare().returncode == 0


def test_an_epilog_after_bai_removed_the_plan_cleans_up_from_the_hosts_record(
    node: Node,
) -> None:
    """bai removes a plan once Slurm shows the job over, which for a cancelled job can be
    before its Epilog ran: the Epilog then works from the Prolog's root-only record."""
    node.write_plans([nfs_volume(node)])
    assert node.prolog().returncode == 0
    assert len(mounts_under(node.job_temp)) == 1
    node.root_plan.unlink()
    assert node.epilog().returncode == 0
    assert mounts_under(node.job_temp) == [] and not os.path.lexists(node.job_temp)
    assert node.record_of_job() is None and node.log_lines() == []


def test_without_a_plan_another_slurm_job_gets_nothing_from_the_record(node: Node) -> None:
    """With the plan gone, a job naming the same bai job is not the one the record is for."""
    node.write_plans([nfs_volume(node)])
    assert node.prolog().returncode == 0
    node.root_plan.unlink()
    assert node.epilog(SLURM_JOB_ID=str(JOB_ID + 1)).returncode == 0
    assert len(mounts_under(node.job_temp)) == 1  # left for the real job's Epilog
    assert "refused:" in node.log_lines()[0] and len(node.scontrol_calls()) == 1
    assert node.epilog().returncode == 0
    assert mounts_under(node.job_temp) == [] and not os.path.lexists(node.job_temp)


def test_an_unbound_plan_serves_the_job_before_bai_knows_its_slurm_id(node: Node) -> None:
    """bai binds the plan to the Slurm job id after sbatch answers; a Prolog that runs first
    (slurm_job_id still null) is served on the owner's uid alone."""
    node.write_plans([nfs_volume(node)], slurm_job_id=None)
    assert node.prolog().returncode == 0
    assert len(mounts_under(node.job_temp)) == 1 and node.log_lines() == []


def test_the_tasks_of_an_array_on_one_host_share_its_set_up_until_the_last_ends(
    node: Node,
) -> None:
    """`bai sbatch --array`: each task is a Slurm job of its own, and 22.05's Prolog does not
    say which array it is of, so the plan is bound to its owner alone (array: true). Two tasks
    on two nodes of one host share the job temp; the second one's Prolog must not clean up the
    first's, and only the last Epilog removes it."""
    node.write_plans([nfs_volume(node)], slurm_job_id=None, array=True)
    assert node.prolog(SLURM_JOB_ID="50").returncode == 0
    assert node.prolog(SLURM_JOB_ID="51", SLURMD_NODENAME="n2").returncode == 0
    assert len(mounts_under(node.job_temp)) == 1 and node.log_lines() == []
    record = node.record_of_job()
    assert record is not None and record["nodes"] == ["n1:50", "n2:51"]
    assert node.epilog(SLURM_JOB_ID="50").returncode == 0
    assert len(mounts_under(node.job_temp)) == 1  # task 51 still runs here
    # Without the plan, only a task the record names is served from it.
    node.root_plan.unlink()
    assert node.epilog(SLURM_JOB_ID="52", SLURMD_NODENAME="n2").returncode == 0
    assert len(mounts_under(node.job_temp)) == 1 and "refused:" in node.log_lines()[0]
    assert node.epilog(SLURM_JOB_ID="51", SLURMD_NODENAME="n2").returncode == 0
    assert mounts_under(node.job_temp) == [] and not os.path.lexists(node.job_temp)
    assert node.record_of_job() is None


@pytest.mark.parametrize("squatter", ["symlink to a victim", "bob's directory"])
def test_a_job_temp_made_before_the_prolog_is_moved_aside_and_removed(
    node: Node, squatter: str
) -> None:
    """Attack: another user pre-creates <job root>/<uuid> (a link to a directory the Prolog
    would then chown and mount into, or a directory of theirs with files the job would see).
    The Prolog moves it aside and removes it without following links, and makes the job temp
    afresh: root's while it mounts, then the job user's. The victim is untouched."""
    bob = node.other
    victim = node.base / "victim"
    victim.mkdir()
    (victim / "precious").write_text("bob's")
    for path in (victim, victim / "precious"):
        os.chown(path, bob.pw_uid, bob.pw_gid)
    if squatter == "symlink to a victim":
        node.job_temp.symlink_to(victim)
    else:
        (node.job_temp / "mounts" / "nfs").mkdir(parents=True)
        (node.job_temp / "mounts" / "nfs" / "planted").write_text("x")
        (node.job_temp / "hostfile").write_text("evil 100\n")
        os.symlink("/", node.job_temp / "mounts" / "up")
        for path in [node.job_temp, *node.job_temp.rglob("*")]:
            os.lchown(path, bob.pw_uid, bob.pw_gid)
    node.write_plans([nfs_volume(node)])
    result = node.prolog()
    assert result.returncode == 0, result.stderr
    jt = node.job_temp
    assert jt.is_dir() and not jt.is_symlink()
    assert owner(jt) == (node.user.pw_uid, node.user.pw_gid)
    assert read_jsonl(node.seen) == [[0, 0o700, False]]  # root's, 0700, while mounting
    assert sorted(p.name for p in jt.iterdir()) == [STATUS, "cluster-mounts", "mounts"]
    assert sorted(p.name for p in (jt / "mounts").iterdir()) == ["nfs"]
    assert [m.point for m in mounts_under(node.base)] == [f"{jt}/mounts/nfs"]
    assert sorted(p.name for p in node.job_root.iterdir()) == [UID]  # nothing left aside
    assert (victim / "precious").read_text() == "bob's"
    assert owner(victim) == (bob.pw_uid, bob.pw_gid)
    assert owner(victim / "precious") == (bob.pw_uid, bob.pw_gid)
    assert Path("/").stat().st_uid == 0


@pytest.mark.skipif(bool(_fuse_usable()), reason=_fuse_usable() or "fuse")
def test_a_squatter_with_a_fuse_mount_inside_does_not_keep_the_job_from_its_job_temp(
    node: Node,
) -> None:
    """Attack (denial of service): bob squats on the job temp's name with a directory holding
    his own FUSE mount, which root may not even stat. The squatter is moved aside (his mount
    stays his, never entered) and the job gets its fresh job temp all the same."""
    bob = node.other
    data = node.base / "bobs-data"
    data.mkdir()
    (node.job_temp / "m").mkdir(parents=True)
    for path in (data, node.job_temp, node.job_temp / "m"):
        os.chown(path, bob.pw_uid, bob.pw_gid)
    mounted = node.as_user(
        "rclone", "mount", f":local:{data}", str(node.job_temp / "m"), "--daemon", user=bob
    )
    assert mounted.returncode == 0, mounted.stderr
    [fuse] = mounts_under(node.job_temp)
    node.write_plans([nfs_volume(node)])
    result = node.prolog()
    assert result.returncode == 0, result.stderr
    assert node.log_lines() == []
    jt = node.job_temp
    assert jt.is_dir() and owner(jt) == (node.user.pw_uid, node.user.pw_gid)
    assert [m.point for m in mounts_under(jt)] == [f"{jt}/mounts/nfs"]
    [aside] = [p for p in node.job_root.iterdir() if p.name != UID]
    assert aside.name.startswith(f".bai-stale-{UID}-")
    assert [m.point for m in mounts_under(aside)] == [f"{aside}/m"]
    assert next(m for m in mountinfo() if m.point == f"{aside}/m").fstype == fuse.fstype
    assert node.prepare().returncode == 0


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["prolog", "epilog"])
def test_a_job_whose_comment_names_another_users_plan_gets_nothing(node: Node, action: str) -> None:
    """Attack: bob submits a plain sbatch job with --comment=bai:<alice's job> to have root
    mount alice's volumes into a job temp he owns, or to have an Epilog unmount and remove
    alice's running job's. The plan is bound to alice's uid: nothing is done."""
    node.write_plans([nfs_volume(node)])
    bob = {"SLURM_JOB_UID": str(node.other.pw_uid), "SLURM_JOB_GID": str(node.other.pw_gid)}
    if action == "prolog":
        assert_refused(node, node.prolog(**bob), "belongs to another user")
        return
    assert node.prolog().returncode == 0  # alice's job, running
    before = mounts_under(node.job_temp)
    (node.job_temp / "hostfile").write_text("n1\n")
    result = node.epilog(**bob)
    assert result.returncode == 0, result.stderr
    assert mounts_under(node.job_temp) == before and len(before) == 1
    assert (node.job_temp / "hostfile").exists()
    assert node.record_of_job() is not None
    [line] = node.log_lines()
    assert "refused:" in line and "belongs to another user" in line
    assert [c[3].startswith("AdminComment=bai: its comment") for c in node.scontrol_calls()] == [
        True
    ]


def test_a_plan_bound_to_another_slurm_job_is_refused(node: Node) -> None:
    """Attack: alice's own second sbatch job names her bai job 42's plan (job 43 would get 42's
    mounts and, at its end, remove 42's job temp). Bound plans serve only their Slurm job."""
    node.write_plans([nfs_volume(node)], slurm_job_id=42)
    assert_refused(node, node.prolog(SLURM_JOB_ID="43"), "which is Slurm job 42", job=43)


def test_a_comment_naming_a_job_with_no_plan_is_refused(node: Node) -> None:
    """A well-formed bai comment for a job bai does not know: logged, nothing done."""
    node.write_plans([nfs_volume(node)])
    assert_refused(node, node.prolog(SLURM_JOB_COMMENT=f"bai:{OTHER_UID}"), "no plan")


def _plan_symlink(n: Node) -> None:
    elsewhere = n.base / "elsewhere.json"
    n.root_plan.rename(elsewhere)
    n.root_plan.symlink_to(elsewhere)  # root's own link: still not followed


def _plan_of_alice(n: Node) -> None:
    os.chown(n.root_plan, n.user.pw_uid, n.user.pw_gid)


def _plans_dir_of_alice(n: Node) -> None:
    os.chown(n.plans, n.user.pw_uid, n.user.pw_gid)


def _plans_dir_symlink(n: Node) -> None:
    real = n.base / "real-plans"
    n.plans.rename(real)
    n.plans.symlink_to(real)


def _plans_dir_mode(mode: int) -> Callable[[Node], None]:
    return lambda n: n.plans.chmod(mode)


@pytest.mark.parametrize(
    ("spoil", "why"),
    [
        (_plan_symlink, "is a symlink"),
        (_plan_of_alice, "belongs to uid"),
        (_plans_dir_of_alice, "belongs to uid"),
        (_plans_dir_symlink, "is a symlink"),
        (_plans_dir_mode(0o750), "is mode 0750, open to other users"),
        (_plans_dir_mode(0o755), "is mode 0755, open to other users"),
        (_plans_dir_mode(0o703), "is mode 0703, open to other users"),
    ],
    ids=[
        "plan-symlink",
        "plan-of-alice",
        "plans-dir-of-alice",
        "plans-dir-symlink",
        "plans-dir-0750",
        "plans-dir-0755",
        "plans-dir-0703",
    ],
)
def test_a_plan_that_is_not_root_only_is_refused(
    node: Node, spoil: Callable[[Node], None], why: str
) -> None:
    """Root acts only on a plan only root could have written and read: a regular file of root's,
    not a link, in a root-owned 0700 directory that is not a link either."""
    node.write_plans([nfs_volume(node)])
    spoil(node)
    result = node.prolog()
    assert_refused(node, result, "not root's")
    assert why in node.log_lines()[0]


@pytest.mark.parametrize(
    "comment",
    [
        "",
        "bai:",
        "bai:not-a-uuid",
        f"bai:{UID.upper()}",
        f"bai:{UID}x",
        f"bai:{UID}/../{UID}",
        f"xbai:{UID}",
        f"BAI:{UID}",
        UID,
    ],
)
def test_prolog_and_epilog_ignore_jobs_that_are_not_bai_jobs(node: Node, comment: str) -> None:
    """Plain Slurm jobs (and malformed comments): silently nothing, not even a log line."""
    node.write_plans([nfs_volume(node)])
    for result in (node.prolog(SLURM_JOB_COMMENT=comment), node.epilog(SLURM_JOB_COMMENT=comment)):
        assert result.returncode == 0, result.stderr
    assert node.calls() == [] and node.scontrol_calls() == [] and node.log_lines() == []
    assert not node.job_temp.exists() and not node.state.exists()


def test_prolog_without_a_job_comment_does_nothing(node: Node) -> None:
    """SLURM_JOB_COMMENT unset (a job without --comment) is a plain job."""
    node.write_plans([nfs_volume(node)])
    env = {k: v for k, v in node.env.items() if k != "SLURM_JOB_COMMENT"}
    result = subprocess.run(
        [str(HELPER), "prolog", *node.root_flags()], env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 0
    assert node.calls() == [] and not node.job_temp.exists()


@pytest.mark.parametrize(
    ("job_temp", "mountpoint"),
    [
        ("{root}/" + OTHER_UID, None),  # another job's directory
        ("{root}", None),  # the parent of every job's directory
        ("{root}/{uid}/..", None),
        ("{root}/{uid}", "{root}/" + OTHER_UID + "/mounts/nfs"),  # a mount outside it
        ("{root}/{uid}", "{root}/{uid}/../" + OTHER_UID),
    ],
)
def test_a_plan_aiming_outside_its_job_temp_is_refused(
    node: Node, job_temp: str, mountpoint: str | None
) -> None:
    """A plan whose job temp is not <job root>/<uuid>, or whose mount points leave it, gets
    nothing: another job's directory is never re-made, mounted over or removed."""
    fill = {"root": node.job_root, "uid": UID}
    vol = nfs_volume(node)
    if mountpoint:
        vol["mountpoint"] = mountpoint.format(**fill)
    node.write_plans([vol], job_temp=job_temp.format(**fill))
    other = node.job_root / OTHER_UID
    other.mkdir()
    (other / "f").write_text("x")
    result = node.prolog()
    assert result.returncode == 0, result.stderr
    assert node.epilog().returncode == 0
    assert node.calls() == [] and not node.job_temp.exists()
    assert (other / "f").read_text() == "x"
    assert sorted(p.name for p in node.job_root.iterdir()) == [OTHER_UID]
    assert "refused:" in node.log_lines()[0] and len(node.scontrol_calls()) == 1


# -- Epilog -------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/", "victim"])
def test_epilog_unmounts_by_mount_id_whatever_the_user_did_to_the_path(
    node: Node, target: str
) -> None:
    """Attack: the job renames a parent of a root mount and plants a symlink in its place, to /
    or to a directory with another mount at the same relative path, so that an unmount by path
    would detach something else. The Epilog unmounts the recorded mount id, reached through a
    descriptor checked to be its root; the decoy and / are untouched, only the job temp goes."""
    node.write_plans([nfs_volume(node, "mounts/deep/bai-test-data")])
    assert node.prolog().returncode == 0
    jt = node.job_temp
    [mount] = mounts_under(jt)
    record = node.record_of_job()
    assert record is not None and record["mounts"][0]["mount_id"] == mount.id
    decoy = node.base / "victim" / "bai-test-data"
    decoy.mkdir(parents=True)
    subprocess.run(["/usr/bin/mount", "-t", "tmpfs", "-o", "size=1m", "decoy", decoy], check=True)
    (decoy / "theirs").write_text("kept")
    (jt / "mounts" / "deep").rename(jt / "mounts" / "moved")
    (jt / "mounts" / "deep").symlink_to("/" if target == "/" else node.base / "victim")
    node.chown_to_user(jt / "mounts" / "deep")
    other = node.job_root / OTHER_UID
    other.mkdir()
    (other / "theirs").write_text("kept")
    outside = [m for m in mountinfo() if not m.point.startswith(f"{node.base}/")]
    root_entries = sorted(os.listdir("/"))

    result = node.epilog()
    assert result.returncode == 0, result.stderr
    assert [m.point for m in mounts_under(node.base)] == [str(decoy)]
    assert (decoy / "theirs").read_text() == "kept"
    assert [m for m in mountinfo() if not m.point.startswith(f"{node.base}/")] == outside
    assert sorted(os.listdir("/")) == root_entries
    assert not jt.exists() and not jt.is_symlink()
    assert sorted(p.name for p in node.job_root.iterdir()) == [OTHER_UID]
    assert (other / "theirs").read_text() == "kept"
    assert node.record_of_job() is None and list(node.state.iterdir()) == []
    assert [c for c in node.calls() if c[0] == "umount"] == []  # never by path
    assert node.root_plan.exists()  # kept for a requeued run; bai removes it when it is over
    assert node.log_lines() == []


def test_epilog_removes_only_the_job_temp_and_never_follows_the_jobs_links(node: Node) -> None:
    """What the job left (files, a local volume's link to shared storage, links to / and to
    other jobs) goes with the job temp; nothing they point at does."""
    vols = [v for v in volumes(node) if v["source"] != FAIL_SOURCE]
    node.write_plans(vols)
    assert node.prolog().returncode == 0
    assert node.prepare().returncode == 0
    share = node.storage / "share"
    (share / "result.txt").write_text("kept")
    other = node.job_root / OTHER_UID
    other.mkdir()
    (other / "theirs").write_text("kept")
    jt = node.job_temp
    (jt / "hostfile").write_text("n1 slots=2\n")
    (jt / "to-root").symlink_to("/")
    (jt / "to-other").symlink_to(other)
    assert len(mounts_under(jt)) == 5

    result = node.epilog()
    assert result.returncode == 0, result.stderr
    assert mounts_under(node.base) == [] and not jt.exists()
    assert sorted(p.name for p in node.job_root.iterdir()) == [OTHER_UID]
    assert (other / "theirs").read_text() == "kept"
    assert (share / "result.txt").read_text() == "kept"
    assert node.log_lines() == []


@pytest.mark.skipif(bool(_fuse_usable()), reason=_fuse_usable() or "fuse")
def test_epilog_unmounts_a_fuse_mount_the_job_left_in_its_job_temp(node: Node) -> None:
    """A job killed before its teardown leaves its rclone FUSE mount (the user's, which root
    cannot even look into): the Epilog detaches it, by mount id, and removes the job temp; the
    files behind the mount are untouched."""
    data = node.base / "remote-data"
    data.mkdir()
    (data / "kept.txt").write_text("kept")
    node.chown_to_user(data, data / "kept.txt")
    rclone = {
        "label": "V-rclone (r)",
        "kind": "rclone",
        "source": f":local:{data}",
        "options": "",
        "mountpoint": f"{node.job_temp}/mounts/r",
    }
    node.write_plans([rclone])
    assert node.prolog().returncode == 0
    result = node.prepare()
    assert result.returncode == 0, result.stderr + (node.spool / "mount-error").read_text()
    [fuse] = mounts_under(node.job_temp)
    assert fuse.fstype.startswith("fuse"), fuse
    assert node.record_of_job() == {
        "job_id": JOB_ID,
        "owner_uid": node.user.pw_uid,
        "nodes": ["n1"],
        "mounts": [],
    }

    result = node.epilog()
    assert result.returncode == 0, result.stderr
    assert mounts_under(node.base) == []
    assert not node.job_temp.exists() and node.log_lines() == []
    assert (data / "kept.txt").read_text() == "kept"
    for pid in fuse_servers(node.base):  # the server exits once its mount is gone
        with_timeout_kill(pid)


def test_two_nodes_of_one_job_on_one_host_share_the_job_temp(node: Node) -> None:
    """The dev cluster runs several slurmds on one host: the second node's Prolog joins what
    the first set up (no second mount, the job's files stay), the first Epilog leaves it all in
    place for the other node, the last one cleans up."""
    node.write_plans([nfs_volume(node)])
    assert node.prolog(SLURMD_NODENAME="n1").returncode == 0
    jt = node.job_temp
    inode, [mount] = jt.stat().st_ino, mounts_under(jt)
    (jt / "hostfile").write_text("n1\nn2\n")
    result = node.prolog(SLURMD_NODENAME="n2")
    assert result.returncode == 0, result.stderr
    assert len(node.calls()) == 1
    assert jt.stat().st_ino == inode and (jt / "hostfile").exists()
    assert mounts_under(jt) == [mount]
    record = node.record_of_job()
    assert record is not None and record["nodes"] == ["n1", "n2"]

    assert node.epilog(SLURMD_NODENAME="n1").returncode == 0
    assert mounts_under(jt) == [mount] and (jt / "hostfile").exists()
    record = node.record_of_job()
    assert record is not None and record["nodes"] == ["n2"]

    assert node.epilog(SLURMD_NODENAME="n2").returncode == 0
    assert mounts_under(node.base) == [] and not jt.exists()
    assert node.record_of_job() is None and list(node.state.iterdir()) == []
    assert node.log_lines() == []


@pytest.mark.parametrize(
    ("first_job", "first_node"),
    [(JOB_ID, "n1"), (JOB_ID - 1, "n2")],
    ids=["same-node-again", "an-earlier-slurm-job"],
)
def test_a_stale_record_of_an_earlier_run_is_cleaned_and_set_up_afresh(
    node: Node, first_job: int, first_node: str
) -> None:
    """A run whose Epilog never ran here (slurmd was down; a requeue) left its mounts and job
    temp: the next Prolog for the job unmounts and removes them and sets up anew, rather than
    joining a run that is over."""
    node.write_plans([nfs_volume(node)], slurm_job_id=None)
    assert node.prolog(SLURM_JOB_ID=str(first_job), SLURMD_NODENAME=first_node).returncode == 0
    [old] = mounts_under(node.job_temp)
    (node.job_temp / "mounts" / "nfs" / "old-run").write_text("x")
    (node.job_temp / "leftover").write_text("x")
    result = node.prolog()
    assert result.returncode == 0, result.stderr
    [new] = mounts_under(node.job_temp)  # (the kernel may give it the old one's id again)
    assert new.point == old.point
    assert not (node.job_temp / "leftover").exists()
    assert list((node.job_temp / "mounts" / "nfs").iterdir()) == []
    assert node.record_of_job() == {
        "job_id": JOB_ID,
        "owner_uid": node.user.pw_uid,
        "nodes": ["n1"],
        "mounts": [
            {
                "label": "V-nfs (nfs)",
                "mount_id": new.id,
                "device": new.device,
                "mountpoint": new.point,
            }
        ],
    }
    assert len(node.calls()) == 2 and node.log_lines() == []


def test_epilog_without_a_record_leaves_things_alone(node: Node) -> None:
    """An Epilog on a host where this job's Prolog set nothing up (it was refused, or ran on
    another host) removes nothing."""
    node.write_plans([nfs_volume(node)])
    node.job_temp.mkdir()
    (node.job_temp / "keep").write_text("x")
    assert node.epilog().returncode == 0
    assert (node.job_temp / "keep").exists()


# -- prepare --------------------------------------------------------------------------------------


def _missing(n: Node) -> None:
    pass


def _bobs(n: Node) -> None:
    n.job_temp.mkdir(mode=0o777)
    n.job_temp.chmod(0o777)
    os.chown(n.job_temp, n.other.pw_uid, n.other.pw_gid)


def _roots(n: Node) -> None:
    n.job_temp.mkdir(mode=0o777)  # a Prolog that stopped before handing it over
    n.job_temp.chmod(0o777)


def _link_to_alices(n: Node) -> None:
    own = n.base / "alices"
    own.mkdir()
    n.chown_to_user(own)
    n.job_temp.symlink_to(own)
    n.chown_to_user(n.job_temp)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_missing, "does not exist: the Prolog did not run"),
        (_bobs, "is not the one bai's Prolog made"),
        (_roots, "is not the one bai's Prolog made"),
        (_link_to_alices, "is not the one bai's Prolog made"),
    ],
    ids=["missing", "bob's", "root's", "link-to-alice's"],
)
def test_prepare_exits_3_when_the_job_temp_is_not_the_prologs(
    node: Node, make: Callable[[Node], None], message: str
) -> None:
    """The job must not run in a job temp the Prolog did not make for it (no Prolog on this
    node, or someone else's directory): exit 3 with mount-error saying so, before touching it."""
    node.write_plans([])
    make(node)
    result = node.prepare()
    assert result.returncode == 3, result.stderr
    text = (node.spool / "mount-error").read_text()
    assert text == f"n1: the job temp {node.job_temp} {message}\n"
    assert not (node.job_temp / "mounts").exists()


def test_prepare_needs_the_plan_file(node: Node) -> None:
    """`prepare` without its plan is a usage error."""
    result = node.run("prepare")
    assert result.returncode == 2
    assert "prepare needs the plan file" in result.stderr


# -- GPU job mapping ------------------------------------------------------------------------------


def test_gpu_job_mapping_names_the_job_holding_each_gpu_and_drops_stale_names(node: Node) -> None:
    """dcgm-exporter's job mapping, for every Slurm job (bai's or not)."""
    mapping = node.base / "map" / "%n"
    files = node.base / "map" / "n1"

    def run(action: str, job: str, gpus: str) -> None:
        done = node.run(
            action,
            *node.root_flags(),
            "--gpu-job-map",
            str(mapping),
            SLURM_JOB_ID=job,
            SLURM_JOB_GPUS=gpus,
            SLURM_JOB_COMMENT="",
        )
        assert done.returncode == 0, done.stderr

    run("prolog", "7", "0,1")
    assert {p.name: p.read_text() for p in files.iterdir()} == {"0": "7\n", "1": "7\n"}
    # Job 7 ended while this node's slurmd was down: no Epilog. Job 8 gets GPU 1.
    run("prolog", "8", "1")
    assert (files / "1").read_text() == "8\n"
    run("epilog", "7", "0,1")  # a late Epilog of 7 leaves job 8's GPU alone
    assert sorted(p.name for p in files.iterdir()) == ["1"]
    assert (files / "1").read_text() == "8\n"
    run("epilog", "8", "1")
    assert list(files.iterdir()) == []
