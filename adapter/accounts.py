"""System accounts: the Unix users bai will not act as unless the operator names them.

A system account is root (uid 0), or any account whose uid is below `UID_MIN` of
`/etc/login.defs` (daemons: 1-999 by default), or from above `UID_MAX` through 65535 (Debian's
range for accounts packages create on demand, such as slurm's 64030, and nobody's 65534).
Uids above 65535 are people's (LDAP, or AD id mapping in SSSD, hands those out). The login
shell is not looked at: sites often give API-only users `nologin`.
"""

from __future__ import annotations

import functools
import pwd
from dataclasses import dataclass
from pathlib import Path

LOGIN_DEFS = Path("/etc/login.defs")
NOBODY_UID = 65534
LAST_RESERVED_UID = 65535


@dataclass(frozen=True)
class UidRange:
    """The uids `useradd` gives to people (`UID_MIN`..`UID_MAX` of login.defs)."""

    low: int = 1000
    high: int = 60000


def parse_login_defs(text: str) -> UidRange:
    """`UID_MIN` and `UID_MAX` from login.defs text; the shadow defaults where absent."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] not in {"UID_MIN", "UID_MAX"}:
            continue
        if words[1].isascii() and words[1].isdigit():
            values[words[0]] = int(words[1])
    default = UidRange()
    return UidRange(values.get("UID_MIN", default.low), values.get("UID_MAX", default.high))


@functools.cache
def login_uid_range() -> UidRange:
    """This host's range, read once per process (login.defs changes with the OS, not daily)."""
    try:
        return parse_login_defs(LOGIN_DEFS.read_text(errors="replace"))
    except OSError:
        return UidRange()


def system_uid(uid: int, uids: UidRange) -> str | None:
    """Why `uid` is a system account's ("uid 0"), or None if it is a person's."""
    if uid == 0:
        return "uid 0"
    if uid == NOBODY_UID:
        return f"uid {uid}, nobody's"
    if uid < uids.low:
        return f"uid {uid}, below UID_MIN {uids.low} of {LOGIN_DEFS}"
    if uids.high < uid <= LAST_RESERVED_UID:
        return f"uid {uid}, above UID_MAX {uids.high} of {LOGIN_DEFS}"
    return None


def system_account(account: pwd.struct_passwd, uids: UidRange | None = None) -> str | None:
    """Why this passwd entry is a system account ("uid 0"), or None if it is a person's."""
    return system_uid(account.pw_uid, uids or login_uid_range())
