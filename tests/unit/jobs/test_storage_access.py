"""Who may use which storage account (`storage_accounts.<name>.users` and `.groups`), with this
machine's real users: alice (primary group alice) and bob (primary group bob)."""

from __future__ import annotations

import grp
import pwd
from collections.abc import Sequence
from typing import Any

import pytest

from adapter.errors import InvalidRequest
from adapter.jobs.volumes import Volume, resolve_volumes
from adapter.settings import StorageAccount

GHOST = "no-such-user-bai"
FIELD = "properties.mountVolumes"


def local(name: str, users: Sequence[str] = (), groups: Sequence[str] = ()) -> StorageAccount:
    return StorageAccount(kind="local", path=f"/srv/{name}", users=[*users], groups=[*groups])


ACCOUNTS = {
    "open": local("open"),
    "alicesonly": local("alicesonly", users=["alice"]),
    "alicegroup": local("alicegroup", groups=["alice"]),  # alice's primary group
    "either": local("either", users=["bob"], groups=["alice"]),
    "nobodys": local("nobodys", users=[GHOST], groups=["no-such-group-bai"]),
}


def secondary() -> tuple[str, str] | None:
    """A (user, group) of this machine where the user is a listed member, not by primary gid."""
    users = {p.pw_name: p.pw_gid for p in pwd.getpwall()}
    for g in sorted(grp.getgrall(), key=lambda g: g.gr_name):
        for member in sorted(g.gr_mem):
            if users.get(member, g.gr_gid) != g.gr_gid:
                return member, g.gr_name
    return None


def named(how: str, account: str) -> tuple[dict[str, Any], str]:
    """A mountVolumes naming `account` one of the four ways, and the field that names it."""
    if how == "fileUrl":
        share = {"azureFileUrl": f"https://{account}.file.core.windows.net/logs"}
        return {"azureFileShares": [{**share, "relativeMountPath": "v"}]}, "azureFileShares[0]"
    if how == "fileAccountName":
        share = {"azureFileUrl": "https://other.file.core.windows.net/logs", "accountName": account}
        return {"azureFileShares": [{**share, "relativeMountPath": "v"}]}, "azureFileShares[0]"
    if how == "blob":
        blob = {"accountName": account, "containerName": "data", "relativeMountPath": "v"}
        return {"azureBlobFileSystems": [blob]}, "azureBlobFileSystems[0]"
    ref = {"fileServer": {"id": f"/x/fileServers/{account}"}, "relativeMountPath": "v"}
    return {"fileServers": [ref]}, "fileServers[0]"


SUFFIX = {
    "fileUrl": "azureFileUrl",
    "fileAccountName": "accountName",
    "blob": "accountName",
    "fileServer": "fileServer.id",
}


def resolve(
    volumes: dict[str, Any],
    user: str,
    *,
    accounts: dict[str, StorageAccount] = ACCOUNTS,
    field: str = FIELD,
    dev_root: str | None = None,
) -> list[Volume]:
    return resolve_volumes(
        volumes,
        field=field,
        root="/m",
        accounts=accounts,
        dev_root=dev_root,
        unmanaged_allowed=(),
        user=user,
    )


@pytest.mark.parametrize("how", list(SUFFIX))
@pytest.mark.parametrize(
    ("account", "user", "allowed"),
    [
        ("open", "alice", True),  # no users, no groups: everyone
        ("open", "bob", True),
        ("open", GHOST, True),
        ("alicesonly", "alice", True),
        ("alicesonly", "bob", False),
        ("alicesonly", GHOST, False),
        ("alicegroup", "alice", True),  # the primary group counts
        ("alicegroup", "bob", False),
        ("either", "alice", True),  # by group
        ("either", "bob", True),  # by name
        ("either", "root", False),
        ("nobodys", "alice", False),
        ("nobodys", "root", False),  # root is checked like any user
    ],
)
def test_who_may_use_an_account(how: str, account: str, user: str, allowed: bool) -> None:
    volumes, label = named(how, account)
    if allowed:
        [volume] = resolve(volumes, user)
        assert volume.source.startswith(f"/srv/{account}")
        return
    with pytest.raises(InvalidRequest) as info:
        resolve(volumes, user)
    target = f"{FIELD}.{label}.{SUFFIX[how]}"
    assert info.value.status == 400
    assert (info.value.target, info.value.message) == (
        target,
        f"{target}: user {user!r} may not use storage account {account!r}; ask the operator "
        f"to add you to storage_accounts.{account}.users or .groups",
    )


def test_a_secondary_group_counts() -> None:
    found = secondary()
    if found is None:
        pytest.skip("no user of this machine is a listed member of another group")
    user, group = found
    accounts = {"team": local("team", groups=[group])}
    volumes, _ = named("blob", "team")
    [volume] = resolve(volumes, user, accounts=accounts)
    assert volume.source == "/srv/team/data"
    with pytest.raises(InvalidRequest):
        resolve(volumes, "alice" if user != "alice" else "bob", accounts=accounts)


def test_a_cluster_volume_is_refused_naming_the_cluster_field() -> None:
    # At job submission the job's owner is checked against its cluster's volumes too.
    volumes, label = named("blob", "alicesonly")
    field = "cluster nodeSetup.mountVolumes"
    assert resolve(volumes, "alice", field=field)
    with pytest.raises(InvalidRequest) as info:
        resolve(volumes, "bob", field=field)
    assert info.value.target == f"{field}.{label}.accountName"
    assert info.value.message.startswith(f"{field}.{label}.accountName: user 'bob' may not use")


def test_one_refused_account_refuses_the_whole_request() -> None:
    volumes = {
        **named("fileUrl", "open")[0],
        "azureBlobFileSystems": [
            {"accountName": "either", "containerName": "data", "relativeMountPath": "b1"},
            {"accountName": "alicesonly", "containerName": "data", "relativeMountPath": "b2"},
        ],
    }
    assert len(resolve(volumes, "alice")) == 3
    with pytest.raises(InvalidRequest) as info:
        resolve(volumes, "bob")
    assert info.value.target == f"{FIELD}.azureBlobFileSystems[1].accountName"


@pytest.mark.parametrize("user", ["alice", "bob", GHOST])
def test_dev_storage_directories_are_open_to_everyone(user: str) -> None:
    volumes, _ = named("blob", "devonly")
    [volume] = resolve(volumes, user, dev_root="/dev-storage")
    assert volume.source == "/dev-storage/devonly/data"


def test_a_restricted_account_is_not_bypassed_through_dev_storage() -> None:
    # A configured account wins over dev storage, restrictions and all.
    volumes, _ = named("fileUrl", "alicesonly")
    with pytest.raises(InvalidRequest):
        resolve(volumes, "bob", dev_root="/dev-storage")
