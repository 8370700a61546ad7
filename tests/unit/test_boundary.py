"""adapter.boundary attacked the way a job's user can attack it (DESIGN.md section 8).

Runs as root (skipped otherwise) with the real unprivileged users alice and bob: their trees are
built in tmp_path by them (or by root, then chowned) with symlinks, FIFOs, devices, sockets,
hard links, leases, tmpfs mounts and swaps, and every boundary call must refuse, skip or
survive them without following a link, blocking, leaking a descriptor or touching a victim.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import resource
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapter import boundary
from adapter.boundary import UnsafePath

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the boundary is root's: run as root")

CAP = 100
HANG = 5.0  # seconds before a call counts as hung: a hang check, not a timing assertion
PASSWD = b"root:x:0:0:root:/root:/bin/sh\n"
USER_PYTHON = (
    shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"
)  # not root's
BIND_SOCKET = f"{USER_PYTHON} -c 'import socket; socket.socket(socket.AF_UNIX).bind(\"f\")'"


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int


@pytest.fixture(scope="session")
def users() -> dict[str, User]:
    """alice and bob, made with `useradd -m` if this machine lacks them."""
    found = {}
    for name in ("alice", "bob"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "-m", name], check=True, capture_output=True)
            entry = pwd.getpwnam(name)
        found[name] = User(name, entry.pw_uid, entry.pw_gid)
    return found


Steps = list[tuple[str | None, str]]  # (user, None for root; a /bin/sh script)


class Tree:
    """tmp_path (root's, 0755) / area (root's, 0755: above the zone) / zone (alice's, 0755)."""

    def __init__(self, base: Path, users: dict[str, User]) -> None:
        self.base = base
        self.alice, self.bob = users["alice"], users["bob"]
        self.area = base / "area"
        self.zone = self.area / "zone"
        self.mounts: list[Path] = []

    def sh(self, user: str | None, script: str, cwd: Path | None = None) -> None:
        """`script` run by /bin/sh as `user` (None: root) in `cwd` (default: the zone). The
        directory is entered before privileges drop, so pytest's 0700 directories above
        tmp_path need not be opened to alice and bob."""
        done = subprocess.run(
            ["/bin/sh", "-euc", script],
            cwd=cwd or self.zone,
            user=user,
            group=user,
            extra_groups=None if user is None else [],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"{user or 'root'} ran {script!r}: {done.stderr}"

    def run(self, steps: Steps, cwd: Path | None = None) -> None:
        for user, script in steps:
            self.sh(user, script, cwd)

    def user_dir(self, path: Path, user: User, mode: int = 0o755) -> Path:
        """A directory made by root and handed to `user` (alice cannot write in root's area)."""
        path.mkdir()
        os.chown(path, user.uid, user.gid)
        path.chmod(mode)
        return path

    def mount_tmpfs(self, path: Path, owner: User) -> None:
        """A tmpfs on `path` whose root is `owner`'s, unmounted at teardown."""
        options = f"size=1m,mode=0755,uid={owner.uid},gid={owner.gid}"
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "bai-boundary-test", str(path)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        self.mounts.append(path)

    def mount_fuse(self, path: Path, owner: User) -> None:
        """`owner`'s own rclone FUSE mount on `path`, without allow_other: root may not even
        stat it. Unmounted at teardown (the rclone daemon then exits)."""
        rclone = shutil.which("rclone")
        if rclone is None or not os.path.exists("/dev/fuse"):
            pytest.skip("needs rclone and /dev/fuse")
        home = self.user_dir(self.base / f"fuse-{len(self.mounts)}", owner)
        self.sh(owner.name, "mkdir data && printf theirs > data/kept && : > rclone.conf", home)
        done = subprocess.run(
            [rclone, "--config", "rclone.conf", "mount", f":local:{home}/data", str(path)]
            + ["--daemon"],
            cwd=home,
            user=owner.name,
            group=owner.name,
            extra_groups=[],
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"rclone could not mount here: {done.stderr.strip()[-300:]}")
        self.mounts.append(path)
        for _ in range(50):
            if mounted(path):
                return
            time.sleep(0.1)
        pytest.fail(f"rclone said it mounted {path}, but nothing is mounted there")

    def unmount_all(self) -> None:
        for path in reversed(self.mounts):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(path)], capture_output=True)
        self.mounts.clear()


@contextlib.contextmanager
def built_tree(base: Path, users: dict[str, User]) -> Iterator[Tree]:
    base.chmod(0o755)
    built = Tree(base, users)
    built.area.mkdir()
    built.area.chmod(0o755)
    built.user_dir(built.zone, built.alice)
    try:
        yield built
    finally:
        built.unmount_all()


@pytest.fixture
def tree(tmp_path: Path, users: dict[str, User]) -> Iterator[Tree]:
    with built_tree(tmp_path, users) as built:
        yield built


@pytest.fixture
def open_tree(users: dict[str, User]) -> Iterator[Tree]:
    """A tree every user can reach by its absolute path, unlike tmp_path (below pytest's 0700
    directory): fusermount and rclone, run as alice, need one."""
    base = Path(tempfile.mkdtemp(prefix="bai-boundary-", dir="/tmp"))
    try:
        with built_tree(base, users) as built:
            yield built
    finally:
        shutil.rmtree(base)


def mounted(path: Path) -> bool:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return any(line.split()[4] == str(path) for line in lines)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_descriptor_leaks() -> Iterator[None]:
    """Every call, refused or not, closes what it opened: no descriptor is open after a test
    that was not before it (others may close, as earlier tests' garbage is collected)."""
    before = _open_fds()
    yield
    left = {}
    for fd in sorted(_open_fds() - before):
        with contextlib.suppress(OSError):  # the listing's own descriptor, gone by now
            left[fd] = os.readlink(f"/proc/self/fd/{fd}")
    assert not left, f"descriptors left open: {left}"


def snapshot(path: Path) -> dict[str, tuple[Any, ...]]:
    """`path` and everything below it: type and mode, owner, inode, links and content."""
    found: dict[str, tuple[Any, ...]] = {}

    def one(entry: Path) -> None:
        st = entry.lstat()
        content: bytes | str | None = None
        if stat.S_ISREG(st.st_mode):
            content = entry.read_bytes()
        elif stat.S_ISLNK(st.st_mode):
            content = os.readlink(entry)
        rel = str(entry.relative_to(path))
        found[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_ino, st.st_nlink, content)

    one(path)
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                one(Path(dirpath, name))
    return found


