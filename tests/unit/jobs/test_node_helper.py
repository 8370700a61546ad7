"""slurm/bai-node-helper run for real, with fake `mount`/`umount` that only record their argv.

Needs root (the Prolog chowns to the job's user); the tests run as root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HELPER = Path(__file__).resolve().parents[3] / "slurm" / "bai-node-helper"
UID = "0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
OTHER_UID = "11111111-2222-4333-8444-555555555555"
FAIL_SOURCE = "bad:/export"


RECORDER = """#!{python}
import json, os, sys
with open({record!r}, "a") as fh:
    fh.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
if {fail!r} in sys.argv[1:]:
    if {stderr!r}:
        print({stderr!r}, file=sys.stderr)
    sys.exit(32)
"""


@dataclass
class Node:
    """One fake node: spool, job root, fake mount tools, and the helper's environment."""

    tmp: Path
    spool_root: Path
    spool: Path
    job_root: Path
    job_temp: Path
    storage: Path
    record: Path
    env: dict[str, str]

    def plan(self, volumes: list[dict[str, str]], **changes: Any) -> Path:
        plan = {
            "uid": UID,
            "spool": str(self.spool),
            "job_temp": str(self.job_temp),
            "mount_roots": [str(self.job_temp / "mounts"), str(self.job_temp / "cluster-mounts")],
            "volumes": volumes,
            "rclone_config": str(self.spool / "rclone.conf"),
            "status_prefix": str(self.spool_root / "plans" / UID),
            **changes,
        }
        path = self.spool_root / "plans" / f"{UID}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(plan, indent=1))
        return path

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(HELPER), *args], env={**self.env, **env}, capture_output=True, text=True
        )

    def prolog(self, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("prolog", "--spool", str(self.spool_root), **env)

    def epilog(self, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("epilog", "--spool", str(self.spool_root), **env)

    def calls(self) -> list[list[str]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    @property
    def status(self) -> Path:
        return self.spool_root / "plans" / f"{UID}.root-mounts-n1.json"


def make_node(tmp_path: Path, stderr: str = "mount.nfs: access denied by server") -> Node:
    spool_root = tmp_path / "spool"
    spool = spool_root / "jobs" / UID
    spool.mkdir(parents=True)
    job_root = tmp_path / "jobroot"
    job_root.mkdir()
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    record = tmp_path / "calls.jsonl"
    text = RECORDER.format(
        python=sys.executable, record=str(record), fail=FAIL_SOURCE, stderr=stderr
    )
    for name in ("mount", "umount", "fake-fuse-mount"):
        tool = bin_dir / name
        tool.write_text(text)
        tool.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "SLURM_JOB_COMMENT": f"bai:{UID}",
        "SLURM_JOB_UID": str(os.getuid()),
        "SLURM_JOB_GID": str(os.getgid()),
        "SLURMD_NODENAME": "n1",
    }
    return Node(
        tmp_path, spool_root, spool, job_root, job_root / UID, tmp_path / "storage", record, env
    )


@pytest.fixture
def node(tmp_path: Path) -> Node:
    assert os.geteuid() == 0, "these tests run the Prolog, which chowns: run them as root"
    return make_node(tmp_path)


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
            "label": "V-nfs-default (nfs2)",
            "kind": "nfs",
            "source": "nas1:/",
            "options": "",
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
            "source": "fake-fuse-mount --opt 'a b' nas9:/pub",
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


def test_prolog_mounts_root_volumes_and_records_failures(node: Node) -> None:
    node.plan(volumes(node))
    result = node.prolog()
    assert result.returncode == 0, result.stderr
    jt, ids = node.job_temp, f"uid={os.getuid()},gid={os.getgid()}"
    assert node.calls() == [
        ["mount", "-t", "nfs", "-o", "vers=4.1,ro", "nas1:/export/data", f"{jt}/mounts/nfs"],
        ["mount", "-t", "nfs", "-o", "rw", "nas1:/", f"{jt}/mounts/nfs2"],
        [
            "mount",
            "-t",
            "cifs",
            "-o",
            f"vers=3.0,file_mode=0644,{ids}",
            "//smb1/share",
            f"{jt}/mounts/deep/smb",
        ],
        ["mount", "-t", "cifs", "-o", ids, "//smb1/other", f"{jt}/mounts/smb2"],
        ["fake-fuse-mount", "--opt", "a b", "nas9:/pub", f"{jt}/cluster-mounts/pub"],
        ["mount", "-t", "nfs", "-o", "rw", FAIL_SOURCE, f"{jt}/mounts/bad"],
    ]
    for name in (
        "mounts/nfs",
        "mounts/nfs2",
        "mounts/deep/smb",
        "mounts/smb2",
        "cluster-mounts/pub",
        "mounts/bad",
    ):
        path = jt / name
        assert path.is_dir(), path
        assert (path.stat().st_uid, path.stat().st_gid) == (os.getuid(), os.getgid())
    assert not (jt / "mounts" / "loc").exists()  # local volumes are the job user's (prepare)
    assert not node.storage.exists()
    assert json.loads(node.status.read_text()) == {
        "V-bad (bad)": "mount.nfs: access denied by server"
    }


def test_prolog_records_the_exit_code_when_mount_says_nothing(tmp_path: Path) -> None:
    node = make_node(tmp_path, stderr="")
    node.plan([v for v in volumes(node) if v["kind"] == "nfs"])
    assert node.prolog().returncode == 0
    assert json.loads(node.status.read_text()) == {"V-bad (bad)": "mount exited 32"}


def test_prolog_with_only_user_volumes_does_nothing(node: Node) -> None:
    node.plan([v for v in volumes(node) if v["kind"] == "local"])
    assert node.prolog().returncode == 0
    assert node.calls() == []
    assert not node.status.exists()
    assert not node.job_temp.exists()


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
        f"bai:{OTHER_UID}",  # a valid id with no plan
    ],
)
def test_prolog_and_epilog_ignore_jobs_that_are_not_this_bai_job(node: Node, comment: str) -> None:
    node.plan(volumes(node))
    node.job_temp.mkdir()
    (node.job_temp / "keep").write_text("x")
    for result in (node.prolog(SLURM_JOB_COMMENT=comment), node.epilog(SLURM_JOB_COMMENT=comment)):
        assert result.returncode == 0, result.stderr
    assert node.calls() == []
    assert not node.status.exists()
    assert sorted(p.name for p in node.job_temp.iterdir()) == ["keep"]


