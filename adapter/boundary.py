"""The one place where root touches files a user can write (DESIGN.md section 8).

bai and its node helper run as root; a job's spool, output directories and job temp belong to
the job's user, who can put a symlink, a FIFO, a device link or a mount anywhere in them, and
swap it while root looks. So root reaches them only through this module, which walks every path
one component at a time with `openat` and `O_NOFOLLOW` from a trusted start:

- Above the user's directory (the *zone*), directories may belong to anyone, and only symlinks
  owned by root (the operator's) are followed: another user's link is refused.
- The zone's top and everything below it must belong to the zone's user, must not be a symlink,
  and must be on the filesystem that holds the top: a mount inside is refused, so a user's FUSE
  server can never stall root.
- Files are opened `O_NONBLOCK` and used only if `fstat` says regular file; reads are capped.
- Files root writes into a user's directory are created `O_EXCL` under a temporary name, handed
  over with `fchown` before a byte is written, and renamed into place; directories are made
  root-owned, then handed over. Removal walks by file descriptor and never leaves the
  filesystem it started on.

Standard library only: the node helper (slurm/bai-node-helper) loads this same file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40  # as the kernel's path walk
_MAX_DEPTH = 256  # directories remove_tree holds open at once; what lies deeper stays
# lstat of a user's FUSE mount root fails even for root: closed to others (no allow_other), or
# its server is gone. Such an entry is a mount, and is treated as one: left out, left alone.
_CLOSED_MOUNT = (errno.EACCES, errno.ENOTCONN)


class UnsafePath(Exception):
    """A path root will not use: a link, another owner's file, not a regular file, too big."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class Entry:
    """One entry of a listed directory. A plain class: the node helper loads this module for
    every bai job, and importing dataclasses would cost more than the rest of it."""

    __slots__ = ("name", "is_dir", "size", "mtime")

    def __init__(self, name: str, is_dir: bool, size: int, mtime: float) -> None:
        self.name, self.is_dir, self.size, self.mtime = name, is_dir, size, mtime

    def __repr__(self) -> str:
        return f"Entry({self.name!r}, is_dir={self.is_dir}, size={self.size})"


def _token() -> str:
    """The random part of a temporary name."""
    return os.urandom(6).hex()


def _parts(path: str) -> list[str]:
    if not path.startswith("/"):
        raise UnsafePath(path, "not an absolute path")
    return [p for p in path.split("/") if p not in ("", ".")]


def relative_parts(relative: str) -> list[str]:
    """The components of a path below a directory; `..` and absolute paths are refused."""
    if relative.startswith("/"):
        raise UnsafePath(relative, "must be a path inside the directory, not an absolute one")
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if ".." in parts or any("\0" in p for p in parts):
        raise UnsafePath(relative, "must not contain '..'")
    return parts


def open_trusted(path: str) -> int:
    """An O_PATH descriptor of the directory `path`, following only root-owned symlinks."""
    parts, done, links = _parts(os.path.normpath(path)), "/", 0
    fd = os.open("/", _PATH | os.O_DIRECTORY)
    try:
        while parts:
            name = parts.pop(0)
            nxt = os.open(name, _PATH, dir_fd=fd)
            st = os.fstat(nxt)
            if stat.S_ISLNK(st.st_mode):
                try:  # the link whose owner is checked, not what has its name by then
                    target = os.readlink("", dir_fd=nxt)
                finally:
                    os.close(nxt)
                here = os.path.join(done, name)
                if st.st_uid != 0:
                    raise UnsafePath(here, f"is a symlink of uid {st.st_uid}; only root's are used")
                links += 1
                if links > _MAX_LINKS:
                    raise UnsafePath(here, "too many levels of symbolic links")
                joined = os.path.normpath(os.path.join(done, target))
                parts = _parts(joined) + parts
                os.close(fd)
                fd, done = os.open("/", _PATH | os.O_DIRECTORY), "/"
                continue
            if not stat.S_ISDIR(st.st_mode):
                os.close(nxt)
                raise UnsafePath(os.path.join(done, name), "is not a directory")
            os.close(fd)
            fd, done = nxt, os.path.join(done, name)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _check(st: os.stat_result, where: str, uid: int, dev: int) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(where, "is a symlink; bai does not follow links in a job's directories")
    if st.st_uid != uid:
        raise UnsafePath(where, f"belongs to uid {st.st_uid}, not to the job's user ({uid})")
    if st.st_dev != dev:
        raise UnsafePath(where, "is on another filesystem mounted inside the job's directory")