def finishing(call: Callable[[], object], unblock: Callable[[], None]) -> BaseException | None:
    """What `call` raised (None: it returned), run in a thread joined for HANG seconds; the
    test fails if it is still blocked then (`unblock` frees the thread first)."""
    caught: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            caught.append(None)
        except BaseException as exc:  # handed to the test, never left to the thread
            caught.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG)
    if worker.is_alive():
        unblock()
        worker.join(HANG)
        pytest.fail(f"the call was still blocked after {HANG} s")
    return caught[0]


def _stat(path: str) -> tuple[int, ...] | None:
    """What a victim outside tmp_path looks like, without reading it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_mode, st.st_uid, st.st_ino, st.st_nlink, st.st_size, st.st_mtime_ns)


def stale_temps(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.name.startswith(".bai-"))


# -- read_bytes: one file of the zone --------------------------------------------------------

READS = [
    pytest.param([("alice", "printf hello > f")], "f", b"hello", id="alice-regular-file"),
    pytest.param([("alice", "mkdir -p a/b && printf deep > a/b/f")], "a/b/f", b"deep", id="nested"),
    pytest.param([("alice", "head -c 100 /dev/zero > f")], "f", b"\0" * CAP, id="exactly-the-cap"),
    pytest.param([("alice", "head -c 101 /dev/zero > f")], "f", UnsafePath, id="over-the-cap"),
    pytest.param([], "f", None, id="missing-file"),
    pytest.param([], "nodir/f", None, id="missing-directory"),
    pytest.param([("alice", "ln -s /etc/shadow f")], "f", UnsafePath, id="link-to-etc-shadow"),
    pytest.param(
        [("alice", "printf mine > real && ln -s real f")], "f", UnsafePath, id="link-to-own-file"
    ),
    pytest.param([("alice", "ln -s /dev/zero f")], "f", UnsafePath, id="link-to-dev-zero"),
    pytest.param(
        [("alice", "mkdir real && printf x > real/f && ln -s real d")],
        "d/f",
        UnsafePath,
        id="link-at-directory-in-zone",
    ),
    pytest.param([("alice", "ln -s /etc d")], "d/passwd", UnsafePath, id="link-dir-to-etc"),
    pytest.param([("alice", "printf x > d")], "d/f", UnsafePath, id="file-as-directory"),
    pytest.param([("alice", "mkdir f")], "f", UnsafePath, id="directory-at-file-name"),
    pytest.param([("alice", BIND_SOCKET)], "f", UnsafePath, id="unix-socket"),
    pytest.param(
        [(None, "mknod f c 1 3 && chown alice:alice f")], "f", UnsafePath, id="dev-null-node"
    ),
    pytest.param(
        [(None, "printf theirs > f && chown bob:bob f")], "f", UnsafePath, id="file-of-bob"
    ),
    pytest.param([(None, "printf root > f")], "f", UnsafePath, id="file-of-root"),
    pytest.param(
        [(None, "mkdir d && chown bob:bob d && printf x > d/f && chown alice:alice d/f")],
        "d/f",
        UnsafePath,
        id="directory-of-bob-in-zone",
    ),
    pytest.param(
        [(None, "printf secret > ../victim && chown alice:alice ../victim")],
        "../victim",
        UnsafePath,
        id="dotdot",
    ),
    pytest.param(
        [("alice", "mkdir a"), (None, "printf s > ../victim && chown alice:alice ../victim")],
        "a/../../victim",
        UnsafePath,
        id="dotdot-inside",
    ),
    pytest.param([], "/etc/shadow", UnsafePath, id="absolute-relative"),
    pytest.param([("alice", "printf x > f")], "f\0x", UnsafePath, id="nul-in-relative"),
]


@pytest.mark.parametrize(("steps", "relative", "expected"), READS)
def test_read_bytes(tree: Tree, steps: Steps, relative: str, expected: object) -> None:
    """alice plants something at (or on the way to) the file root reads from her zone."""
    tree.run(steps)
    if expected is UnsafePath:
        with pytest.raises(UnsafePath):
            boundary.read_bytes(str(tree.zone), relative, tree.alice.uid, CAP)
    else:
        assert boundary.read_bytes(str(tree.zone), relative, tree.alice.uid, CAP) == expected


class GrowAfterFstat:
    """boundary's `os`, whose fstat lets alice append to her file right after root sized it."""

    def __init__(self, path: Path) -> None:
        self.file, self.grown = path, False  # not .path: that is os.path here

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fstat(self, fd: int) -> os.stat_result:
        st = os.fstat(fd)
        seen = self.file.lstat()
        if not self.grown and (st.st_dev, st.st_ino) == (seen.st_dev, seen.st_ino):
            with self.file.open("ab") as f:
                f.write(b"\0" * CAP)
            self.grown = True
        return st


