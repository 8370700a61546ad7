"""The CLI's HTTP client: a token or munge, api-version, paging, long-running operations, errors."""

from __future__ import annotations

import ssl
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from adapter import munge
from adapter.cli import config
from adapter.errors import BaiError

API_VERSION = "2018-05-01"
DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


class CliError(BaiError):
    """An error the CLI prints as one line."""


@dataclass
class Scope:
    subscription: str
    resource_group: str

    def workspace(self, ws: str) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.BatchAI/workspaces/{ws}"
        )


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer <token>` on every request."""

    def __init__(self, token: str) -> None:
        self.header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.header
        yield request


class MungeAuth(httpx.Auth):
    """`Authorization: Munge <credential>`, a new credential for every request: the service's
    munged refuses one it has seen."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        try:
            cred = munge.encode()
        except munge.MungeError as exc:
            raise CliError(
                f"no BAI_TOKEN, and munge failed: {exc}. On a cluster host munged must run; "
                "elsewhere ask your operator for a token and set BAI_TOKEN"
            ) from None
        request.headers["Authorization"] = f"Munge {cred}"
        yield request


class Client:
    """Talks to the bai service at BAI_URL (or /etc/bai/client.conf's), with the token in
    BAI_TOKEN or, without one, a munge credential per request."""

    def __init__(
        self, url: str | None = None, token: str | None = None, ca: str | None = None
    ) -> None:
        settings = config.load()
        url = url or settings.url
        token = token or settings.token
        if not url:
            raise CliError(
                f"BAI_URL is not set, nor in {settings.path}; on the dev machine run "
                "`. .dev/env` (written by make dev), elsewhere ask your operator for it"
            )
        ca = ca or settings.ca
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
        self.http = httpx.Client(
            base_url=url.rstrip("/"),
            verify=verify,
            timeout=60.0,
            auth=BearerAuth(token) if token else MungeAuth(),
            headers={"Accept": "application/json"},
        )

    def request(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        query = {"api-version": API_VERSION, **(params or {})}
        try:
            response = self.http.request(method, path, params=query, json=body)
        except httpx.ConnectError as exc:
            raise CliError(
                f"cannot reach {self.http.base_url}: {exc}; is `bai serve` running?"
            ) from None
        except httpx.HTTPError as exc:
            raise CliError(f"{method} {path} failed: {exc}") from None
        if response.status_code >= 400:
            raise CliError(_error_text(response))
        return response

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.request("GET", path, params=params).json()
        return data

    def put(self, path: str, body: Any = None) -> dict[str, Any]:
        response = self.request("PUT", path, body)
        return self._finish(response, path)

    def patch(self, path: str, body: Any) -> dict[str, Any]:
        data: dict[str, Any] = self.request("PATCH", path, body).json()
        return data

    def post(self, path: str, **params: Any) -> httpx.Response:
        return self.request("POST", path, params=params)

    def post_and_wait(
        self, path: str, *, wait: bool = True, progress: bool = True, **params: Any
    ) -> httpx.Response:
        """POST an action; a 202 is a long-running operation, waited for unless wait=False."""
        response = self.post(path, **params)
        if response.status_code == 202 and wait:
            self._wait(response, progress)
        return response

    def delete(self, path: str, *, wait: bool = True, progress: bool = True) -> None:
        response = self.request("DELETE", path)
        if response.status_code == 202 and wait:
            self._wait(response, progress)

    def download(self, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """GET a pre-signed download URL: same TLS settings, no token or credential, any
        status."""
        request = self.http.build_request("GET", url, headers={"Accept": "*/*", **(headers or {})})
        try:
            return self.http.send(request, auth=None)
        except httpx.HTTPError as exc:
            raise CliError(f"downloading {url.split('?')[0]} failed: {exc}") from None

    def pages(self, path: str, method: str = "GET", **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paged list, following nextLink."""
        data = self.request(method, path, params=params).json()
        while True:
            yield from data.get("value", [])
            link = data.get("nextLink")
            if not link:
                return
            data = self._get_url(link)

    def _get_url(self, url: str) -> dict[str, Any]:
        response = self.http.get(url)
        if response.status_code >= 400:
            raise CliError(_error_text(response))
        data: dict[str, Any] = response.json()
        return data

    def _finish(self, response: httpx.Response, path: str) -> dict[str, Any]:
        if response.status_code == 202:
            self._wait(response, progress=True)
            return self.get(path)
        data: dict[str, Any] = response.json()
        return data

    def _wait(self, response: httpx.Response, progress: bool) -> None:
        status_url = response.headers.get("Azure-AsyncOperation")
        if not status_url:
            return
        started = time.monotonic()
        while True:
            status = self._get_url(status_url)
            if status.get("status") != "InProgress":
                break
            if progress:
                print(f"\r... waiting ({time.monotonic() - started:.0f} s)", end="", flush=True)
            time.sleep(1)
        if progress:
            print("\r", end="", flush=True)
        if status.get("status") == "Failed":
            error = status.get("error") or {}
            raise CliError(
                f"{error.get('code', 'Failed')}: {error.get('message', 'operation failed')}"
            )


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    text = f"{error.get('code', response.status_code)}: {error.get('message', '')}"
    details = [d.get("message", "") for d in error.get("details") or []][1:]
    return text + "".join(f"\n  {d}" for d in details)