@contextmanager
def zone(top: str, uid: int, relative: str = "") -> Iterator[int]:
    """A readable descriptor of directory `top/relative`, `top` and below checked to be `uid`'s.

    FileNotFoundError when it does not exist (yet); UnsafePath when it is not to be trusted.
    """
    parent, name = os.path.split(top.rstrip("/"))
    below = relative_parts(relative)
    base = open_trusted(parent or "/")
    try:
        dev = os.fstat(base).st_dev
        fd, where = base, parent
        for part in [name, *below]:
            where = os.path.join(where, part)
            try:
                nxt = os.open(part, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    _refuse_entry(fd, part, where)
                if exc.errno in _CLOSED_MOUNT:  # a user's FUSE mount root may not enter
                    raise UnsafePath(
                        where, "root may not enter it (a mount of the job's user)"
                    ) from None
                raise
            if fd != base:
                os.close(fd)
            fd = nxt
            _check(os.fstat(fd), where, uid, dev)
        yield fd
    finally:
        if fd != base:
            os.close(fd)
        os.close(base)


def _refuse_entry(dir_fd: int, name: str, where: str) -> None:
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(where, "is a symlink; bai does not follow links in a job's directories")
    raise UnsafePath(where, "is not a directory")


def open_file(dir_fd: int, name: str, where: str, uid: int) -> tuple[int, os.stat_result]:
    """Open a regular file of `uid` in a zone directory for reading, never blocking."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(where, "is a symlink; bai does not follow links") from None
        if exc.errno == errno.ENXIO:  # a socket, or a device without its driver
            raise UnsafePath(where, "is not a regular file (a socket or a device)") from None
        if exc.errno in _CLOSED_MOUNT:
            raise UnsafePath(where, "root may not enter it (a mount of the job's user)") from None
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):  # a lease: never wait for it
            raise UnsafePath(where, "is held by a lease of the job's user") from None
        raise
    try:
        st = os.fstat(fd)
        _check(st, where, uid, os.fstat(dir_fd).st_dev)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(where, "is not a regular file (a FIFO, a device or a socket)")
        return fd, st
    except BaseException:
        os.close(fd)
        raise


def read_bytes(top: str, relative: str, uid: int, cap: int) -> bytes | None:
    """A user's regular file, at most `cap` bytes (UnsafePath if larger); None if missing."""
    *dirs, name = relative_parts(relative) or [""]
    try:
        with zone(top, uid, "/".join(dirs)) as dir_fd:
            fd, st = open_file(dir_fd, name, os.path.join(top, relative), uid)
    except FileNotFoundError:
        return None
    try:
        if st.st_size > cap:
            raise UnsafePath(os.path.join(top, relative), f"is {st.st_size} bytes, over {cap}")
        data = os.pread(fd, cap + 1, 0)
        if len(data) > cap:
            raise UnsafePath(os.path.join(top, relative), f"grew past {cap} bytes")
        return data
    finally:
        os.close(fd)


def list_entries(dir_fd: int, uid: int, limit: int) -> list[Entry]:
    """A zone directory's entries: the user's own regular files and directories, nothing else
    (symlinks, devices, FIFOs, other owners' files and mount points are left out)."""
    dev = os.fstat(dir_fd).st_dev
    out: list[Entry] = []
    with os.scandir(dir_fd) as it:
        for item in it:
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed since the directory was read
            except OSError as exc:
                if exc.errno not in _CLOSED_MOUNT:
                    raise
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if st.st_uid != uid or st.st_dev != dev or not (is_dir or stat.S_ISREG(st.st_mode)):
                continue
            out.append(Entry(item.name, is_dir, 0 if is_dir else st.st_size, st.st_mtime))
            if len(out) > limit:
                raise UnsafePath(item.name, f"the directory has more than {limit} entries")
    return out


# -- root writing into a user's tree -----------------------------------------------------------


def _entry_name(name: str, where: str) -> None:
    """`name` must name one entry of a directory: a path would be resolved following links."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise UnsafePath(os.path.join(where, name), "is not the name of one directory entry")


def make_user_dir(parent: str, name: str, uid: int, gid: int, mode: int = 0o700) -> None:
    """`parent/name` for `uid`: made root-owned, then handed over; an existing one must already
    be `uid`'s (or root's, left by a crash between the two steps) and is not changed otherwise."""
    _entry_name(name, parent)
    base = open_trusted(parent)
    try:
        with suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=base)
        _must_be_dir(base, name, parent)
        fd = os.open(name, _DIR, dir_fd=base)
        try:
            st = os.fstat(fd)
            if st.st_uid == 0:
                os.fchmod(fd, mode)
                os.fchown(fd, uid, gid)
            elif st.st_uid != uid:
                raise UnsafePath(os.path.join(parent, name), f"belongs to uid {st.st_uid}")
        finally:
            os.close(fd)
    finally:
        os.close(base)


def _must_be_dir(dir_fd: int, name: str, parent: str) -> None:
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(os.path.join(parent, name), "exists and is not a directory")


def write_into(
    dir_fd: int,
    name: str,
    data: bytes,
    *,
    uid: int,
    gid: int,
    mode: int,
    midway: Callable[[], None] | None = None,
) -> None:
    """Replace `name` in an open directory atomically with a new file of `uid` (mode first).
    `midway` runs when half the bytes are written (the crash tests stop the service there)."""
    _entry_name(name, "")
    for _ in range(8):
        temp = f".bai-{name}.{_token()}"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(temp, flags, 0o600, dir_fd=dir_fd)
            break
        except FileExistsError:
            continue
    else:
        raise UnsafePath(name, "no temporary name was free")
    try:
        os.fchmod(fd, mode)
        os.fchown(fd, uid, gid)
        half = len(data) // 2
        for i, part in enumerate((data[:half], data[half:])):
            view = memoryview(part)
            while view:
                view = view[os.write(fd, view) :]
            if midway is not None and i == 0:
                midway()
        os.close(fd)
        fd = -1
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        _unlink(dir_fd, temp)
        raise


def write_user_files(
    top: str,
    files: dict[str, bytes],
    *,
    uid: int,
    gid: int,
    mode: int,
    midway: Callable[[], None] | None = None,
) -> None:
    """Root-written files in `uid`'s directory `top` (its plan, its secrets), each `uid`'s with
    `mode`. Temporaries an interrupted earlier write of these names left are removed first:
    only theirs, as other writers may be at work in the same directory (the root plans)."""
    for name in files:
        _entry_name(name, top)
    prefixes = tuple(f".bai-{name}." for name in files)
    with zone(top, uid) as dir_fd:
        with os.scandir(dir_fd) as it:  # root's own too: a crash between create and fchown
            stale = [e.name for e in it if e.name.startswith(prefixes)]
        for name in stale:
            _unlink(dir_fd, name)
        last = list(files)[-1] if files else ""
        for name, data in files.items():
            hook = midway if name == last else None  # the crash tests stop in the last file
            write_into(dir_fd, name, data, uid=uid, gid=gid, mode=mode, midway=hook)


def remove_user_file(top: str, name: str, uid: int) -> None:
    """Remove one entry (never a directory's contents) of `uid`'s directory `top`."""
    _entry_name(name, top)
    try:
        with zone(top, uid) as dir_fd:
            _unlink(dir_fd, name)
    except FileNotFoundError:
        pass


def _unlink(dir_fd: int, name: str) -> None:
    with suppress(FileNotFoundError, IsADirectoryError, PermissionError):
        os.unlink(name, dir_fd=dir_fd)


def remove_tree(parent: str, name: str, owners: frozenset[int] | None) -> bool:
    """Remove `parent/name` and everything in it without following a link or leaving its
    filesystem; it must belong to one of `owners` (None: anyone's, for what squats on a name
    root needs). A symlink or file there is unlinked. False if something had to stay."""
    _entry_name(name, parent)
    base = open_trusted(parent)
    try:
        try:
            st = os.stat(name, dir_fd=base, follow_symlinks=False)
        except FileNotFoundError:
            return True
        if owners is not None and st.st_uid not in owners:
            raise UnsafePath(os.path.join(parent, name), f"belongs to uid {st.st_uid}")
        if st.st_dev != os.fstat(base).st_dev:
            return False  # something is mounted on the name itself: left alone, never entered
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=base)
            return True
        fd = os.open(name, _DIR, dir_fd=base)
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                return False  # swapped between stat and open
            clean = _empty(fd, opened.st_dev)
        finally:
            os.close(fd)
        if clean:
            os.rmdir(name, dir_fd=base)
        return clean
    finally:
        os.close(base)


def _empty(top: int, dev: int) -> bool:
    """Remove what is in the open directory `top`, depth first, without recursion."""
    clean = True
    stack: list[tuple[int, Iterator[os.DirEntry[str]], str]] = [(top, _scan(top), "")]
    try:
        while stack:
            fd, entries, dname = stack[-1]
            item = next(entries, None)
            if item is None:
                stack.pop()
                if fd != top:
                    os.close(fd)
                    try:
                        os.rmdir(dname, dir_fd=stack[-1][0])
                    except OSError:
                        clean = False
                continue
            try:
                st = item.stat(follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    os.unlink(item.name, dir_fd=fd)
                    continue
                if st.st_dev != dev or len(stack) > _MAX_DEPTH:
                    clean = False  # a mount (left alone, never entered), or too deep to hold
                    continue
                child = os.open(item.name, _DIR, dir_fd=fd)
            except FileNotFoundError:
                continue  # already gone
            except OSError as exc:  # swapped (a file for a directory, or back) while bai looked,
                # or a user's FUSE mount root that root may not even stat
                if exc.errno not in (errno.EISDIR, errno.ENOTDIR, errno.ELOOP, *_CLOSED_MOUNT):
                    raise
                clean = False
                continue
            opened = os.fstat(child)
            if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):  # swapped
                os.close(child)
                clean = False
                continue
            stack.append((child, _scan(child), item.name))
    finally:
        for fd, _, _ in stack:
            if fd != top:
                os.close(fd)
    return clean


def _scan(fd: int) -> Iterator[os.DirEntry[str]]:
    with os.scandir(fd) as it:
        return iter(list(it))