def test_read_refuses_file_growing_past_the_cap(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alice appends between root's fstat and read: no more than the cap is taken, and refused."""
    tree.sh("alice", "printf small > f")
    grower = GrowAfterFstat(tree.zone / "f")
    monkeypatch.setattr(boundary, "os", grower)
    with pytest.raises(UnsafePath, match="grew past"):
        boundary.read_bytes(str(tree.zone), "f", tree.alice.uid, CAP)
    assert grower.grown


def test_read_refuses_hard_link_of_root_file(tree: Tree) -> None:
    """A hard link in alice's zone to a root-only file: the owner check refuses it."""
    tree.sh(None, "printf 'secret\\n' > ../shadow && chmod 0600 ../shadow")
    tree.sh("alice", "ln ../shadow f 2>/dev/null || true")  # protected_hardlinks stops alice
    if not (tree.zone / "f").exists():
        tree.sh(None, "ln ../shadow f")
    st = (tree.zone / "f").lstat()
    assert (st.st_nlink, st.st_uid) == (2, 0)
    with pytest.raises(UnsafePath, match="belongs to uid 0"):
        boundary.read_bytes(str(tree.zone), "f", tree.alice.uid, CAP)


def test_read_of_fifo_returns_at_once(tree: Tree) -> None:
    """A FIFO where root reads: refused at once, never waiting for a writer."""
    tree.sh("alice", "mkfifo f")
    fifo = str(tree.zone / "f")

    def unblock() -> None:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    caught = finishing(
        lambda: boundary.read_bytes(str(tree.zone), "f", tree.alice.uid, CAP), unblock
    )
    assert isinstance(caught, UnsafePath), caught


LEASE_HOLDER = """
import fcntl, os, signal, sys, time
signal.signal(signal.SIGIO, signal.SIG_IGN)
fd = os.open("f", os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
print("held", flush=True)
time.sleep(120)
"""


def test_read_of_leased_file_returns_at_once(tree: Tree) -> None:
    """alice's write lease on her file: root's open fails at once, not after the lease break."""
    tree.sh("alice", "printf x > f")
    holder = subprocess.Popen(
        [USER_PYTHON, "-c", LEASE_HOLDER],
        cwd=tree.zone,
        user="alice",
        group="alice",
        extra_groups=[],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        caught = finishing(
            lambda: boundary.read_bytes(str(tree.zone), "f", tree.alice.uid, CAP), holder.kill
        )
        assert isinstance(caught, UnsafePath) and "lease" in caught.reason, caught
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()


ZONES = [
    pytest.param(
        [(None, "mkdir real && printf x > real/f && chown -R alice:alice real && ln -s real top")],
        "top",
        UnsafePath,
        id="top-is-root-symlink",
    ),
    pytest.param(
        [
            (None, "mkdir real && printf x > real/f && chown -R alice:alice real"),
            (None, "ln -s real top && chown -h alice:alice top"),
        ],
        "top",
        UnsafePath,
        id="top-is-alice-symlink",
    ),
    pytest.param(
        [(None, "mkdir top && printf x > top/f && chown bob:bob top && chown alice:alice top/f")],
        "top",
        UnsafePath,
        id="top-of-bob",
    ),
    pytest.param(
        [(None, "mkdir top && printf x > top/f && chown alice:alice top/f")],
        "top",
        UnsafePath,
        id="top-of-root",
    ),
    pytest.param(
        [(None, "printf x > top && chown alice:alice top")], "top", UnsafePath, id="top-is-file"
    ),
    pytest.param([], "top", None, id="top-missing"),
    pytest.param([], "nowhere/top", None, id="above-missing"),
    pytest.param(
        [
            (None, "mkdir -p real/top && printf x > real/top/f && chown -R alice:alice real/top"),
            (None, "ln -s real up && chown -h bob:bob up"),
        ],
        "up/top",
        UnsafePath,
        id="above-symlink-of-bob",
    ),
    pytest.param(
        [
            (None, "mkdir -p real/top && printf x > real/top/f && chown -R alice:alice real/top"),
            (None, "ln -s real up && chown -h alice:alice up"),
        ],
        "up/top",
        UnsafePath,
        id="above-symlink-of-alice",
    ),
    pytest.param(
        [
            (None, "mkdir -p real/top && printf x > real/top/f && chown -R alice:alice real/top"),
            (None, "ln -s real up"),
        ],
        "up/top",
        b"x",
        id="above-symlink-of-root",
    ),
    pytest.param(
        [
            (None, "mkdir -p real/top && printf x > real/top/f && chown -R alice:alice real/top"),
            (None, 'ln -s "$(pwd -P)/real" abs && ln -s abs l1 && mkdir sub && ln -s ../l1 sub/l2'),
        ],
        "sub/l2/top",
        b"x",
        id="above-root-chain-absolute-and-relative",
    ),
    pytest.param(
        [
            (None, "mkdir -p bobs/top && printf x > bobs/top/f && chown -R alice:alice bobs/top"),
            (None, "chown bob:bob bobs"),
        ],
        "bobs/top",
        b"x",
        id="above-directory-of-bob",
    ),
]


@pytest.mark.parametrize(("steps", "top", "expected"), ZONES)
def test_zone_top_and_above(tree: Tree, steps: Steps, top: str, expected: object) -> None:
    """Links and owners at the zone top and above it, where only root's links are followed."""
    tree.run(steps, cwd=tree.area)
    where = str(tree.area / top)
    if expected is UnsafePath:
        with pytest.raises(UnsafePath):
            boundary.read_bytes(where, "f", tree.alice.uid, CAP)
    else:
        assert boundary.read_bytes(where, "f", tree.alice.uid, CAP) == expected


def test_read_refuses_mount_inside_zone(tree: Tree) -> None:
    """A filesystem mounted inside alice's zone (alice's own tmpfs) is refused."""
    tree.sh("alice", "mkdir m")
    tree.mount_tmpfs(tree.zone / "m", tree.alice)
    tree.sh("alice", "printf x > m/f")
    with pytest.raises(UnsafePath, match="another filesystem"):
        boundary.read_bytes(str(tree.zone), "m/f", tree.alice.uid, CAP)


def test_read_refuses_mount_on_zone_top(tree: Tree) -> None:
    """A filesystem mounted on the zone top itself is refused: the top must be on its parent's."""
    tree.mount_tmpfs(tree.zone, tree.alice)
    tree.sh("alice", "printf x > f")
    with pytest.raises(UnsafePath, match="another filesystem"):
        boundary.read_bytes(str(tree.zone), "f", tree.alice.uid, CAP)


# -- list_entries through zone() ---------------------------------------------------------------


def listed(tree: Tree, relative: str = "", limit: int = 100) -> dict[str, tuple[bool, int]]:
    with boundary.zone(str(tree.zone), tree.alice.uid, relative) as fd:
        return {
            e.name: (e.is_dir, e.size) for e in boundary.list_entries(fd, tree.alice.uid, limit)
        }


def test_list_keeps_only_alices_files_and_directories(tree: Tree) -> None:
    """Symlinks, FIFOs, sockets, devices and other owners' entries are left out of a listing."""
    tree.sh("alice", "printf 12345 > file && mkdir dir && printf x > dir/inner && mkfifo fifo")
    tree.sh("alice", "ln -s file link && ln -s /etc etc && ln -s dir dirlink")
    tree.sh("alice", BIND_SOCKET.replace('"f"', '"sock"'))
    tree.sh(None, "printf b > bobs && mkdir bobdir && chown bob:bob bobs bobdir")
    tree.sh(None, "printf r > roots && mknod dev c 1 3 && chown alice:alice dev")
    assert listed(tree) == {"file": (False, 5), "dir": (True, 0)}
    with boundary.zone(str(tree.zone), tree.alice.uid) as fd:
        (entry,) = [e for e in boundary.list_entries(fd, tree.alice.uid, 100) if e.name == "file"]
    assert entry.mtime == (tree.zone / "file").lstat().st_mtime
    assert listed(tree, "dir") == {"inner": (False, 1)}


def test_list_leaves_out_mount_point(tree: Tree) -> None:
    """A tmpfs alice owns, mounted in her zone, is not listed (nor is it entered)."""
    tree.sh("alice", "mkdir m && printf x > f")
    tree.mount_tmpfs(tree.zone / "m", tree.alice)
    assert listed(tree) == {"f": (False, 1)}


def test_list_leaves_out_closed_fuse_mount(open_tree: Tree) -> None:
    """alice's own FUSE mount in her zone, which root may not even stat, is left out."""
    tree = open_tree
    tree.sh("alice", "mkdir m && printf x > f")
    tree.mount_fuse(tree.zone / "m", tree.alice)
    with pytest.raises(PermissionError):
        os.lstat(tree.zone / "m")
    assert listed(tree) == {"f": (False, 1)}


def test_read_into_closed_fuse_mount_is_refused(open_tree: Tree) -> None:
    """A path through alice's own closed FUSE mount is refused like any mount inside the zone."""
    tree = open_tree
    tree.sh("alice", "mkdir m")
    tree.mount_fuse(tree.zone / "m", tree.alice)
    with pytest.raises(UnsafePath):
        boundary.read_bytes(str(tree.zone), "m/kept", tree.alice.uid, CAP)


@pytest.mark.parametrize(
    ("relative", "error"),
    [
        pytest.param("dirlink", UnsafePath, id="symlink-to-directory"),
        pytest.param("etc", UnsafePath, id="symlink-to-etc"),
        pytest.param("file", UnsafePath, id="a-file"),
        pytest.param("../zone", UnsafePath, id="dotdot"),
        pytest.param("missing", FileNotFoundError, id="missing"),
    ],
)
def test_list_refuses_what_is_not_alices_directory(
    tree: Tree, relative: str, error: type[Exception]
) -> None:
    """zone() into a link, a file, '..' or nothing: refused, or missing, never followed."""
    tree.sh("alice", "mkdir dir && printf x > file && ln -s dir dirlink && ln -s /etc etc")
    with pytest.raises(error):
        listed(tree, relative)


@pytest.mark.parametrize(("limit", "ok"), [(5, True), (4, False)])
def test_list_limit(tree: Tree, limit: int, ok: bool) -> None:
    """A directory with more than `limit` entries is refused rather than listed in full."""
    tree.sh("alice", "for i in 1 2 3 4 5; do printf x > f$i; done")
    if ok:
        assert len(listed(tree, limit=limit)) == 5
    else:
        with pytest.raises(UnsafePath, match="more than 4 entries"):
            listed(tree, limit=limit)


def test_list_skips_entry_removed_while_listing(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alice removes a file between readdir and stat: it is left out, not an error."""
    tree.sh("alice", "printf x > kept && printf y > gone")
    real = os.scandir

    class Racing:
        def __init__(self, fd: int) -> None:
            with real(fd) as it:
                self.items = list(it)
            os.unlink("gone", dir_fd=fd)  # after readdir, before list_entries stats it

        def __enter__(self) -> Iterator[os.DirEntry[str]]:
            return iter(self.items)

        def __exit__(self, *_: object) -> None:
            return None

    monkeypatch.setattr(os, "scandir", Racing)  # the os boundary uses
    assert listed(tree) == {"kept": (False, 1)}


# -- make_user_dir -----------------------------------------------------------------------------


def test_make_user_dir_hands_over_new_directory(tree: Tree) -> None:
    """A new directory ends alice's with the mode asked for, whatever the umask."""
    for name, mode in (("d", 0o700), ("e", 0o750)):
        boundary.make_user_dir(str(tree.area), name, tree.alice.uid, tree.alice.gid, mode)
        st = (tree.area / name).lstat()
        assert stat.S_ISDIR(st.st_mode)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (
            tree.alice.uid,
            tree.alice.gid,
            mode,
        )


def test_make_user_dir_leaves_alices_directory_alone(tree: Tree) -> None:
    """An existing directory of alice keeps its mode and content."""
    tree.sh("alice", "chmod 0751 . && printf keep > f")
    before = snapshot(tree.zone)
    boundary.make_user_dir(str(tree.area), "zone", tree.alice.uid, tree.alice.gid, 0o700)
    assert snapshot(tree.zone) == before


def test_make_user_dir_finishes_a_crashed_handover(tree: Tree) -> None:
    """A root-owned directory (a crash between mkdir and chown) is handed over on the retry."""
    (tree.area / "d").mkdir(mode=0o755)
    boundary.make_user_dir(str(tree.area), "d", tree.alice.uid, tree.alice.gid, 0o700)
    st = (tree.area / "d").lstat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (
        tree.alice.uid,
        tree.alice.gid,
        0o700,
    )


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param("ln -s victim d && chown -h alice:alice d", id="symlink-to-root-dir"),
        pytest.param("ln -s victim d", id="root-symlink-to-root-dir"),
        pytest.param("ln -s nowhere d && chown -h alice:alice d", id="dangling-symlink"),
        pytest.param("mkdir d && chown bob:bob d && chmod 0750 d", id="directory-of-bob"),
        pytest.param("printf x > d && chown alice:alice d", id="file-of-alice"),
        pytest.param("mkfifo d && chown alice:alice d", id="fifo"),
    ],
)
def test_make_user_dir_refuses_what_is_planted(tree: Tree, plant: str) -> None:
    """Something planted at the name: refused, and neither it nor a link's target changes."""
    tree.sh(None, f"mkdir victim && printf k > victim/keep && {plant}", cwd=tree.area)
    before = snapshot(tree.area)
    with pytest.raises(UnsafePath):
        boundary.make_user_dir(str(tree.area), "d", tree.alice.uid, tree.alice.gid, 0o700)
    assert snapshot(tree.area) == before
    assert not (tree.area / "nowhere").exists()


# -- write_user_files --------------------------------------------------------------------------


def write(tree: Tree, files: dict[str, bytes], mode: int = 0o600, **kw: Any) -> None:
    boundary.write_user_files(
        str(tree.zone), files, uid=tree.alice.uid, gid=tree.alice.gid, mode=mode, **kw
    )


def assert_alices(path: Path, content: bytes, mode: int, alice: User) -> None:
    st = path.lstat()
    assert stat.S_ISREG(st.st_mode), path
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (alice.uid, alice.gid, mode)
    assert path.read_bytes() == content


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_write_user_files_are_alices(tree: Tree, mode: int) -> None:
    """Root's files in alice's zone are hers, with the mode asked for, and no temp remains."""
    write(tree, {"plan.json": b"{}", "secrets.env": b"K=V\n", "empty": b""}, mode)
    assert_alices(tree.zone / "plan.json", b"{}", mode, tree.alice)
    assert_alices(tree.zone / "secrets.env", b"K=V\n", mode, tree.alice)
    assert_alices(tree.zone / "empty", b"", mode, tree.alice)
    assert stale_temps(tree.zone) == []


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param([("alice", "ln -s ../passwd plan.json")], id="symlink-to-root-file"),
        pytest.param([("alice", "ln -s /etc/shadow plan.json")], id="symlink-to-etc-shadow"),
        pytest.param([("alice", "ln -s nowhere plan.json")], id="dangling-symlink"),
        pytest.param(
            [
                ("alice", "ln ../passwd plan.json 2>/dev/null || true"),
                (None, "[ -e plan.json ] || ln ../passwd plan.json"),
            ],
            id="hard-link-of-root-file",
        ),
        pytest.param([(None, "printf b > plan.json && chown bob:bob plan.json")], id="file-of-bob"),
        pytest.param([("alice", "printf old > plan.json && chmod 0666 plan.json")], id="old-file"),
        pytest.param([("alice", "mkfifo plan.json")], id="fifo"),
    ],
)
def test_write_replaces_what_is_planted(tree: Tree, plant: Steps) -> None:
    """A link, hard link, FIFO or other file at the name is replaced; its target is untouched."""
    (tree.area / "passwd").write_bytes(PASSWD)
    (tree.area / "passwd").chmod(0o644)
    victims = (snapshot(tree.area / "passwd"), _stat("/etc/shadow"))
    tree.run(plant)

    def unblock() -> None:
        os.close(os.open(tree.zone / "plan.json", os.O_WRONLY | os.O_NONBLOCK))

    assert finishing(lambda: write(tree, {"plan.json": b"new"}), unblock) is None
    assert_alices(tree.zone / "plan.json", b"new", 0o600, tree.alice)
    after = (snapshot(tree.area / "passwd"), _stat("/etc/shadow"))
    assert after == victims  # content, owner, mode and link count (the hard link is gone)
    assert stale_temps(tree.zone) == []


