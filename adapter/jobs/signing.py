"""Signed, expiring download URLs (Batch AI's SAS links) and the private key that signs them."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import os
import re
import secrets
import stat
import time
from pathlib import Path

from adapter.errors import BaiError

KEY_BYTES = 32
# listOutputFiles hands out links valid for at most this long (linkexpiryinminutes 5..600).
MAX_EXPIRY_SECONDS = 600 * 60
# A link is checked after it was made; this covers the host clock being stepped meanwhile.
EXPIRY_SLACK_SECONDS = 5 * 60
SIGNATURE = re.compile(r"[0-9a-f]{64}")  # what `sign` makes: a SHA-256 HMAC in lowercase hex


class SigningKeyError(BaiError):
    """The URL signing key file is missing its guarantees (type, owner, mode or length)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"the URL signing key {path} {problem}; remove it and restart bai: a new key is "
            "made, and links handed out before stop working"
        )
        self.path = path


class UrlSigner:
    """HMAC-signed, expiring URLs; the key lives in the state directory (0600, root's)."""

    def __init__(self, key_file: Path) -> None:
        self._key = load_key(key_file)

    def sign(self, path: str, expires: int) -> str:
        return hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def verify(self, path: str, expires: int, signature: str, now: float | None = None) -> bool:
        t = time.time() if now is None else now
        # The shape first: compare_digest raises on non-ASCII text, and nothing else is ours.
        if SIGNATURE.fullmatch(signature) is None:
            return False
        if not t <= expires <= t + MAX_EXPIRY_SECONDS + EXPIRY_SLACK_SECONDS:
            return False
        try:
            expected = self.sign(path, expires)
        except UnicodeEncodeError:  # a lone surrogate in the path: no link of ours has one
            return False
        return hmac.compare_digest(expected, signature)


def load_key(path: Path) -> bytes:
    """The key in `path`, made first if there is none."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    _create_key(path)
    return _read_key(path)


def _create_key(path: Path) -> None:
    """Write a new key beside `path` and link it into place: the key file either does not
    exist or holds a whole key, whatever crash happens; a key another process linked first
    is kept (its links may already be out)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            key = secrets.token_bytes(KEY_BYTES)
            view = memoryview(key)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # then the key another process made is kept
            os.link(tmp, path)  # unlike rename, never replaces a key that is already there
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_key(path: Path) -> bytes:
    """The key, if `path` is a regular file of root's (or this process's), private, and long
    enough. Opened without following a symlink, and without waiting on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SigningKeyError(path, "is a symbolic link, not a file") from None
        if isinstance(exc, FileNotFoundError):
            raise
        raise SigningKeyError(path, f"cannot be opened ({exc.strerror})") from exc
    try:
        st = os.fstat(fd)
        _check(path, st)
        key = _read_all(fd, st.st_size)
    finally:
        os.close(fd)
    if len(key) < KEY_BYTES:
        raise SigningKeyError(path, f"is {len(key)} bytes, a key is at least {KEY_BYTES}")
    return key


def _check(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise SigningKeyError(path, "is not a regular file")
    if st.st_uid not in {0, os.geteuid()}:
        raise SigningKeyError(path, f"is owned by uid {st.st_uid}, not root")
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise SigningKeyError(path, f"has mode {mode:04o}: group or others may use it, not 0600")
    if st.st_size < KEY_BYTES:
        raise SigningKeyError(path, f"is {st.st_size} bytes, a key is at least {KEY_BYTES}")


def _read_all(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
