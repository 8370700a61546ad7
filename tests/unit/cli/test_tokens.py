"""`bai token create`, `list` and `revoke` on a store in a temporary state directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapter.auth import authenticate, hash_token
from adapter.cli import app
from adapter.errors import Unauthorized
from adapter.settings import AuthSettings
from adapter.store import Store

ROOT_OK = {"BAI_AUTH__ALLOW_SYSTEM_USERS": '["root"]'}


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("BAI_CONFIG", raising=False)
    monkeypatch.setenv("BAI_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "80")
    return tmp_path


def bai(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str, str]:
    """Exit code, stdout, stderr, and the message of the BaiError that ended it (main() prints
    that one line)."""
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr, str(result.exception or "")


def test_create_list_revoke(state: Path, person: str) -> None:
    code, token, err, _ = bai("token", "create", "--user", person, "--label", "ci", "--admin")
    token = token.strip()
    assert code == 0 and token.startswith("bai_") and "\n" not in token
    ident = hash_token(token)[:12]
    assert f"token {ident} for {person} (admin), expires " in err
    code, never, _, _ = bai("token", "create", "--user", person, "--expires", "never")
    never = never.strip()

    code, table, _, _ = bai("token", "list")
    assert code == 0
    assert max(len(line) for line in table.splitlines()) <= 80
    lines = [line.split() for line in table.splitlines()]
    assert lines[0] == ["ID", "Label", "User", "Admin", "Created", "Last", "used", "Expires"]
    assert lines[2][:4] == [ident, "ci", person, "yes"]
    assert lines[2][-4:] == ["never", "in", "89", "d"]
    assert lines[3][-2:] == ["never", "never"]
    code, listing, _, _ = bai("token", "list", "-o", "json")
    rows = json.loads(listing)
    assert [(r["id"], r["label"], r["admin"], r["expired"]) for r in rows][0] == (
        ident,
        "ci",
        True,
        False,
    )
    for output in (table, listing):
        for secret in (token, never):
            assert secret not in output and hash_token(secret) not in output

    code, out, _, _ = bai("token", "revoke", ident)
    assert code == 0 and out == f"revoked {ident} ({person}, 'ci')\n"
    store = Store(state / "bai.db")
    try:
        with pytest.raises(Unauthorized, match="not valid"):
            authenticate(store, token, policy=AuthSettings())
        assert authenticate(store, never, policy=AuthSettings()).user == person
    finally:
        store.close()


def test_root_needs_the_setting_and_gets_no_token_without_it(state: Path) -> None:
    code, out, _, error = bai("token", "create", "--user", "root", "--admin")
    assert code == 1 and out == "" and "'root' is a system account (uid 0)" in error
    assert "auth.allow_system_users" in error and "BAI_AUTH__ALLOW_SYSTEM_USERS" in error
    code, listing, _, _ = bai("token", "list", "-o", "json")
    assert json.loads(listing) == []

    code, out, _, _ = bai("token", "create", "--user", "root", "--admin", env=ROOT_OK)
    assert code == 0 and out.startswith("bai_")


def test_bad_expiry_and_unknown_ids_fail_with_exit_1(state: Path, person: str) -> None:
    code, out, _, error = bai("token", "create", "--user", person, "--expires", "tomorrow")
    assert code == 1 and out == "" and "--expires 'tomorrow' is not a time" in error
    code, _, _, error = bai("token", "revoke", "0123456789ab")
    assert code == 1 and "no token has the id '0123456789ab'" in error
    code, _, _, error = bai("token", "revoke")
    assert code == 1 and "name the tokens to revoke" in error
