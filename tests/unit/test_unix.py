"""adapter.unix against this machine's real users and groups, checked against `id`."""

from __future__ import annotations

import grp
import pwd
import subprocess

import pytest

from adapter.unix import groups_of, primary_group

GHOST = "no-such-user-bai"


def id_groups(user: str) -> frozenset[str]:
    """What coreutils' `id` says: an independent reading of the same name service."""
    out = subprocess.run(["id", "-Gn", user], capture_output=True, text=True, check=True).stdout
    return frozenset(out.split())


def with_secondary_groups() -> list[str]:
    """Users of this machine who are listed as members of a group other than their primary."""
    users = {p.pw_name: p.pw_gid for p in pwd.getpwall()}
    return sorted(
        {m for g in grp.getgrall() for m in g.gr_mem if m in users and users[m] != g.gr_gid}
    )


@pytest.mark.parametrize("user", ["alice", "bob", "root", *with_secondary_groups()])
def test_groups_of_is_what_id_says(user: str) -> None:
    assert groups_of(user) == id_groups(user)


@pytest.mark.parametrize(("user", "group"), [("alice", "alice"), ("bob", "bob"), ("root", "root")])
def test_the_primary_group_counts(user: str, group: str) -> None:
    assert primary_group(user) == group
    assert group in groups_of(user)


def test_alice_is_not_in_bobs_group() -> None:
    assert "bob" not in groups_of("alice") and "alice" not in groups_of("bob")


def test_a_secondary_group_counts() -> None:
    users = with_secondary_groups()
    if not users:
        pytest.skip("no user of this machine is a listed member of another group")
    user = users[0]
    listed = {g.gr_name for g in grp.getgrall() if user in g.gr_mem} - {primary_group(user)}
    assert listed and listed <= groups_of(user)


def test_an_unknown_user_has_no_groups() -> None:
    assert groups_of(GHOST) == frozenset()
    assert primary_group(GHOST) is None
