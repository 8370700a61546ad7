"""Munge identity: the error table, libmunge against this host's munged (round trip, replay,
an absent munged or library), authenticate_munge with an injected decoder, the client's
configuration file, the CLI client's per-request credential, and the service's 401s and 403."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from adapter import munge
from adapter.api.app import build_services, create_app
from adapter.auth import MAX_MUNGE_CREDENTIAL, Principal, authenticate_munge
from adapter.backends.cli import CliBackend
from adapter.backends.runner import LocalRunner
from adapter.cli import config
from adapter.cli.client import Client, CliError
from adapter.cli.config import ConfigError, parse_conf
from adapter.errors import Forbidden, Unauthorized
from adapter.munge import Credential, MungeError, MungeFailure
from adapter.settings import AuthSettings, Settings
from tests.unit.api.apps import client, error_of

STRICT = AuthSettings()
LAB = AuthSettings(allow_system_users=["root"])
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
MISSING_SOCKET = "/nonexistent/munge.socket.2"


def munge_as(user: str, *args: str) -> str:
    """A credential made by `munge -n` run as `user`."""
    entry = pwd.getpwnam(user)
    argv = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups"]
    made = subprocess.run(
        [*argv, "munge", "-n", *args], capture_output=True, text=True, check=True, timeout=10
    )
    return made.stdout.strip()


# The error table: munge_err_t to kind and message, for each side.


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        (17, MungeFailure.REPLAYED, "each request needs a new one"),
        (15, MungeFailure.EXPIRED, "made 2026-01-01 12:00:00 UTC with a ttl of 300 s"),
        (16, MungeFailure.REWOUND, "synchronise the client and service hosts' clocks"),
        (8, MungeFailure.INVALID, "shares the service host's munge key"),
        (11, MungeFailure.INVALID, "(detail)"),
        (14, MungeFailure.INVALID, "send a whole one"),
        (18, MungeFailure.UNAUTHORIZED, "without --restrict-uid"),
        (6, MungeFailure.UNAVAILABLE, "munged is not running on the service host"),
        (7, MungeFailure.UNAVAILABLE, "ask the operator to start it"),
        (1, MungeFailure.FAILED, "could not decode the credential (detail, error 1)"),
    ],
)
def test_a_refused_decode_says_what_happened_and_what_to_do(
    code: int, kind: MungeFailure, words: str
) -> None:
    error = munge.failure(code, "decode", "detail", T0, 300)
    assert (error.kind, error.code) == (kind, code)
    assert words in str(error) and error.reason == str(error)


def test_a_failed_encode_speaks_of_this_host() -> None:
    error = munge.failure(6, "encode", "Failed to access socket")
    assert error.kind is MungeFailure.UNAVAILABLE
    assert str(error) == (
        "munged is not running on this host (Failed to access socket); start it: "
        "`systemctl start munge`"
    )
    assert munge.failure(3, "encode", "x").kind is MungeFailure.FAILED


# libmunge against the host's munged.


def test_a_credential_is_decoded_once_with_its_maker_and_payload() -> None:
    cred = munge.encode(b"job\x00data")
    assert cred.startswith("MUNGE:") and cred.endswith(":")
    found = munge.decode(cred)
    assert (found.uid, found.gid, found.ttl, found.payload) == (0, 0, 300, b"job\x00data")
    assert abs((datetime.now(UTC) - found.encoded).total_seconds()) < 5
    with pytest.raises(MungeError) as info:
        munge.decode(cred)
    assert info.value.kind is MungeFailure.REPLAYED and info.value.code == 17


def test_the_uid_is_the_makers(person: str) -> None:
    found = munge.decode(munge_as(person, "-t", "60"))
    assert (found.uid, found.ttl) == (pwd.getpwnam(person).pw_uid, 60)


@pytest.mark.parametrize("cred", ["", "garbage", "MUNGE:AwQFAAD1aOKrHA8F:", "MUNGE:\x00:", "é"])
def test_what_is_not_a_credential_is_invalid(cred: str) -> None:
    with pytest.raises(MungeError) as info:
        munge.decode(cred)
    assert info.value.kind is MungeFailure.INVALID, info.value


def test_a_munged_that_does_not_answer_is_unavailable_on_both_sides() -> None:
    with pytest.raises(MungeError) as made:
        munge.encode(socket=MISSING_SOCKET)
    assert made.value.kind is MungeFailure.UNAVAILABLE
    assert "munged is not running on this host" in str(made.value)
    assert MISSING_SOCKET in str(made.value)
    with pytest.raises(MungeError) as decoded:
        munge.decode(munge.encode(), socket=MISSING_SOCKET)
    assert decoded.value.kind is MungeFailure.UNAVAILABLE
    assert "munged is not running on the service host" in str(decoded.value)


@pytest.fixture
def no_libmunge(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(munge, "LIBRARY", "libmunge-absent.so.9")
    munge._library.cache_clear()
    yield
    munge._library.cache_clear()


@pytest.mark.usefixtures("no_libmunge")
def test_a_missing_libmunge_says_what_to_install() -> None:
    for call, where in (
        (munge.encode, "this host"),
        (lambda: munge.decode("MUNGE:x:"), "the service host"),
    ):
        with pytest.raises(MungeError) as info:
            call()
        assert info.value.kind is MungeFailure.MISSING
        assert f"libmunge-absent.so.9 is not installed on {where}" in str(info.value)
        assert "apt install munge libmunge2" in str(info.value)


# authenticate_munge with an injected decoder.


def decoder(uid: int) -> Callable[[str], Credential]:
    return lambda cred: Credential(uid, uid, T0, 300, b"")


def test_a_munge_caller_is_the_credentials_user_and_never_an_admin(person: str) -> None:
    uid = pwd.getpwnam(person).pw_uid
    caller = authenticate_munge("cred", policy=STRICT, decode=decoder(uid))
    assert caller == Principal(user=person, admin=False, method="munge")
    with pytest.raises(Forbidden, match="your munge credential is"):
        caller.require_user("someone-else", "properties.userAccountSettings.adminUserName")


def test_root_by_munge_follows_allow_system_users() -> None:
    with pytest.raises(Forbidden) as info:
        authenticate_munge("cred", policy=STRICT, decode=decoder(0))
    assert "'root''s, a system account (uid 0)" in info.value.message
    assert "auth.allow_system_users" in info.value.message
    assert authenticate_munge("cred", policy=LAB, decode=decoder(0)) == Principal(
        "root", admin=False, method="munge"
    )


def test_a_uid_without_a_user_here_is_refused() -> None:
    uid = next(u for u in range(3_000_000, 3_001_000) if not _has_user(u))
    with pytest.raises(Unauthorized, match=f"uid {uid} has no user on the service host"):
        authenticate_munge("cred", policy=LAB, decode=decoder(uid))


def test_munges_refusal_is_a_401_with_its_reason() -> None:
    def refuse(cred: str) -> Credential:
        raise munge.failure(17, "decode", "Replayed credential")

    with pytest.raises(Unauthorized) as info:
        authenticate_munge("cred", policy=LAB, decode=refuse)
    assert info.value.message.startswith("replayed credential: ")


def test_an_oversized_credential_is_refused_before_munged_sees_it() -> None:
    def never(cred: str) -> Credential:
        raise AssertionError("decoded")

    with pytest.raises(Unauthorized, match="more than the 4096 bai accepts"):
        authenticate_munge("M" * (MAX_MUNGE_CREDENTIAL + 1), policy=LAB, decode=never)


def _has_user(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


# The client's configuration file.


def test_client_conf_lines() -> None:
    text = (
        "# written by Ansible\n\n"
        "BAI_URL=https://bai.example:8443\n"
        "  export BAI_CA = '/etc/bai/ca with space.pem'  \n"
        "   # indented comment\n"
    )
    assert parse_conf(text, Path("c")) == {
        "BAI_URL": "https://bai.example:8443",
        "BAI_CA": "/etc/bai/ca with space.pem",
    }
    assert parse_conf('BAI_URL="x#y"\nBAI_URL=z', Path("c")) == {"BAI_URL": "z"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "BAI_URL=x\nBAI_URLL=y",
            "c:2: unknown setting 'BAI_URLL'; the file may set BAI_URL, BAI_CA",
        ),
        ("just words", "c:1: 'just words' is not KEY=VALUE"),
        ("BAI_TOKEN=bai_x", "c:1: BAI_TOKEN does not belong in the site's client file"),
    ],
)
def test_client_conf_mistakes_name_the_line(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_conf(text, Path("c"))
    assert str(info.value).startswith(words)


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "client.conf"
    conf.write_text("BAI_URL=https://file:8443\nBAI_CA=/file/ca.pem\n")
    env = {"BAI_CLIENT_CONF": str(conf), "BAI_URL": "https://env:1", "BAI_CA": ""}
    assert config.load(env) == config.ClientConfig("https://env:1", "/file/ca.pem", None, conf)
    env |= {"BAI_TOKEN": "bai_t"}
    assert config.load(env).token == "bai_t"


def test_a_missing_file_is_no_error_unless_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "DEFAULT_PATH", tmp_path / "absent.conf")
    assert config.load({"BAI_URL": "u"}) == config.ClientConfig(
        "u", None, None, tmp_path / "absent.conf"
    )
    with pytest.raises(ConfigError, match="BAI_CLIENT_CONF names .*absent.conf, which does not"):
        config.load({"BAI_CLIENT_CONF": str(tmp_path / "absent.conf")})
    with pytest.raises(ConfigError, match=r"cannot read .*\(0644\)"):
        config.load({"BAI_CLIENT_CONF": str(tmp_path)})  # a directory


# The CLI client: a new credential per request, a token when there is one.


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("BAI_URL", "BAI_TOKEN", "BAI_CA"):
        monkeypatch.delenv(key, raising=False)
    conf = tmp_path / "client.conf"
    conf.write_text("BAI_URL=http://bai\n")
    monkeypatch.setenv("BAI_CLIENT_CONF", str(conf))


def recording(cli: Client) -> list[httpx.Request]:
    """Route the client's requests to a recorder that answers 200 {}."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    cli.http = httpx.Client(
        base_url=cli.http.base_url,
        transport=httpx.MockTransport(answer),
        auth=cli.http.auth,
        headers=cli.http.headers,
    )
    return seen