@pytest.mark.parametrize(
    ("free_after", "plant"),
    [
        pytest.param(1, "mkdir", id="directory-at-first-temp-name"),
        pytest.param(1, "ln -s ../passwd", id="symlink-at-first-temp-name"),
        pytest.param(8, "mkdir", id="every-temp-name-taken"),
    ],
)
def test_write_with_temp_names_squatted(
    tree: Tree, monkeypatch: pytest.MonkeyPatch, free_after: int, plant: str
) -> None:
    """alice guessed the temp names: a taken one (link never followed) is skipped, or refused."""
    (tree.area / "passwd").write_bytes(PASSWD)
    victim = snapshot(tree.area / "passwd")
    names = [f"{i:012x}" for i in range(8)]
    for token in names[:free_after]:
        tree.sh("alice", f"{plant} .bai-plan.json.{token}")
    tokens = iter(names)
    monkeypatch.setattr(boundary, "_token", lambda: next(tokens))
    if free_after == 8:
        with pytest.raises(UnsafePath, match="no temporary name was free"):
            write(tree, {"plan.json": b"new"})
        assert not os.path.lexists(tree.zone / "plan.json")
    else:
        write(tree, {"plan.json": b"new"})
        assert_alices(tree.zone / "plan.json", b"new", 0o600, tree.alice)
    assert snapshot(tree.area / "passwd") == victim
    # A link or file at a temp name is removed with the stale temps; a directory stays.
    assert len(stale_temps(tree.zone)) == (free_after if plant == "mkdir" else 0)


