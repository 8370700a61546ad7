"""Mount options a request may add to the operator's (pure; DESIGN.md section 8, "Operators set
the floor").

nfs and cifs volumes are kernel mounts that root makes in the Prolog. Their final options are

    <storage_accounts.<name>.options>,nosuid,nodev,<what the request may add>

with exact duplicates removed. The operator's options are kept as written, except `suid` and
`dev`, which are dropped: `nosuid,nodev` are never optional (they come after the operator's
options, so they win over `defaults` too). A request (`mountOptions` of a fileServers or
azureBlobFileSystems entry) may only add options from the allow-list of the volume's kind:

- nfs: ro, rw, noatime, nodiratime, relatime, noexec, hard, soft, noac, nocto,
  actimeo/acregmin/acregmax/acdirmin/acdirmax=0..86400, rsize/wsize=1024..1048576,
  timeo=1..6000, retrans=0..10, nconnect=1..16, lookupcache=all|none|positive.
- cifs: ro, rw, noatime, relatime, noexec, nobrl, mfsymlinks, actimeo=0..86400,
  rsize/wsize=1024..16777216, cache=strict|none|loose|singleclient, file_mode/dir_mode=0NNN
  (four octal digits, the first 0: no setuid, setgid or sticky bit).
- both: nosuid and nodev may be asked for too; they are there anyway.

Options are comma-separated `key` or `key=value` (blanks around an option are dropped); a value
is digits or a listed word, never a comma, blank, quote, slash or `=`. Anything else is refused,
in particular credentials and identity (uid, gid, username, user, password, pass, credentials,
cred, domain, sec, ...), suid, dev, defaults, and the operator's settings (vers, port, addr,
clientaddr, proto, context, fsc, ...). A request option may not change a floor option: same key
with another value (operator `rsize=65536`, request `rsize=1048576`), or the other side of a pair
(ro/rw, hard/soft, noatime/relatime, ac/noac, cto/nocto, ...). Only two changes are allowed, as
they take rights away: `ro` replaces the operator's `rw`, `noexec` the operator's `exec`.

rclone volumes are FUSE mounts made by the job's user (`bai-node-helper prepare`), which puts
these options at the end of `rclone mount` (shlex-split). A request may add only:
--read-only, --no-modtime, --vfs-cache-mode=off|minimal|writes|full,
--dir-cache-time/--attr-timeout/--poll-interval/--vfs-cache-max-age=DURATION (e.g. 30s, 1h30m),
--buffer-size=SIZE, --vfs-read-chunk-size/--vfs-read-chunk-size-limit/--vfs-cache-max-size=SIZE
or off (SIZE e.g. 16M, 1G, 512Ki). `--flag value` is read as `--flag=value`; the result is stored
as `--flag` / `--flag=value` words that round-trip through shlex.split. Everything else is
refused, notably --config, --allow-other, --allow-root, --daemon*, --rc*, and any flag taking a
path. The operator's account options do not apply to rclone.

local volumes are symlinks: mountOptions means nothing there and is ignored (a request written
for Azure, e.g. with blobfuse options, keeps working where the account is local, as in dev).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from adapter.errors import InvalidRequest


@dataclass(frozen=True)
class Value:
    """What an option's value may be: `pattern` (full match), and a range if numeric."""

    pattern: str
    short: str  # in the allow-list of a message: N, 0NNN, DURATION, a|b
    says: str  # in a bad-value message
    low: int | None = None
    high: int | None = None

    def accepts(self, text: str) -> bool:
        if not re.fullmatch(f"(?:{self.pattern})", text):
            return False
        return self.low is None or self.high is None or self.low <= int(text) <= self.high


def _number(low: int, high: int) -> Value:
    return Value(
        r"0|[1-9][0-9]{0,8}", f"{low}..{high}", f"a whole number from {low} to {high}", low, high
    )


def _one_of(*words: str) -> Value:
    return Value("|".join(map(re.escape, words)), "|".join(words), "one of " + ", ".join(words))


_MODE = Value(
    "0[0-7]{3}", "0NNN", "four octal digits starting with 0 (no setuid, setgid or sticky bit)"
)
_DURATION = Value(
    r"0|(?:[0-9]{1,6}(?:ms|s|m|h|d)){1,4}", "DURATION", "a duration such as 30s, 5m or 1h30m"
)
_SIZE = r"(?:0|[1-9][0-9]{0,8})(?:[BKMGT]|[KMGT]iB?)?"
_SIZE_ONLY = Value(_SIZE, "SIZE", "a size such as 16M, 1G or 512Ki")
_SIZE_OR_OFF = Value(f"off|{_SIZE}", "SIZE|off", "a size such as 16M, 1G or 512Ki, or off")

