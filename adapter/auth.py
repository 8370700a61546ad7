"""API tokens: bearer tokens bound to a Unix user, stored only as hashes."""

from __future__ import annotations

import hashlib
import pwd
import secrets
from dataclasses import dataclass

from adapter.errors import Forbidden, InvalidRequest
from adapter.store import Store

TOKEN_PREFIX = "bai_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the Unix user their jobs run as, and whether they administer bai."""

    user: str
    admin: bool

    def require_user(self, user: str, field: str) -> None:
        """Only an admin may act as (or name) another Unix user."""
        if not self.admin and user != self.user:
            raise Forbidden(
                f"{field} is {user!r} but your token is bound to {self.user!r}; use your own "
                "user name or an admin token",
                target=field,
            )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: Store, user: str, *, admin: bool = False, label: str = "") -> str:
    """Make a token for a Unix user; the clear token is returned once and never stored."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise InvalidRequest(
            f"there is no Unix user {user!r} on this host; tokens are bound to Unix users, "
            "create the user first",
            target="user",
        ) from None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.add_token(hash_token(token), user, admin, label)
    return token


def authenticate(store: Store, token: str) -> Principal | None:
    found = store.token(hash_token(token))
    return Principal(user=found[0], admin=found[1]) if found else None