def test_prolog_without_a_job_comment_does_nothing(node: Node) -> None:
    node.plan(volumes(node))
    env = {k: v for k, v in node.env.items() if k != "SLURM_JOB_COMMENT"}
    result = subprocess.run(
        [str(HELPER), "prolog", "--spool", str(node.spool_root)], env=env, capture_output=True
    )
    assert result.returncode == 0
    assert node.calls() == [] and not node.job_temp.exists()


def test_epilog_unmounts_root_volumes_and_removes_only_the_job_temp_dir(node: Node) -> None:
    node.plan(volumes(node))
    assert node.prolog().returncode == 0
    # what the job left: files, and a local volume's symlink to shared storage
    share = node.storage / "share"
    share.mkdir(parents=True)
    (share / "result.txt").write_text("kept")
    (node.job_temp / "mounts" / "loc").symlink_to(share)
    (node.job_temp / "hostfile").write_text("n1 slots=2\n")
    other = node.job_root / OTHER_UID
    other.mkdir()
    (other / "theirs").write_text("kept")
    node.record.unlink()

    result = node.epilog()
    assert result.returncode == 0, result.stderr
    jt = node.job_temp
    assert node.calls() == [
        ["umount", "-l", f"{jt}/mounts/nfs"],
        ["umount", "-l", f"{jt}/mounts/nfs2"],
        ["umount", "-l", f"{jt}/mounts/deep/smb"],
        ["umount", "-l", f"{jt}/mounts/smb2"],
        ["umount", "-l", f"{jt}/cluster-mounts/pub"],
        ["umount", "-l", f"{jt}/mounts/bad"],
    ]
    assert not jt.exists()
    assert sorted(p.name for p in node.job_root.iterdir()) == [OTHER_UID]
    assert (other / "theirs").read_text() == "kept"
    assert (share / "result.txt").read_text() == "kept"  # symlinks are not followed
    # The plan stays for a requeued run; bai removes it when the job is over.
    assert (node.spool_root / "plans" / f"{UID}.json").exists()


@pytest.mark.parametrize(
    "job_temp",
    [
        "{root}/" + OTHER_UID,  # another job's directory
        "{root}",  # the parent of every job's directory
        "{root}/{uid}/..",
    ],
)
def test_epilog_never_removes_a_directory_that_is_not_the_jobs_own(
    node: Node, job_temp: str
) -> None:
    target = job_temp.format(root=node.job_root, uid=UID)
    node.plan([], job_temp=target)
    for d in (node.job_root / OTHER_UID, node.job_temp):
        d.mkdir()
        (d / "f").write_text("x")
    assert node.epilog().returncode == 0
    assert (node.job_root / OTHER_UID / "f").exists() and (node.job_temp / "f").exists()