Spec: TypeAlias = Value | None  # None: a flag, no value
_FLAG: Spec = None
_ATTR = _number(0, 86400)

NFS_OPTIONS: Mapping[str, Spec] = {
    **dict.fromkeys(("ro", "rw", "noatime", "nodiratime", "relatime", "noexec"), _FLAG),
    **dict.fromkeys(("hard", "soft", "noac", "nocto"), _FLAG),
    **dict.fromkeys(("actimeo", "acregmin", "acregmax", "acdirmin", "acdirmax"), _ATTR),
    "rsize": _number(1024, 1048576),
    "wsize": _number(1024, 1048576),
    "timeo": _number(1, 6000),
    "retrans": _number(0, 10),
    "nconnect": _number(1, 16),
    "lookupcache": _one_of("all", "none", "positive"),
}
CIFS_OPTIONS: Mapping[str, Spec] = {
    **dict.fromkeys(("ro", "rw", "noatime", "relatime", "noexec", "nobrl", "mfsymlinks"), _FLAG),
    "actimeo": _ATTR,
    "rsize": _number(1024, 16777216),
    "wsize": _number(1024, 16777216),
    "cache": _one_of("strict", "none", "loose", "singleclient"),
    "file_mode": _MODE,
    "dir_mode": _MODE,
}
RCLONE_FLAGS: Mapping[str, Spec] = {
    "--read-only": _FLAG,
    "--no-modtime": _FLAG,
    "--vfs-cache-mode": _one_of("off", "minimal", "writes", "full"),
    **dict.fromkeys(
        ("--dir-cache-time", "--attr-timeout", "--poll-interval", "--vfs-cache-max-age"),
        _DURATION,
    ),
    "--buffer-size": _SIZE_ONLY,
    **dict.fromkeys(
        ("--vfs-read-chunk-size", "--vfs-read-chunk-size-limit", "--vfs-cache-max-size"),
        _SIZE_OR_OFF,
    ),
}
_KERNEL: Mapping[str, Mapping[str, Spec]] = {"nfs": NFS_OPTIONS, "cifs": CIFS_OPTIONS}

FORCED = ("nosuid", "nodev")
# Flags that contradict each other share a slot; `ro`/`noexec` may replace the floor's other side.
_PAIRS = (
    ("ro", "rw"),
    ("hard", "soft"),
    ("atime", "noatime", "relatime", "strictatime"),
    ("diratime", "nodiratime"),
    ("exec", "noexec"),
    ("suid", "nosuid"),
    ("dev", "nodev"),
    ("ac", "noac"),
    ("cto", "nocto"),
)
_SLOT = {flag: "/".join(pair) for pair in _PAIRS for flag in pair}
_TIGHTER = {"ro": "rw", "noexec": "exec"}

_CREDENTIALS = frozenset(
    ("uid", "gid", "cruid", "forceuid", "forcegid", "setuids", "noperm", "multiuser")
    + ("username", "user", "password", "pass", "credentials", "cred", "domain", "dom", "sec")
    + ("workgroup",)
)
_PRIVILEGE = frozenset({"suid", "dev", "defaults"})
_OPERATOR = frozenset(
    ("vers", "nfsvers", "proto", "mountproto", "port", "mountport", "sloppy", "fsc")
    + ("addr", "clientaddr", "mountaddr", "ip", "srcaddr")
    + ("context", "fscontext", "defcontext", "rootcontext")
)


def _slot(option: str) -> str:
    key = option.partition("=")[0]
    return _SLOT.get(key, key)


def _allowed(specs: Mapping[str, Spec]) -> str:
    return ", ".join(k if v is None else f"{k}={v.short}" for k, v in specs.items())