def test_write_onto_planted_directory_fails_cleanly(tree: Tree) -> None:
    """A directory planted at the name: the write fails and nothing in the zone changes."""
    tree.sh("alice", "mkdir plan.json && printf keep > plan.json/inner && printf o > other")
    before = snapshot(tree.zone)
    with pytest.raises(IsADirectoryError):
        write(tree, {"plan.json": b"new"})
    assert snapshot(tree.zone) == before


def test_write_removes_stale_temps(tree: Tree) -> None:
    """Temps an interrupted write of the same name left go; another name's temps (a writer at
    work beside this one), a directory named like one and other files stay."""
    tree.sh("alice", "printf half > .bai-plan.json.0123456789ab && printf x > .bai-other")
    tree.sh("alice", "mkdir .bai-dir && printf k > .bai-dir/k && printf k > keep")
    write(tree, {"plan.json": b"new"})
    assert stale_temps(tree.zone) == [".bai-dir", ".bai-other"]
    assert (tree.zone / ".bai-dir" / "k").read_bytes() == b"k"
    assert (tree.zone / "keep").read_bytes() == b"k"
    assert_alices(tree.zone / "plan.json", b"new", 0o600, tree.alice)


def test_writers_of_other_names_in_one_directory_never_undo_each_other(tree: Tree) -> None:
    """Four threads write different files into one directory at once, as the submitters write
    root plans: no writer's temporary is taken for a stale one by another."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(50):
                write(tree, {f"plan-{n}-{i}.json": b"x" * 100})
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len([p for p in tree.zone.iterdir() if p.name.startswith("plan-")]) == 200
    assert stale_temps(tree.zone) == []


class Crash(Exception):
    pass


@pytest.mark.parametrize("old", [b"old", None])
def test_write_interrupted_midway_changes_nothing(tree: Tree, old: bytes | None) -> None:
    """An error midway: old content (or absence) kept; the temp, alice's already, removed."""
    if old is not None:
        tree.sh("alice", "printf old > plan.json")
    seen: list[os.stat_result] = []

    def midway() -> None:
        (temp,) = stale_temps(tree.zone)
        seen.append((tree.zone / temp).lstat())
        raise Crash

    with pytest.raises(Crash):
        write(tree, {"plan.json": b"0123456789"}, 0o640, midway=midway)
    (st,) = seen
    assert (st.st_uid, stat.S_IMODE(st.st_mode), st.st_size) == (tree.alice.uid, 0o640, 5)
    if old is None:
        assert not (tree.zone / "plan.json").exists()
    else:
        assert (tree.zone / "plan.json").read_bytes() == old
    assert stale_temps(tree.zone) == []