@pytest.mark.usefixtures("clean_env")
def test_without_a_token_every_request_carries_a_new_credential() -> None:
    cli = Client()  # BAI_URL from the file
    seen = recording(cli)
    cli.get("/a")
    cli.get("/a")
    cli.download("http://bai/bai/files/x?sig=s")
    assert [str(r.url).split("?")[0] for r in seen] == ["http://bai/a"] * 2 + [
        "http://bai/bai/files/x"
    ]
    headers = [r.headers.get("authorization") for r in seen]
    assert headers[0] != headers[1] and headers[2] is None
    for header in headers[:2]:
        scheme, _, cred = (header or "").partition(" ")
        assert scheme == "Munge" and munge.decode(cred).uid == os.geteuid()


@pytest.mark.usefixtures("clean_env")
def test_a_token_is_sent_as_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAI_TOKEN", "bai_secret")
    cli = Client()
    seen = recording(cli)
    cli.get("/a")
    cli.download("http://bai/bai/files/x")
    assert [r.headers.get("authorization") for r in seen] == ["Bearer bai_secret", None]


@pytest.mark.usefixtures("clean_env")
def test_without_a_token_or_munge_the_cli_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def down(payload: bytes = b"") -> str:
        raise munge.failure(6, "encode", "Failed to access socket")

    monkeypatch.setattr(munge, "encode", down)
    cli = Client()
    recording(cli)
    with pytest.raises(CliError) as info:
        cli.get("/a")
    assert str(info.value) == (
        "no BAI_TOKEN, and munge failed: munged is not running on this host (Failed to access "
        "socket); start it: `systemctl start munge`. On a cluster host munged must run; "
        "elsewhere ask your operator for a token and set BAI_TOKEN"
    )


