"""Who is calling: bearer tokens bound to a Unix user (stored only as hashes, expiring,
revocable), or a munge credential made on a cluster host.

A token's id is the start of its hash (12 hex digits, more while two tokens would share one):
it names the token in `bai token list` and `revoke` and in 401 messages, and says nothing that
helps guess the token. docs/security.md, "Tokens" and "Identity on the cluster's hosts", has
the rules.
"""

from __future__ import annotations

import hashlib
import pwd
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from adapter import munge
from adapter.accounts import system_account
from adapter.clock import now
from adapter.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from adapter.records import TokenRecord
from adapter.settings import AuthSettings
from adapter.store import Store

TOKEN_PREFIX = "bai_"
DEFAULT_EXPIRY = "90d"
ID_LENGTH = 12
# last_used is written at most this often per token: a write per request would cost every
# request a commit, for a date nobody needs to the second.
LAST_USED_RESOLUTION = timedelta(minutes=1)
_DURATION = re.compile(r"([0-9]+)([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
# One with an empty payload, as the CLI sends, is about 130 characters.
MAX_MUNGE_CREDENTIAL = 4096


@dataclass(frozen=True)
class Principal:
    """Who is calling: the Unix user their jobs run as, whether they administer bai, and how
    they proved it (a munge principal is never an admin)."""

    user: str
    admin: bool
    method: Literal["token", "munge"] = "token"

    def require_user(self, user: str, field: str) -> None:
        """Only an admin may act as (or name) another Unix user."""
        if not self.admin and user != self.user:
            proof = "token is bound to" if self.method == "token" else "munge credential is"
            raise Forbidden(
                f"{field} is {user!r} but your {proof} {self.user!r}; use your own "
                "user name or an admin token",
                target=field,
            )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def short_ids(hashes: Sequence[str]) -> dict[str, str]:
    """Each hash's id: its first ID_LENGTH hex digits, or more (as many for every hash) while
    two would share one."""
    length = ID_LENGTH
    while len({h[:length] for h in hashes}) < len(set(hashes)):
        length += 1
    return {h: h[:length] for h in hashes}


def parse_expiry(text: str, at: datetime) -> datetime | None:
    """`--expires`: `12h`, `30d`, `2w` from `at`, an ISO date or time (UTC unless it says),
    or `never` (None)."""
    value = text.strip().lower()
    if value == "never":
        return None
    hint = "use 12h, 30d, 2w, an ISO date (2026-12-31) or time (2026-12-31T18:00+01:00), or never"
    try:
        if match := _DURATION.fullmatch(value):
            amount = int(match[1])
            if amount == 0:
                raise InvalidRequest(
                    f"--expires {text!r} is already over; {hint}", target="expires"
                )
            return at + timedelta(**{_UNITS[match[2]]: amount})
        when = datetime.fromisoformat(text.strip())
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"--expires {text!r} is not a time; {hint}", target="expires"
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    if when <= at:
        raise InvalidRequest(
            f"--expires {text!r} is in the past (now is {at:%Y-%m-%d %H:%M} UTC); {hint}",
            target="expires",
        )
    return when


def create_token(
    store: Store,
    user: str,
    *,
    policy: AuthSettings,
    at: datetime,
    expires: datetime | None,
    admin: bool = False,
    label: str = "",
) -> str:
    """Make a token for a Unix user; the clear token is returned once and never stored."""
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise InvalidRequest(
            f"there is no Unix user {user!r} on this host; tokens are bound to Unix users, "
            "create the user first",
            target="user",
        ) from None
    reason = system_account(account)
    if reason and user not in policy.allow_system_users:
        raise InvalidRequest(
            f"{user!r} is a system account ({reason}); bai makes tokens for it only if the "
            f"operator lists it in the setting auth.allow_system_users (in the settings file, or "
            f"BAI_AUTH__ALLOW_SYSTEM_USERS='[\"{user}\"]'); or make the token for a person's user",
            target="user",
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.add_token(hash_token(token), user, admin, label, created=at, expires=expires)
    return token


def authenticate(
    store: Store, token: str, *, policy: AuthSettings, at: datetime | None = None
) -> Principal:
    """The caller a token stands for at `at` (default now), read from the store on every call
    (a revoke counts at once). Unauthorized: revoked, never made, expired, or its user is gone;
    Forbidden: its user is a system account the operator does not allow."""
    at = at or now()
    token_hash = hash_token(token)
    found = store.token(token_hash)
    if found is None:
        raise Unauthorized(
            "the bearer token is not valid (revoked, or never made); ask an operator for a "
            "new one: `bai token create --user NAME`"
        )
    ident = token_hash[:ID_LENGTH]
    if found.expires is not None and at >= found.expires:
        raise Unauthorized(
            f"the bearer token {ident} expired at {found.expires:%Y-%m-%d %H:%M} UTC; ask an "
            f"operator for a new one: `bai token create --user {found.user}`"
        )
    try:
        account = pwd.getpwnam(found.user)
    except KeyError:
        raise Unauthorized(
            f"the bearer token {ident} is bound to the Unix user {found.user!r}, who no longer "
            "exists on this host; ask an operator to revoke it and make you a new one"
        ) from None
    allowed(account, policy, f"the bearer token {ident} is bound to {found.user!r}")
    if found.last_used is None or at - found.last_used >= LAST_USED_RESOLUTION:
        store.touch_token(token_hash, at)
    return Principal(user=found.user, admin=found.admin)


def authenticate_munge(
    cred: str,
    *,
    policy: AuthSettings,
    decode: Callable[[str], munge.Credential] = munge.decode,
) -> Principal:
    """The caller a munge credential stands for: the Unix user of its uid, never an admin
    (admins use tokens). munged refuses a replayed, expired or foreign credential. Blocks on
    munged: call it in a worker thread. Unauthorized: munge refuses it, or its uid has no user
    here; Forbidden: a system account the operator does not allow, as for tokens."""
    if len(cred) > MAX_MUNGE_CREDENTIAL:
        raise Unauthorized(
            f"the munge credential is {len(cred)} characters, more than the "
            f"{MAX_MUNGE_CREDENTIAL} bai accepts; make it with `munge -n` (no payload)"
        )
    try:
        found = decode(cred)
    except munge.MungeError as exc:
        raise Unauthorized(exc.reason) from None
    try:
        account = pwd.getpwuid(found.uid)
    except KeyError:
        raise Unauthorized(
            f"the munge credential's uid {found.uid} has no user on the service host; a user "
            "needs the same uid on the cluster's hosts and the service host (or a token)"
        ) from None
    allowed(account, policy, f"the munge credential is {account.pw_name!r}'s")
    return Principal(user=account.pw_name, admin=False, method="munge")


def allowed(account: pwd.struct_passwd, policy: AuthSettings, whose: str) -> None:
    """Forbidden for a system account the operator does not list in auth.allow_system_users
    (`whose`: how the caller's credential names the account)."""
    reason = system_account(account)
    if reason and account.pw_name not in policy.allow_system_users:
        raise Forbidden(
            f"{whose}, a system account ({reason}); bai acts as system accounts only if the "
            "operator lists them in the setting auth.allow_system_users"
        )


def select_tokens(
    records: Sequence[TokenRecord],
    *,
    ids: Sequence[str] = (),
    label: str | None = None,
    user: str | None = None,
    expired_at: datetime | None = None,
) -> list[TokenRecord]:
    """The tokens `bai token revoke` names: by id (a prefix of at least 8 hex digits that
    matches one token), label, user, or expired by `expired_at`. A selector that matches no
    token is an error, so nothing is revoked."""
    chosen: dict[str, TokenRecord] = {}
    for ident in ids:
        prefix = ident.strip().lower()
        if len(prefix) < 8 or not re.fullmatch(r"[0-9a-f]+", prefix):
            raise InvalidRequest(
                f"token id {ident!r} is not an id; give the id `bai token list` shows "
                "(at least 8 of its hex digits)",
                target="id",
            )
        matches = [r for r in records if r.hash.startswith(prefix)]
        if len(matches) > 1:
            raise InvalidRequest(
                f"token id {ident!r} matches {len(matches)} tokens; give more of its digits",
                target="id",
            )
        if not matches:
            raise NotFound(f"no token has the id {ident!r}; see `bai token list`", target="id")
        chosen[matches[0].hash] = matches[0]
    wanted: list[tuple[str, str, list[TokenRecord]]] = []
    if label is not None:
        wanted.append(
            (f"has the label {label!r}", "label", [r for r in records if r.label == label])
        )
    if user is not None:
        wanted.append((f"is bound to {user!r}", "user", [r for r in records if r.user == user]))
    if expired_at is not None:
        expired = [r for r in records if r.expires is not None and r.expires <= expired_at]
        wanted.append(("has expired", "expired", expired))
    for what, target, matches in wanted:
        if not matches:
            raise NotFound(f"no token {what}; see `bai token list`", target=target)
        chosen.update((r.hash, r) for r in matches)
    return list(chosen.values())