def test_write_killed_midway_is_finished_by_the_next(tree: Tree) -> None:
    """Killed midway (crash_midway): the old file stays, the next write clears the temp."""
    tree.sh("alice", "printf old > plan.json")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            write(tree, {"plan.json": b"0123456789"}, midway=lambda: os._exit(3))
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 3
    assert (tree.zone / "plan.json").read_bytes() == b"old"
    (temp,) = stale_temps(tree.zone)
    assert_alices(tree.zone / temp, b"01234", 0o600, tree.alice)
    write(tree, {"plan.json": b"new"})
    assert stale_temps(tree.zone) == []
    assert (tree.zone / "plan.json").read_bytes() == b"new"


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param("mv zone real && ln -s real zone", id="top-is-root-symlink"),
        pytest.param("chown bob:bob zone", id="top-of-bob"),
    ],
)
def test_write_refuses_untrusted_top(tree: Tree, plant: str) -> None:
    """The zone top is a link or bob's: nothing is written anywhere."""
    tree.sh(None, plant, cwd=tree.area)
    before = snapshot(tree.area)
    with pytest.raises(UnsafePath):
        write(tree, {"plan.json": b"new"})
    assert snapshot(tree.area) == before


# -- remove_user_file --------------------------------------------------------------------------


def test_remove_user_file_removes_a_file(tree: Tree) -> None:
    """alice's file goes; a missing name or a missing zone is no error."""
    tree.sh("alice", "printf x > secrets.env && printf k > keep")
    boundary.remove_user_file(str(tree.zone), "secrets.env", tree.alice.uid)
    boundary.remove_user_file(str(tree.zone), "secrets.env", tree.alice.uid)
    boundary.remove_user_file(str(tree.area / "gone"), "secrets.env", tree.alice.uid)
    assert sorted(p.name for p in tree.zone.iterdir()) == ["keep"]


def test_remove_user_file_leaves_directory_alone(tree: Tree) -> None:
    """A directory planted at the name is neither removed nor emptied."""
    tree.sh("alice", "mkdir secrets.env && printf k > secrets.env/k")
    before = snapshot(tree.zone)
    boundary.remove_user_file(str(tree.zone), "secrets.env", tree.alice.uid)
    assert snapshot(tree.zone) == before


@pytest.mark.parametrize("target", ["../passwd", "mine"])
def test_remove_user_file_unlinks_symlink_not_target(tree: Tree, target: str) -> None:
    """A symlink at the name is unlinked; the file it names (root's or alice's) stays."""
    (tree.area / "passwd").write_bytes(PASSWD)
    tree.sh("alice", f"printf m > mine && ln -s {target} secrets.env")
    victims = (snapshot(tree.area / "passwd"), snapshot(tree.zone / "mine"))
    boundary.remove_user_file(str(tree.zone), "secrets.env", tree.alice.uid)
    assert not os.path.lexists(tree.zone / "secrets.env")
    assert (snapshot(tree.area / "passwd"), snapshot(tree.zone / "mine")) == victims


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param("mv zone real && ln -s real zone", id="top-is-root-symlink"),
        pytest.param("chown bob:bob zone", id="top-of-bob"),
    ],
)
def test_remove_user_file_refuses_untrusted_top(tree: Tree, plant: str) -> None:
    """The zone top is a link or bob's: nothing is removed."""
    tree.sh("alice", "printf x > secrets.env")
    tree.sh(None, plant, cwd=tree.area)
    before = snapshot(tree.area)
    with pytest.raises(UnsafePath):
        boundary.remove_user_file(str(tree.zone), "secrets.env", tree.alice.uid)
    assert snapshot(tree.area) == before


# -- remove_tree -------------------------------------------------------------------------------


@pytest.fixture
def victim(tree: Tree) -> Path:
    """A root directory outside every zone, with a file and a subdirectory."""
    tree.sh(
        None,
        "mkdir -p victim/sub && printf k > victim/keep && printf s > victim/sub/s",
        cwd=tree.area,
    )
    return tree.area / "victim"


def test_remove_tree_removes_deep_tree(tree: Tree, victim: Path) -> None:
    """alice's deep tree with links out, FIFOs, sockets, locked parts goes; link targets stay."""
    t = tree.user_dir(tree.area / "t", tree.alice)
    deep = "/".join(["d"] * 60)
    tree.sh(
        "alice",
        f"mkdir -p {deep} && printf x > {deep}/f && mkfifo {deep}/fifo && ln -s ../victim up"
        f" && ln -s ../victim/keep {deep}/keep && ln -s / root && printf h > .hidden"
        " && mkdir -p locked/in && printf l > locked/in/f && chmod 0 locked/in locked",
        cwd=t,
    )
    tree.sh(
        None, "ln ../victim/keep hard && mknod dev c 1 3 && mkdir bobs && chown bob bobs", cwd=t
    )
    tree.sh("alice", BIND_SOCKET.replace('"f"', '"d/sock"'), cwd=t)
    before = snapshot(victim)
    assert boundary.remove_tree(str(tree.area), "t", frozenset({tree.alice.uid})) is True
    assert not os.path.lexists(t)
    assert snapshot(victim) == {
        **before,
        "keep": before["keep"][:4] + (1,) + before["keep"][5:],  # the hard link went
    }


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param("ln -s victim t && chown -h alice:alice t", id="symlink"),
        pytest.param("ln -s victim/keep t && chown -h alice:alice t", id="symlink-to-file"),
        pytest.param("printf x > t && chown alice:alice t", id="file"),
        pytest.param("mkfifo t && chown alice:alice t", id="fifo"),
    ],
)
def test_remove_tree_unlinks_what_is_not_a_directory(tree: Tree, victim: Path, plant: str) -> None:
    """A symlink, file or FIFO at the name is unlinked; a link's target stays."""
    tree.sh(None, plant, cwd=tree.area)
    before = snapshot(victim)
    assert boundary.remove_tree(str(tree.area), "t", frozenset({tree.alice.uid})) is True
    assert not os.path.lexists(tree.area / "t")
    assert snapshot(victim) == before


def test_remove_tree_of_nothing(tree: Tree) -> None:
    """A missing name is already removed."""
    assert boundary.remove_tree(str(tree.area), "t", frozenset({tree.alice.uid})) is True