def _shown(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def kernel_options(
    kind: Literal["nfs", "cifs"],
    floor: str,
    requested: str,
    *,
    label: str,
    target: str,
    account: str,
) -> str:
    """The `-o` string of an nfs or cifs mount: the operator's floor, nosuid,nodev, then the
    request's allowed additions. Refuses (InvalidRequest at `target`) any other request option."""
    allowed = _KERNEL[kind]
    fix = (
        f"a request may add to {kind} volumes only {_allowed(allowed)}; for anything else "
        f"ask the operator to set it in storage_accounts.{account}.options"
    )

    refuse = _refuser(f"{label}: mount option", fix, target)

    final: list[str] = []
    slots: dict[str, tuple[str, bool]] = {}  # slot -> (option, from the request)
    for option in (o.strip() for o in floor.split(",")):
        if option and option not in ("suid", "dev"):
            if option not in final:
                final.append(option)
            slots[_slot(option)] = (option, False)
    for option in FORCED:
        if option not in final:
            final.append(option)
        slots[_slot(option)] = (option, False)

    for option in (o.strip() for o in requested.split(",")):
        if not option or option in FORCED:  # nosuid,nodev: there anyway
            continue
        key, eq, value = option.partition("=")
        if key not in allowed:
            if key in _CREDENTIALS:
                reason = "sets credentials or file ownership, which only the operator does"
            elif key in _PRIVILEGE:
                reason = (
                    "would allow setuid programs or device files; nfs and cifs volumes are "
                    "always mounted nosuid,nodev"
                )
            elif key in _OPERATOR:
                reason = "is the operator's to set (server, protocol, security label or cache)"
            else:
                reason = "is not one a request may set"
            raise refuse(key, reason)  # the key only: a refused value may be a secret
        spec = allowed[key]
        if spec is None and eq:
            raise refuse(option, "takes no value")
        if spec is not None and not spec.accepts(value):
            raise refuse(option, f"has a bad value: {key} takes {spec.says}")
        have = slots.get(_slot(option))
        if have is None:
            final.append(option)
        elif have[0] == option:
            continue
        elif not have[1] and _TIGHTER.get(option) == have[0]:
            final = [o for o in final if o != have[0]]  # e.g. ro in place of the operator's rw
            final.append(option)
        elif have[1]:
            raise refuse(option, f"contradicts {have[0]!r} earlier in mountOptions")
        else:
            raise refuse(option, f"would change the operator's {have[0]!r}")
        slots[_slot(option)] = (option, True)
    return ",".join(final)


def _refuser(what: str, fix: str, target: str) -> Callable[[str, str], InvalidRequest]:
    """The refusal of one option: what it is, why, and what to do instead."""

    def refuse(shown: str, reason: str) -> InvalidRequest:
        return InvalidRequest(f"{what} {_shown(shown)!r} {reason}; {fix}", target=target)

    return refuse


def rclone_options(requested: str, *, label: str, target: str, account: str) -> str:
    """The request's extra `rclone mount` flags, checked and normalized (`--flag[=value]`
    words joined by blanks, so that shlex.split gives them back). Refuses any other flag."""
    fix = (
        f"a request may add to rclone volumes only {_allowed(RCLONE_FLAGS)}; for anything "
        f"else ask the operator (storage_accounts.{account})"
    )

    refuse = _refuser(f"{label}: rclone flag", fix, target)

    try:
        words = shlex.split(requested)
    except ValueError as exc:
        raise refuse(requested, f"cannot be read ({exc})") from None
    final: list[str] = []
    seen: dict[str, str] = {}
    i = 0
    while i < len(words):
        flag, eq, value = words[i].partition("=")
        i += 1
        if flag not in RCLONE_FLAGS:
            if flag in ("--allow-other", "--allow-root"):
                reason = "would open the mount to other users"
            elif flag in ("--config", "--daemon") or flag.startswith(("--rc", "--daemon")):
                reason = "is bai's to set (rclone config, daemon mode, remote control)"
            else:
                reason = "is not one a request may set"
            raise refuse(flag, reason)  # the flag only: a refused value may be a secret
        spec = RCLONE_FLAGS[flag]
        if spec is None:
            if eq:
                raise refuse(words[i - 1], "takes no value")
            option = flag
        else:
            if not eq:
                if i == len(words):
                    raise refuse(flag, f"lacks its value: {flag} takes {spec.says}")
                value, i = words[i], i + 1
            if not spec.accepts(value):
                raise refuse(f"{flag}={value}", f"has a bad value: {flag} takes {spec.says}")
            option = f"{flag}={value}"
        if seen.setdefault(flag, option) != option:
            raise refuse(option, f"contradicts {seen[flag]!r} earlier in mountOptions")
        if option not in final:
            final.append(option)
    return shlex.join(final)
