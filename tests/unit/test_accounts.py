"""System accounts: root, daemons below UID_MIN, Debian's package range, nobody; people pass."""

from __future__ import annotations

import pwd

import pytest

from adapter.accounts import UidRange, login_uid_range, parse_login_defs, system_account, system_uid

DEBIAN = UidRange(1000, 60000)


@pytest.mark.parametrize(
    ("uid", "reason"),
    [
        (0, "uid 0"),
        (1, "uid 1, below UID_MIN 1000"),
        (999, "uid 999, below UID_MIN 1000"),
        (60001, "uid 60001, above UID_MAX 60000"),
        (64030, "uid 64030, above UID_MAX 60000"),  # Debian's slurm
        (65534, "uid 65534, nobody's"),
        (65535, "uid 65535, above UID_MAX 60000"),
    ],
)
def test_system_uids_say_why(uid: int, reason: str) -> None:
    found = system_uid(uid, DEBIAN)
    assert found is not None and found.startswith(reason)


@pytest.mark.parametrize("uid", [1000, 1001, 60000, 65536, 1_234_567_890])
def test_peoples_uids_pass_ldap_and_ad_mapped_ones_too(uid: int) -> None:
    assert system_uid(uid, DEBIAN) is None


def test_nobody_stays_a_system_account_when_uid_max_is_raised() -> None:
    assert system_uid(65534, UidRange(1000, 2_000_000)) == "uid 65534, nobody's"


def test_login_defs_values_and_defaults() -> None:
    text = (
        "# UID_MIN 5\nUID_MIN\t\t 2000\nUID_MAX 50000 # site\n"
        "SYS_UID_MIN 100\nUID_MAX x\nUID_MIN ²\n"  # not a number: ignored
    )
    assert parse_login_defs(text) == UidRange(2000, 50000)
    assert parse_login_defs("") == UidRange(1000, 60000)


def test_this_hosts_root_and_nobody_are_system_accounts() -> None:
    assert system_account(pwd.getpwnam("root")) == "uid 0"
    assert system_account(pwd.getpwnam("nobody")) is not None
    assert login_uid_range().low > 0
