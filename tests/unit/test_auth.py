"""API tokens on a real store: expiry, revoke, last used (clock injected), system accounts, the
id list and revoke name them by, a store from before expiry, and the service's 401s and 403s."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapter.api.app import build_services, create_app
from adapter.auth import (
    authenticate,
    create_token,
    hash_token,
    parse_expiry,
    select_tokens,
    short_ids,
)
from adapter.backends.cli import CliBackend
from adapter.backends.runner import LocalRunner
from adapter.clock import now
from adapter.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from adapter.settings import AuthSettings, Settings
from adapter.store import SCHEMA_VERSION, Store
from tests.unit.api.apps import client, error_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STRICT = AuthSettings()
LAB = AuthSettings(allow_system_users=["root"])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "bai.db")
    yield s
    s.close()


def make(
    store: Store, user: str, expires: datetime | None, *, admin: bool = False, label: str = ""
) -> str:
    return create_token(store, user, policy=LAB, at=T0, expires=expires, admin=admin, label=label)


def test_a_token_works_until_it_expires_then_says_so(store: Store, person: str) -> None:
    token = make(store, person, T0 + timedelta(days=30), admin=True, label="ci")

    caller = authenticate(store, token, policy=STRICT, at=T0 + timedelta(days=29))
    assert (caller.user, caller.admin) == (person, True)
    with pytest.raises(Unauthorized, match=r"expired at 2026-01-31 00:00 UTC.*bai token create"):
        authenticate(store, token, policy=STRICT, at=T0 + timedelta(days=30))


def test_a_token_without_expiry_never_expires(store: Store, person: str) -> None:
    token = make(store, person, None)
    assert authenticate(store, token, policy=STRICT, at=T0 + timedelta(days=9999)).user == person


def test_a_revoked_token_fails_on_the_very_next_call(store: Store, person: str) -> None:
    token, other = make(store, person, None), make(store, person, None)
    authenticate(store, token, policy=STRICT, at=T0)

    chosen = select_tokens(store.tokens(), ids=[hash_token(token)[:12]])
    assert store.delete_tokens([r.hash for r in chosen]) == 1

    with pytest.raises(Unauthorized, match="not valid"):
        authenticate(store, token, policy=STRICT, at=T0)
    assert authenticate(store, other, policy=STRICT, at=T0).user == person


def test_last_used_is_written_at_most_once_a_minute(store: Store, person: str) -> None:
    token = make(store, person, None)
    (record,) = store.tokens()
    assert record.last_used is None
    writes: list[str] = []
    store._db.set_trace_callback(lambda sql: writes.append(sql) if "UPDATE" in sql else None)

    for seconds in (0, 1, 30, 59.9):
        authenticate(store, token, policy=STRICT, at=T0 + timedelta(seconds=seconds))
    assert store.tokens()[0].last_used == T0
    assert len(writes) == 1
    authenticate(store, token, policy=STRICT, at=T0 + timedelta(seconds=60))
    assert store.tokens()[0].last_used == T0 + timedelta(seconds=60)
    assert len(writes) == 2


def test_system_accounts_get_tokens_only_when_allowed(store: Store, person: str) -> None:
    for user in ("root", "nobody"):
        with pytest.raises(InvalidRequest, match=r"system account.*auth\.allow_system_users"):
            create_token(store, user, policy=STRICT, at=T0, expires=None, admin=True)
    assert store.tokens() == []

    token = make(store, "root", None, admin=True)
    assert authenticate(store, token, policy=LAB, at=T0).user == "root"
    # The operator took root off the list: the token made before stops working.
    with pytest.raises(Forbidden, match=r"'root', a system account \(uid 0\)"):
        authenticate(store, token, policy=STRICT, at=T0)
    assert create_token(store, person, policy=STRICT, at=T0, expires=None)


def test_an_unknown_user_gets_no_token(store: Store) -> None:
    with pytest.raises(InvalidRequest, match="no Unix user 'no-such-user'"):
        create_token(store, "no-such-user", policy=LAB, at=T0, expires=None)


def test_a_token_of_a_user_removed_since_is_refused(store: Store) -> None:
    store.add_token(hash_token("bai_x"), "gone-user", False, "", created=T0, expires=None)
    with pytest.raises(Unauthorized, match="'gone-user', who no longer exists"):
        authenticate(store, "bai_x", policy=STRICT, at=T0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12h", T0 + timedelta(hours=12)),
        ("30d", T0 + timedelta(days=30)),
        ("2W", T0 + timedelta(weeks=2)),
        ("2026-12-31", datetime(2026, 12, 31, tzinfo=UTC)),
        ("2026-06-01T18:00+02:00", datetime(2026, 6, 1, 16, tzinfo=UTC)),
        (" never ", None),
    ],
)
def test_expiry_spellings(text: str, expected: datetime | None) -> None:
    assert parse_expiry(text, T0) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0d", "already over"),
        ("2025-12-31", "in the past"),
        ("30m", "not a time"),
        ("soon", "not a time"),
        ("99999999999d", "not a time"),
    ],
)
def test_bad_expiry_says_what_to_write(text: str, why: str) -> None:
    with pytest.raises(InvalidRequest, match=f"{why}.*12h, 30d, 2w") as info:
        parse_expiry(text, T0)
    assert info.value.target == "expires"


def test_ids_are_12_hex_digits_longer_while_two_would_share_one() -> None:
    hashes = ["abcdef0123456789", "abcdef0123459999", "0123456789abcdef"]
    assert short_ids(hashes) == {
        "abcdef0123456789": "abcdef0123456",
        "abcdef0123459999": "abcdef0123459",
        "0123456789abcdef": "0123456789abc",
    }
    assert short_ids(["f" * 64]) == {"f" * 64: "f" * 12}


def test_revoke_selectors(store: Store, person: str) -> None:
    old = make(store, person, T0 + timedelta(hours=1), label="ci")
    make(store, person, None, label="ci")
    make(store, "root", None, label="lab")
    records = store.tokens()

    assert {r.label for r in select_tokens(records, label="ci")} == {"ci"}
    assert len(select_tokens(records, label="ci", user="root")) == 3
    expired = select_tokens(records, expired_at=T0 + timedelta(hours=2))
    assert [r.hash for r in expired] == [hash_token(old)]
    with pytest.raises(NotFound, match="no token has the label 'x'"):
        select_tokens(records, user="root", label="x")  # one selector matching nothing: none
    with pytest.raises(NotFound, match="no token has expired"):
        select_tokens(records, expired_at=T0)
    with pytest.raises(InvalidRequest, match="at least 8"):
        select_tokens(records, ids=["abc"])
    with pytest.raises(NotFound, match="no token has the id 'ffffffffffff'"):
        select_tokens(records, ids=["ffffffffffff"])


def test_an_ambiguous_id_revokes_nothing(store: Store, person: str) -> None:
    store.add_token("ab" * 32, person, False, "", created=T0, expires=None)
    store.add_token("ab" * 16 + "cd" * 16, person, False, "", created=T0, expires=None)
    with pytest.raises(InvalidRequest, match="matches 2 tokens; give more of its digits"):
        select_tokens(store.tokens(), ids=["abababab"])


V1_TABLES = """
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY, unix_user TEXT NOT NULL, admin INTEGER NOT NULL, label TEXT NOT NULL,
    created TEXT NOT NULL);