def test_prepare_links_a_local_volume_to_a_directory_it_creates(node: Node) -> None:
    [local] = [v for v in volumes(node) if v["kind"] == "local"]
    plan = node.plan([local])
    for _ in range(2):  # a requeued run prepares again
        result = node.run("prepare", str(plan))
        assert result.returncode == 0, result.stderr
        link = node.job_temp / "mounts" / "loc"
        assert link.is_symlink() and os.readlink(link) == str(node.storage / "share")
        assert (node.storage / "share").is_dir()
    for path in (node.job_temp, node.job_temp / "mounts", node.job_temp / "cluster-mounts"):
        assert path.is_dir() and path.stat().st_mode & 0o777 == 0o700
    assert not (node.spool / "mount-error").exists()
    assert node.calls() == []


def test_prepare_fails_naming_the_volume_the_prolog_could_not_mount(node: Node) -> None:
    # (the fake mount mounts nothing, so the failed volume is the only root volume here)
    plan = node.plan([v for v in volumes(node) if v["kind"] == "local" or "bad" in v["label"]])
    assert node.prolog().returncode == 0
    result = node.run("prepare", str(plan))
    assert result.returncode == 1
    message = "volume V-bad (bad): mount.nfs: access denied by server"
    assert (node.spool / "mount-error").read_text() == message + "\n"
    assert message in result.stderr


def test_prepare_fails_when_the_prolog_did_not_mount_a_root_volume(node: Node) -> None:
    [nfs] = [v for v in volumes(node) if v["label"].startswith("V-nfs (")]
    plan = node.plan([nfs])
    node.status.write_text("{}")  # the Prolog ran, reported no error, but nothing is mounted
    assert node.run("prepare", str(plan)).returncode == 1
    assert (node.spool / "mount-error").read_text() == (
        "volume V-nfs (nfs): the Prolog did not mount it (see the node's slurmd log)\n"
    )


def test_prepare_needs_the_plan_file(node: Node) -> None:
    result = node.run("prepare")
    assert result.returncode == 2
    assert "prepare needs the plan file" in result.stderr


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary directory another user can reach (pytest's own is 0700 under root)."""
    with tempfile.TemporaryDirectory(prefix="bai-node-helper-") as name:
        path = Path(name)
        path.chmod(0o755)
        yield path


def test_prolog_gives_the_job_user_every_directory_it_made(open_tmp: Path) -> None:
    """A nested mount path (mounts/deep/smb) must not leave mounts/ owned by root: the job user
    could not put its own volumes next to it."""
    node = make_node(open_tmp)
    nobody = 65534
    for d in (node.spool_root, node.spool_root / "jobs", node.spool):
        os.chown(d, nobody, nobody)
    # local first: the fake mount mounts nothing, so prepare stops at the cifs volume
    vols = [v for v in volumes(node) if v["kind"] == "local" or "deep" in v["mountpoint"]]
    vols.sort(key=lambda v: v["kind"] != "local")
    plan = node.plan(vols)
    node.storage.mkdir()
    os.chown(node.storage, nobody, nobody)
    assert node.prolog(SLURM_JOB_UID=str(nobody), SLURM_JOB_GID=str(nobody)).returncode == 0
    jt = node.job_temp
    for path in (jt, jt / "mounts", jt / "mounts" / "deep", jt / "mounts" / "deep" / "smb"):
        assert (path.stat().st_uid, path.stat().st_gid) == (nobody, nobody), path
    assert node.job_root.stat().st_uid == os.getuid()  # never above the job's own directory
    result = subprocess.run(
        [
            "setpriv",
            f"--reuid={nobody}",
            f"--regid={nobody}",
            "--clear-groups",
            str(HELPER),
            "prepare",
            str(plan),
        ],
        env=node.env,
        capture_output=True,
        text=True,
    )
    assert (jt / "mounts" / "loc").is_symlink(), result.stderr
    assert (node.spool / "mount-error").read_text().startswith("volume V-cifs (smb): the Prolog")


def test_gpu_job_mapping_names_the_job_holding_each_gpu_and_drops_stale_names(node: Node) -> None:
    mapping = node.tmp / "map" / "%n"
    flags = ("--gpu-job-map", str(mapping))
    files = node.tmp / "map" / "n1"

    def run(action: str, job: str, gpus: str) -> None:
        done = node.run(
            action, "--spool", str(node.spool_root), *flags, SLURM_JOB_ID=job, SLURM_JOB_GPUS=gpus
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
