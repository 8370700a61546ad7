"""Tokens against the running service: an expired token and a revoked one fail on their very
next request, and `bai token list` shows them without the token."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.service import Api, CloudError, Service

BAI = str(Path(sys.executable).parent / "bai")


def operator(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    """`bai token ...` on the service host, with the service's settings."""
    return subprocess.run(
        [BAI, "token", *args],
        env={**os.environ, **service.env, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def make(service: Service, *args: str) -> tuple[str, str]:
    made = operator(service, "create", "--user", "alice", "--label", "e2e-tok", *args)
    assert made.returncode == 0, made.stderr
    ident = re.search(r"token ([0-9a-f]{12,}) for alice", made.stderr)
    assert ident, made.stderr
    return made.stdout.strip(), ident[1]


def status(service: Service, token: str) -> tuple[int, str]:
    api = Api(service, token)
    try:
        api.call("GET", f"/subscriptions/{api.sub}/providers/Microsoft.BatchAI/workspaces")
        return 200, ""
    except CloudError as err:
        return err.status, err.error.get("message", "")
    finally:
        api.close()


def test_an_expired_token_fails_on_its_next_request(service: Service) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    token, ident = make(service, "--expires", soon)
    assert status(service, token) == (200, "")
    time.sleep(3.5)
    code, message = status(service, token)
    assert code == 401 and f"token {ident} expired" in message, message


def test_a_revoked_token_fails_on_its_next_request_and_list_never_shows_a_token(
    service: Service,
) -> None:
    token, ident = make(service, "--expires", "1d")
    assert status(service, token) == (200, "")

    listed = operator(service, "list")
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if ident in row)
    assert "e2e-tok" in line and "alice" in line
    assert all(len(row) <= 80 for row in listed.stdout.splitlines())
    assert token not in listed.stdout and token.removeprefix("bai_") not in listed.stdout

    revoked = operator(service, "revoke", ident)
    assert revoked.returncode == 0, revoked.stderr
    code, message = status(service, token)
    assert code == 401 and "not valid" in message, message