def test_remove_tree_does_not_enter_a_mount(tree: Tree) -> None:
    """A tmpfs mounted inside the tree is left whole, and remove_tree says something stayed."""
    t = tree.user_dir(tree.area / "t", tree.alice)
    tree.sh("alice", "mkdir -p a/m b && printf x > a/f && printf y > b/g", cwd=t)
    tree.mount_tmpfs(t / "a" / "m", tree.alice)
    tree.sh("alice", "printf z > a/m/kept", cwd=t)
    assert boundary.remove_tree(str(tree.area), "t", frozenset({tree.alice.uid})) is False
    assert (t / "a" / "m" / "kept").read_bytes() == b"z"
    assert sorted(p.name for p in t.iterdir()) == ["a"]
    assert sorted(p.name for p in (t / "a").iterdir()) == ["m"]


def test_remove_tree_does_not_enter_a_mount_on_the_name(tree: Tree) -> None:
    """A tmpfs mounted on the name itself (alice's rclone on her job temp) is not emptied."""
    t = tree.user_dir(tree.area / "t", tree.alice)
    tree.mount_tmpfs(t, tree.alice)
    tree.sh("alice", "mkdir d && printf z > d/kept", cwd=t)
    assert boundary.remove_tree(str(tree.area), "t", frozenset({tree.alice.uid})) is False
    assert (t / "d" / "kept").read_bytes() == b"z"


def test_remove_tree_leaves_closed_fuse_mount(open_tree: Tree) -> None:
    """alice's FUSE mount that root may not stat stays mounted and whole; the rest goes."""
    tree = open_tree
    t = tree.user_dir(tree.area / "t", tree.alice)
    tree.sh("alice", "mkdir m d && printf x > d/f", cwd=t)
    tree.mount_fuse(t / "m", tree.alice)
    assert boundary.remove_tree(str(tree.area), "t", frozenset({tree.alice.uid})) is False
    assert sorted(p.name for p in t.iterdir()) == ["m"]
    assert mounted(t / "m")
    assert (tree.base / "fuse-0" / "data" / "kept").read_bytes() == b"theirs"


@pytest.mark.parametrize(
    ("owner", "owners", "result"),
    [
        pytest.param("bob", ("alice",), UnsafePath, id="bobs-not-in-owners"),
        pytest.param("root", ("alice",), UnsafePath, id="roots-not-in-owners"),
        pytest.param("alice", ("root",), UnsafePath, id="alices-not-in-owners"),
        pytest.param("root", ("root", "alice"), True, id="roots-in-owners"),
        pytest.param("alice", ("root", "alice"), True, id="alices-in-owners"),
        pytest.param("bob", None, True, id="bobs-with-owners-none"),
    ],
)
def test_remove_tree_owners(
    tree: Tree, owner: str, owners: tuple[str, ...] | None, result: object
) -> None:
    """The directory at the name must be one of `owners`' (None: anyone's)."""
    uids = {"root": 0, "alice": tree.alice.uid, "bob": tree.bob.uid}
    owners_ = None if owners is None else frozenset(uids[o] for o in owners)
    tree.sh(None, f"mkdir -p t/sub && printf x > t/sub/f && chown -R {owner} t", cwd=tree.area)
    before = snapshot(tree.area / "t")
    if result is UnsafePath:
        with pytest.raises(UnsafePath, match="belongs to uid"):
            boundary.remove_tree(str(tree.area), "t", owners_)
        assert snapshot(tree.area / "t") == before
    else:
        assert boundary.remove_tree(str(tree.area), "t", owners_) is result
        assert not os.path.lexists(tree.area / "t")


def test_remove_tree_refuses_untrusted_parent(tree: Tree) -> None:
    """The parent is reached through bob's symlink: refused, nothing removed."""
    t = tree.user_dir(tree.area / "t", tree.alice)
    tree.sh("alice", "printf x > f", cwd=t)
    tree.sh(None, "ln -s . up && chown -h bob:bob up", cwd=tree.area)
    with pytest.raises(UnsafePath, match="symlink of uid"):
        boundary.remove_tree(str(tree.area / "up"), "t", None)
    assert (t / "f").exists()


def test_remove_tree_deeper_than_it_holds_open(tree: Tree) -> None:
    """A tree deeper than the fd budget: no EMFILE; the deep part stays, and it says so."""
    t = tree.user_dir(tree.area / "t", tree.alice)
    depth = boundary._MAX_DEPTH + 40
    tree.sh("alice", f"mkdir -p {'/'.join(['d'] * depth)}", cwd=t)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(_open_fds()) + boundary._MAX_DEPTH + 20, hard))
    try:
        kept = boundary.remove_tree(str(tree.area), "t", frozenset({tree.alice.uid}))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert kept is False
    assert t.exists()


