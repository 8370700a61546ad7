"""Unix users' groups, as the system's name service (NSS) answers now.

Nothing is cached: a user the operator adds to a group (or removes) is seen so from their next
request on, with no restart of bai. Each call is one `getpwnam` and one `getgrouplist`; callers
ask once per request.
"""

from __future__ import annotations

import grp
import os
import pwd


def primary_group(user: str) -> str | None:
    """The name of `user`'s primary group; None for an unknown user or a gid without a name."""
    try:
        gid = pwd.getpwnam(user).pw_gid
    except KeyError:
        return None
    return _group_name(gid)


def groups_of(user: str) -> frozenset[str]:
    """The names of every group `user` is in, the primary group too; empty for an unknown user.
    Gids without a group name are left out (a name in the settings cannot mean them)."""
    try:
        gid = pwd.getpwnam(user).pw_gid
    except KeyError:
        return frozenset()
    names = (_group_name(g) for g in os.getgrouplist(user, gid))
    return frozenset(n for n in names if n is not None)


def _group_name(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None
