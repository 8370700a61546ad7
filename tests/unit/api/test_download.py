"""The signed download route: any malformed `se` or `sig` is the 401 of a bad link, never a
500; a well-formed link of ours gets past the check."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from adapter.api.app import build_services, create_app
from adapter.api.deps import Services
from adapter.backends.cli import CliBackend
from adapter.backends.runner import LocalRunner
from adapter.settings import Settings
from tests.unit.api.apps import client, error_of

FILE = "0123abcd/stdouterr/stdout.txt"
BAD_LINK = {
    "code": "AuthenticationFailed",
    "message": "the download link is not valid or has expired; list the files again",
}


@pytest.fixture
def services(tmp_path: Path) -> Services:
    return build_services(Settings(state_dir=tmp_path), CliBackend(LocalRunner()))


@pytest.fixture
async def http(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with client(create_app(services, run_reconciler=False)) as c:
        yield c


def soon() -> int:
    return int(time.time()) + 600


@pytest.mark.parametrize(
    ("se", "sig"),
    [
        (None, None),
        ("", ""),
        ("soon", "é" * 64),  # hmac.compare_digest raises on non-ASCII text
        ("soon", "\x00" * 64),
        ("soon", "f" * 10_000),
        ("soon", "GOOD"),
        ("9" * 5000, "good"),  # int() refuses past 4300 digits
        ("99999999999999999999", "good"),
        ("-1", "good"),
        ("١٢٣", "good"),  # Arabic-Indic digits, which int() would take
        (" soon", "good"),  # "good": the right signature for `soon`
        ("soon_", "good"),
        ("soon\n", "good"),
    ],
)
async def test_malformed_links_are_a_401(
    http: httpx.AsyncClient, services: Services, se: str | None, sig: str | None
) -> None:
    expires = soon()
    good = services.signer.sign(FILE, expires)
    params: dict[str, str] = {}
    if se is not None:
        params["se"] = se.replace("soon", str(expires))
    if sig is not None:
        params["sig"] = sig.replace("GOOD", good.upper()).replace("good", good)
    response = await http.get(f"/bai/files/{FILE}", params=params)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert error_of(response) == BAD_LINK


@pytest.mark.parametrize(
    ("url", "path"),
    [
        (FILE, FILE),
        ("ünï/stdouterr/日本.txt", "ünï/stdouterr/日本.txt"),
        ("x/%00/a b", "x/\x00/a b"),
    ],
)
async def test_a_link_of_ours_passes_the_check(
    http: httpx.AsyncClient, services: Services, url: str, path: str
) -> None:
    """The signature holds, so the route goes on: to a 404, as no job has this uid."""
    expires = soon()
    response = await http.get(
        f"/bai/files/{url}", params={"se": expires, "sig": services.signer.sign(path, expires)}
    )
    assert response.status_code == 404, response.text
    assert error_of(response) == {
        "code": "ResourceNotFound",
        "message": "the job of this link no longer exists",
    }


def test_verify_refuses_a_path_that_cannot_be_encoded(services: Services) -> None:
    expires = soon()
    sig = services.signer.sign("uid/a", expires)
    assert services.signer.verify("uid/a", expires, sig)
    assert not services.signer.verify("uid/\ud800", expires, sig)