def test_remove_tree_survives_entries_vanishing(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """alice removes entries after root read the directory: they count as removed, no error."""
    t = tree.user_dir(tree.area / "t", tree.alice)
    tree.sh("alice", "mkdir -p sub/gone_dir && printf x > gone_file && printf y > sub/g", cwd=t)
    real = boundary._scan

    def scan(fd: int) -> Iterator[os.DirEntry[str]]:
        items = list(real(fd))
        for item in items:
            if item.name == "gone_file":
                os.unlink(item.name, dir_fd=fd)
            if item.name == "gone_dir":
                os.rmdir(item.name, dir_fd=fd)
        return iter(items)

    monkeypatch.setattr(boundary, "_scan", scan)
    assert boundary.remove_tree(str(tree.area), "t", frozenset({tree.alice.uid})) is True
    assert not os.path.lexists(t)


@pytest.mark.parametrize("swap", ["symlink", "directory", "file"])
def test_remove_tree_never_follows_a_swap(
    tree: Tree, victim: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    """A subdirectory swapped for a link, dir or file after root's stat: never entered."""
    t = tree.user_dir(tree.area / "t", tree.alice)
    tree.sh("alice", "mkdir sub && printf x > sub/f", cwd=t)
    tree.sh("alice", "mkdir other && printf o > other/kept")  # in the zone, outside the tree
    real = boundary._scan

    def scan(fd: int) -> Iterator[os.DirEntry[str]]:
        items = list(real(fd))
        for item in items:
            if item.name == "sub":
                item.stat(follow_symlinks=False)  # what root sees: a directory (cached)
                os.rename("sub", "away", src_dir_fd=fd, dst_dir_fd=fd)
                if swap == "symlink":
                    os.symlink(str(victim), "sub", dir_fd=fd)
                elif swap == "directory":
                    os.rename(tree.zone / "other", t / "sub")
                else:
                    os.close(os.open("sub", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
        return iter(items)

    before = snapshot(victim)
    monkeypatch.setattr(boundary, "_scan", scan)
    assert boundary.remove_tree(str(tree.area), "t", frozenset({tree.alice.uid})) is False
    assert snapshot(victim) == before
    if swap == "directory":
        assert (t / "sub" / "kept").read_bytes() == b"o"


# -- names, not paths --------------------------------------------------------------------------


def _through_link(tree: Tree) -> dict[str, Callable[[], object]]:
    a = tree.alice
    zone, area = str(tree.zone), str(tree.area)
    return {
        "remove_user_file": lambda: boundary.remove_user_file(zone, "link/keep", a.uid),
        "remove_tree": lambda: boundary.remove_tree(area, "zone/link/sub", None),
        "make_user_dir": lambda: boundary.make_user_dir(area, "zone/link/new", a.uid, a.gid),
        "write_user_files": lambda: boundary.write_user_files(
            zone, {"link/keep": b"x"}, uid=a.uid, gid=a.gid, mode=0o600
        ),
        "remove_tree-dotdot": lambda: boundary.remove_tree(area, "..", None),
        "make_user_dir-dot": lambda: boundary.make_user_dir(area, ".", a.uid, a.gid),
        "remove_user_file-dotdot": lambda: boundary.remove_user_file(zone, "..", a.uid),
    }


@pytest.mark.parametrize(
    "call",
    [
        "remove_user_file",
        "remove_tree",
        "make_user_dir",
        "write_user_files",
        "remove_tree-dotdot",
        "make_user_dir-dot",
        "remove_user_file-dotdot",
    ],
)
def test_names_are_names_not_paths(tree: Tree, victim: Path, call: str) -> None:
    """A name with '/' (through alice's link to a victim), '.' or '..' is refused, not walked."""
    tree.sh("alice", "ln -s ../victim link && ln -s ../victim .bai-link")
    before = snapshot(tree.base)
    with pytest.raises(UnsafePath, match="not the name of one directory entry"):
        _through_link(tree)[call]()
    assert snapshot(tree.base) == before


# -- open_trusted ------------------------------------------------------------------------------


def same(fd: int, path: Path) -> bool:
    a, b = os.fstat(fd), path.stat()
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@pytest.mark.parametrize(
    ("links", "path", "expected"),
    [
        pytest.param('ln -s "$(pwd -P)/real" abs', "abs", "real", id="absolute"),
        pytest.param("ln -s real rel", "rel", "real", id="relative"),
        pytest.param("mkdir -p a/b && ln -s ../../real a/b/up", "a/b/up", "real", id="dotdot"),
        pytest.param("ln -s real l1 && ln -s l1 l2 && ln -s l2 l3", "l3", "real", id="chain"),
        pytest.param("ln -s . here && ln -s real r", "here/here/r", "real", id="dot-links"),
        pytest.param("ln -s real/sub s", "s", "real/sub", id="into-a-subdirectory"),
        pytest.param("ln -s real r", "r/sub", "real/sub", id="link-then-directory"),
    ],
)
def test_open_trusted_follows_root_links(tree: Tree, links: str, path: str, expected: str) -> None:
    """Root's own symlinks above a zone are followed: absolute, relative, '..' and chains."""
    tree.sh(None, f"mkdir -p real/sub && {links}", cwd=tree.area)
    fd = boundary.open_trusted(str(tree.area / path))
    try:
        assert same(fd, tree.area / expected)
    finally:
        os.close(fd)


def chain(n: int) -> str:
    return "mkdir real && ln -s real l0 && " + " && ".join(
        f"ln -s l{i - 1} l{i}" for i in range(1, n)
    )


@pytest.mark.parametrize(
    ("links", "path", "error"),
    [
        pytest.param("ln -s l2 l1 && ln -s l1 l2", "l1", "too many levels", id="loop"),
        pytest.param("ln -s self self", "self", "too many levels", id="self-loop"),
        pytest.param(chain(41), "l40", "too many levels", id="41-links"),
        pytest.param(
            "mkdir real && ln -s real up && chown -h bob up", "up", "symlink of uid", id="bobs-link"
        ),
        pytest.param(
            "mkdir real && ln -s real up && chown -h alice up",
            "up",
            "symlink of uid",
            id="alices-link",
        ),
        pytest.param("printf x > f", "f", "not a directory", id="a-file"),
        pytest.param("ln -s /etc/passwd p", "p", "not a directory", id="link-to-a-file"),
    ],
)
def test_open_trusted_refuses(tree: Tree, links: str, path: str, error: str) -> None:
    """Loops of root's links, other users' links and non-directories are refused."""
    tree.sh(None, links, cwd=tree.area)
    with pytest.raises(UnsafePath, match=error):
        boundary.open_trusted(str(tree.area / path))


def test_open_trusted_follows_forty_links(tree: Tree) -> None:
    """Forty root links in a chain are followed, as the kernel would."""
    tree.sh(None, chain(40), cwd=tree.area)
    fd = boundary.open_trusted(str(tree.area / "l39"))
    try:
        assert same(fd, tree.area / "real")
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("path", "error"),
    [("relative/path", UnsafePath), ("/nonexistent-bai-test/x", FileNotFoundError)],
)
def test_open_trusted_relative_or_missing(path: str, error: type[Exception]) -> None:
    """A relative path is refused; a missing one is missing."""
    with pytest.raises(error):
        boundary.open_trusted(path)


class SwapAfterCheck:
    """boundary's `os`, whose fstat lets bob rename his link over root's once it is checked."""

    def __init__(self, link: Path, bobs: Path) -> None:
        self.link, self.bobs, self.swapped = link, bobs, False

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def fstat(self, fd: int) -> os.stat_result:
        st = os.fstat(fd)
        seen = self.link.lstat()
        if not self.swapped and (st.st_dev, st.st_ino) == (seen.st_dev, seen.st_ino):
            os.rename(self.bobs, self.link)
            self.swapped = True
        return st


def test_open_trusted_reads_the_link_it_checked(
    tree: Tree, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bob renames his link over root's just after the owner check: root's target is used."""
    tree.sh(
        None, "mkdir real && ln -s real up && ln -s victim bobs && chown -h bob bobs", cwd=tree.area
    )
    swapper = SwapAfterCheck(tree.area / "up", tree.area / "bobs")
    monkeypatch.setattr(boundary, "os", swapper)
    fd = boundary.open_trusted(str(tree.area / "up"))
    monkeypatch.undo()
    try:
        assert swapper.swapped
        assert same(fd, tree.area / "real")
    finally:
        os.close(fd)