CREATE TABLE workspaces (
    sub TEXT NOT NULL, rg TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,
    location TEXT NOT NULL, tags TEXT NOT NULL, created TEXT NOT NULL, state TEXT NOT NULL,
    state_changed TEXT NOT NULL, PRIMARY KEY (sub, rg, name));
CREATE TABLE experiments (
    sub TEXT NOT NULL, rg TEXT NOT NULL COLLATE NOCASE, ws TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, created TEXT NOT NULL, state TEXT NOT NULL,
    state_changed TEXT NOT NULL, PRIMARY KEY (sub, rg, ws, name));
CREATE TABLE operations (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL,
    error TEXT, created TEXT NOT NULL, updated TEXT NOT NULL);
PRAGMA user_version=1;
"""


def test_tokens_of_a_version_1_store_keep_working(tmp_path: Path, person: str) -> None:
    path = tmp_path / "bai.db"
    db = sqlite3.connect(path)
    db.executescript(V1_TABLES)
    db.execute(
        "INSERT INTO tokens VALUES (?, ?, 1, 'make dev', ?)",
        (hash_token("bai_old"), person, T0.isoformat()),
    )
    db.commit()
    db.close()

    store = Store(path)
    try:
        caller = authenticate(store, "bai_old", policy=STRICT, at=T0 + timedelta(days=400))
        assert (caller.user, caller.admin) == (person, True)
        (record,) = store.tokens()
        assert (record.label, record.created, record.expires) == ("make dev", T0, None)
        assert record.last_used == T0 + timedelta(days=400)
        make(store, person, T0 + timedelta(days=1))  # new rows fit the migrated table
        assert len(store.tokens()) == 2
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        store.close()


async def test_the_service_answers_401_or_403_with_what_to_do(tmp_path: Path, person: str) -> None:
    settings = Settings(state_dir=tmp_path)
    services = build_services(settings, CliBackend(LocalRunner()))
    app = create_app(services, run_reconciler=False)
    store, at = services.store, now()
    good = create_token(store, person, policy=LAB, at=at, expires=at + timedelta(hours=1))
    expired = create_token(store, person, policy=LAB, at=at, expires=at - timedelta(seconds=1))
    root = create_token(store, "root", policy=LAB, at=at, expires=None, admin=True)
    revoked = create_token(store, person, policy=LAB, at=at, expires=None)
    store.delete_tokens([hash_token(revoked)])
    path = "/subscriptions/s/providers/Microsoft.BatchAI/workspaces?api-version=2018-05-01"

    async with client(app) as http:

        async def get(token: str) -> tuple[int, str]:
            response = await http.get(path, headers={"Authorization": f"Bearer {token}"})
            text = error_of(response)["message"] if response.status_code >= 400 else ""
            return response.status_code, text

        assert (await get(good))[0] == 200
        status, message = await get(expired)
        assert status == 401 and "expired" in message and "bai token create" in message
        assert await get(revoked) == (
            401,
            "the bearer token is not valid (revoked, or never made); ask an operator for a "
            "new one: `bai token create --user NAME`",
        )
        status, message = await get(root)
        assert status == 403 and "auth.allow_system_users" in message
        store.delete_tokens([hash_token(good)])
        assert (await get(good))[0] == 401  # revoked while the service runs: the next request


def test_a_cluster_may_run_as_a_system_account_only_when_allowed(
    tmp_path: Path, person: str
) -> None:
    strict = build_services(Settings(state_dir=tmp_path / "a"), CliBackend(LocalRunner()))
    with pytest.raises(InvalidRequest, match=r"auth\.allow_system_run_as") as info:
        strict.clusters._check_admin("root", None)
    assert info.value.target == "properties.userAccountSettings.adminUserName"
    strict.clusters._check_admin(person, None)

    lab = Settings(state_dir=tmp_path / "b", auth=AuthSettings(allow_system_run_as=["root"]))
    build_services(lab, CliBackend(LocalRunner())).clusters._check_admin("root", None)