def test_without_a_url_the_cli_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BAI_URL", raising=False)
    (tmp_path / "client.conf").write_text("# nothing yet\n")
    monkeypatch.setenv("BAI_CLIENT_CONF", str(tmp_path / "client.conf"))
    with pytest.raises(CliError, match=f"BAI_URL is not set, nor in {tmp_path}/client.conf"):
        Client()


# The service: Authorization: Munge, on the real app.


async def test_the_service_takes_munge_credentials_once(tmp_path: Path, person: str) -> None:
    services = build_services(Settings(state_dir=tmp_path), CliBackend(LocalRunner()))
    app = create_app(services, run_reconciler=False)
    path = "/subscriptions/s/providers/Microsoft.BatchAI/workspaces?api-version=2018-05-01"

    async with client(app) as http:

        async def get(header: str) -> tuple[int, str]:
            response = await http.get(path, headers={"Authorization": header})
            text = error_of(response)["message"] if response.status_code >= 400 else ""
            return response.status_code, text

        cred = munge_as(person)
        assert await get(f"Munge {cred}") == (200, "")
        status, message = await get(f"munge  {cred} ")
        assert status == 401 and message.startswith("replayed credential: "), message
        status, message = await get("Munge garbage")
        assert status == 401 and message.startswith("invalid credential ("), message
        status, message = await get(f"Munge {munge.encode()}")  # root's; the settings allow none
        assert status == 403 and "auth.allow_system_users" in message
        status, message = await get("Munge ")
        assert status == 401 and "'Authorization: Munge <credential>'" in message
