"""Munge credentials: how the CLI on a cluster host proves its Unix user, as Slurm's do.

The client encodes (`munge -n`); the service decodes (`unmunge`): munged answers with the uid
and gid of the process that made the credential, and refuses it when it is replayed (munged
keeps every decoded credential until its ttl is over), expired, dated in the future (rewound)
or made with another key. Both go through libmunge (`libmunge.so.2`, Debian libmunge2) with
ctypes: 0.1 ms per encode or decode on the dev host against 1.1-1.6 ms for the commands (a
process each), and the C call releases the GIL, so the service decodes in a worker thread.
Standard library only: the lean `bai sbatch` client imports it.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal, NamedTuple

from adapter.errors import BaiError

LIBRARY = "libmunge.so.2"
# munge.h: munge_opt_t and munge_err_t.
_OPT_TTL = 4
_OPT_ENCODE_TIME = 6
_OPT_SOCKET = 8
_BAD_CRED = 8  # EMUNGE_BAD_CRED

Side = Literal["encode", "decode"]


class MungeFailure(StrEnum):
    """What went wrong, in the words of munge_err_t."""

    REPLAYED = "replayed"  # munged decoded this credential before
    EXPIRED = "expired"  # its ttl is over
    REWOUND = "rewound"  # dated later than the decoding host's clock
    INVALID = "invalid"  # not a credential, or made with another key
    UNAUTHORIZED = "unauthorized"  # restricted to another uid or gid
    UNAVAILABLE = "unavailable"  # munged is not running or not answering
    MISSING = "missing"  # libmunge is not installed
    FAILED = "failed"  # anything else munge reports


_KINDS = {
    6: MungeFailure.UNAVAILABLE,  # EMUNGE_SOCKET
    7: MungeFailure.UNAVAILABLE,  # EMUNGE_TIMEOUT
    **dict.fromkeys(range(8, 15), MungeFailure.INVALID),  # EMUNGE_BAD_CRED .. CRED_INVALID
    15: MungeFailure.EXPIRED,
    16: MungeFailure.REWOUND,
    17: MungeFailure.REPLAYED,
    18: MungeFailure.UNAUTHORIZED,
}


class MungeError(BaiError):
    """Munge refused or could not make a credential; the message says what to do."""

    def __init__(self, reason: str, kind: MungeFailure, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.code = code


class Credential(NamedTuple):
    """A decoded credential: who made it, when, for how long, and what it carries. (A
    NamedTuple: dataclasses would double what the `bai sbatch` client spends importing.)"""

    uid: int
    gid: int
    encoded: datetime
    ttl: int
    payload: bytes


def failure(
    code: int,
    side: Side,
    detail: str,
    encoded: datetime | None = None,
    ttl: int | None = None,
) -> MungeError:
    """The error for munge's error `code` (`detail`: munge's own words). Decode messages are
    written for the client the service answers, encode messages for the user on this host."""
    kind = _KINDS.get(code, MungeFailure.FAILED)
    made = f"made {encoded:%Y-%m-%d %H:%M:%S} UTC" if encoded else "made"
    if side == "encode":
        reason = {
            MungeFailure.UNAVAILABLE: f"munged is not running on this host ({detail}); "
            "start it: `systemctl start munge`",
        }.get(kind, f"munge could not make a credential ({detail}, error {code})")
        return MungeError(reason, kind, code)
    reason = {
        MungeFailure.REPLAYED: "replayed credential: munge has decoded this one before; each "
        "request needs a new one (`munge -n`; the bai CLI makes one per request)",
        MungeFailure.EXPIRED: f"expired credential: {made} with a ttl of {ttl} s; make a new "
        "one for each request (if it was new, the client host's clock is behind the service "
        "host's: synchronise them)",
        MungeFailure.REWOUND: f"rewound credential: {made}, later than the service host's "
        "clock; synchronise the client and service hosts' clocks (NTP)",
        MungeFailure.INVALID: f"invalid credential ({detail}): send a whole one, made with "
        "`munge -n` on a host that shares the service host's munge key",
        MungeFailure.UNAUTHORIZED: f"the credential is restricted to another user or group "
        f"({detail}); make it without --restrict-uid or --restrict-gid",
        MungeFailure.UNAVAILABLE: f"munged is not running on the service host ({detail}); ask "
        "the operator to start it, or use a token (BAI_TOKEN)",
    }.get(kind, f"munge could not decode the credential ({detail}, error {code})")
    return MungeError(reason, kind, code)


@functools.cache
def _library() -> ctypes.CDLL:
    lib = ctypes.CDLL(LIBRARY)
    lib.munge_ctx_create.restype = ctypes.c_void_p
    lib.munge_ctx_create.argtypes = []
    lib.munge_ctx_destroy.restype = None
    lib.munge_ctx_destroy.argtypes = [ctypes.c_void_p]
    lib.munge_ctx_strerror.restype = ctypes.c_char_p
    lib.munge_ctx_strerror.argtypes = [ctypes.c_void_p]
    lib.munge_strerror.restype = ctypes.c_char_p
    lib.munge_strerror.argtypes = [ctypes.c_int]
    # munge_ctx_set and munge_ctx_get are variadic: no argtypes, every argument a ctypes value.
    lib.munge_ctx_set.restype = ctypes.c_int
    lib.munge_ctx_get.restype = ctypes.c_int
    lib.munge_encode.restype = ctypes.c_int
    lib.munge_encode.argtypes = [
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int,
    ]
    lib.munge_decode.restype = ctypes.c_int
    lib.munge_decode.argtypes = [
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_uint32),
        ctypes.POINTER(ctypes.c_uint32),
    ]
    return lib


@functools.cache
def _free() -> Callable[[ctypes.c_void_p], None]:
    free = ctypes.CDLL(None).free  # libc's: libmunge's buffers are malloc'd
    free.restype = None
    free.argtypes = [ctypes.c_void_p]
    return free


def _load(side: Side) -> ctypes.CDLL:
    try:
        return _library()
    except OSError as exc:
        where = "this host" if side == "encode" else "the service host"
        raise MungeError(
            f"{LIBRARY} is not installed on {where} ({exc}); install munge "
            "(Debian: `apt install munge libmunge2`) and start munged, or use a token (BAI_TOKEN)",
            MungeFailure.MISSING,
        ) from None


class _Context:
    """One munge_ctx_t, for one call (a context is not to be shared between threads)."""

    def __init__(self, lib: ctypes.CDLL, side: Side, ttl: int | None, socket: str | None) -> None:
        self.lib, self.side = lib, side
        handle = lib.munge_ctx_create()
        if not handle:
            raise MungeError("munge could not make a context (out of memory)", MungeFailure.FAILED)
        self.handle = ctypes.c_void_p(handle)
        if ttl is not None:
            self._set(_OPT_TTL, ctypes.c_int(ttl))
        if socket is not None:
            self._set(_OPT_SOCKET, ctypes.c_char_p(socket.encode()))

    def _set(self, option: int, value: ctypes.c_int | ctypes.c_char_p) -> None:
        code = self.lib.munge_ctx_set(self.handle, ctypes.c_int(option), value)
        if code:
            raise failure(code, self.side, self.error(code))

    def error(self, code: int) -> str:
        text = self.lib.munge_ctx_strerror(self.handle) or self.lib.munge_strerror(code)
        return bytes(text or b"unknown error").decode(errors="replace")

    def metadata(self) -> tuple[datetime, int]:
        """When the credential was made and its ttl (set by a decode, even a refused one)."""
        when, ttl = ctypes.c_long(0), ctypes.c_int(0)
        self.lib.munge_ctx_get(self.handle, ctypes.c_int(_OPT_ENCODE_TIME), ctypes.byref(when))
        self.lib.munge_ctx_get(self.handle, ctypes.c_int(_OPT_TTL), ctypes.byref(ttl))
        return datetime.fromtimestamp(when.value, UTC), ttl.value

    def close(self) -> None:
        self.lib.munge_ctx_destroy(self.handle)


def encode(payload: bytes = b"", *, ttl: int | None = None, socket: str | None = None) -> str:
    """A new credential of this process's uid and gid (`munge -n`, or `-s` with a payload);
    `ttl` in seconds (None: munged's default, 300), `socket`: munged's, if not the default."""
    lib = _load("encode")
    ctx = _Context(lib, "encode", ttl, socket)
    out = ctypes.c_void_p()
    try:
        code = lib.munge_encode(ctypes.byref(out), ctx.handle, payload, len(payload))
        if code or not out.value:
            raise failure(code, "encode", ctx.error(code))
        return ctypes.string_at(out.value).decode("ascii")
    finally:
        if out.value:
            _free()(out)
        ctx.close()


def decode(cred: str, *, socket: str | None = None) -> Credential:
    """Who made `cred` (`unmunge`). MungeError if munged refuses it: replayed, expired,
    rewound, invalid, restricted to another user, or munged unreachable."""
    if not cred or not cred.isascii() or not cred.isprintable():
        # libmunge takes a C string: an empty one is a bad argument, a NUL would cut it short.
        raise failure(_BAD_CRED, "decode", "empty, or not printable ASCII")
    lib = _load("decode")
    ctx = _Context(lib, "decode", None, socket)
    buf, length = ctypes.c_void_p(), ctypes.c_int(0)
    uid, gid = ctypes.c_uint32(), ctypes.c_uint32()
    try:
        code = lib.munge_decode(
            cred.encode("ascii"),
            ctx.handle,
            ctypes.byref(buf),
            ctypes.byref(length),
            ctypes.byref(uid),
            ctypes.byref(gid),
        )
        payload = ctypes.string_at(buf.value, length.value) if buf.value else b""
        encoded, ttl = ctx.metadata()
        if code:
            raise failure(code, "decode", ctx.error(code), encoded, ttl)
        return Credential(uid.value, gid.value, encoded, ttl, payload)
    finally:
        if buf.value:
            _free()(buf)
        ctx.close()
