"""Who sees and changes what (adapter/tenancy.py), with the host's real users and groups:
root (in group root) and nobody (in nogroup) exist on every Debian host."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapter.auth import Principal
from adapter.errors import InvalidRequest
from adapter.records import Workspace
from adapter.tenancy import (
    SHARE_TAG,
    can_see,
    check_sharing,
    may_change,
    shared_groups,
    slurm_groups,
)

T = datetime(2026, 1, 1, tzinfo=UTC)
ROOT, NOBODY = Principal("root", admin=False), Principal("nobody", admin=False)
ADMIN = Principal("nobody", admin=True)


def ws(owner: str, groups: str | None = None) -> Workspace:
    tags = {} if groups is None else {SHARE_TAG: groups}
    return Workspace("s", "rg", "w", "here", tags, T, "succeeded", T, owner)


@pytest.mark.parametrize(
    ("value", "groups"),
    [
        ("", ()),
        ("ml-team", ("ml-team",)),
        (" b , a,,a ", ("a", "b")),  # spaces, empties and repeats do not count; sorted
    ],
)
def test_shared_groups_come_from_the_tag(value: str, groups: tuple[str, ...]) -> None:
    assert shared_groups({SHARE_TAG: value, "other": "x"}) == groups


def test_an_owner_sees_and_changes_their_own_and_nobody_elses() -> None:
    mine = ws("nobody")
    assert can_see(NOBODY, mine) and may_change(NOBODY, mine)
    assert not can_see(ROOT, mine) and not may_change(ROOT, mine)
    assert can_see(ADMIN, ws("root")) and may_change(ADMIN, ws("root"))


def test_a_member_of_a_shared_group_sees_but_changes_only_what_they_own() -> None:
    shared = ws("nobody", "root")
    assert can_see(ROOT, shared)
    assert not may_change(ROOT, shared, owner="nobody")
    assert may_change(ROOT, shared, owner="root")  # their own cluster, job or experiment
    assert may_change(NOBODY, shared, owner="root")  # the workspace's owner: anything in it
    assert not can_see(NOBODY, ws("root", "root"))  # nogroup is not root


def test_sharing_names_existing_groups_the_sharer_is_in() -> None:
    check_sharing({SHARE_TAG: "root"}, ROOT, "root")
    with pytest.raises(InvalidRequest) as missing:
        check_sharing({SHARE_TAG: "no-such-group-xyz"}, ROOT, "root")
    assert missing.value.target == f"tags.{SHARE_TAG}"
    assert "no-such-group-xyz" in str(missing.value)
    with pytest.raises(InvalidRequest) as foreign:
        check_sharing({SHARE_TAG: "root"}, NOBODY, "nobody")
    assert "not a member of group 'root'" in str(foreign.value)
    check_sharing({SHARE_TAG: "root"}, ADMIN, "nobody")  # an admin shares with any group


def test_slurm_allows_the_owners_and_admin_users_primary_groups_and_the_shared_ones() -> None:
    assert slurm_groups(ws("nobody"), []) == ("nogroup",)
    assert slurm_groups(ws("nobody", "root"), ["root"]) == ("nogroup", "root")
    assert slurm_groups(ws("nobody"), ["no-such-user-xyz"]) == ("nogroup",)
