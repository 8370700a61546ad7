"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pwd

import pytest

from adapter.accounts import system_account


@pytest.fixture(scope="module")
def person() -> str:
    """A person's account on this host (alice on the dev cluster), for token tests."""
    for entry in sorted(pwd.getpwall(), key=lambda e: e.pw_name != "alice"):
        if system_account(entry) is None:
            return entry.pw_name
    pytest.skip("this host has no account with a person's uid")
