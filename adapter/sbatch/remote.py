"""The bai service as `bai sbatch` reaches it: one HTTPS connection, standard library only.

BAI_URL and BAI_CA come from the environment or /etc/bai/client.conf (adapter.cli.config).
With BAI_TOKEN set the requests carry it; without, each carries a fresh munge credential, which
proves the Unix user to the service as it does to Slurm.
"""

from __future__ import annotations

import json
import socket
import urllib.parse
from collections.abc import Mapping
from typing import Any


class ServiceError(Exception):
    """What to print (sbatch's way: `sbatch: error: ...` lines)."""

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class Service:
    """HTTP/1.1 over one TLS connection, by hand: http.client (with the email package it
    brings) would cost more to import than the requests take."""

    def __init__(self, url: str, ca: str | None, token: str | None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ServiceError(f"sbatch: error: BAI_URL {url!r} is not an http(s) URL")
        self.base = parts.path.rstrip("/")
        self.token = token
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = parts.scheme == "https"
        self.ca = ca
        self.where = f"{parts.scheme}://{parts.netloc}"
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=60)
        if self.tls:
            import ssl

            context = ssl.create_default_context(cafile=self.ca or None)
            sock = context.wrap_socket(sock, server_hostname=self.host)
        return sock

    def _auth(self) -> str:
        if self.token:
            return f"Bearer {self.token}"
        from adapter import munge

        try:
            return f"Munge {munge.encode()}"
        except munge.MungeError as exc:
            raise ServiceError(
                f"sbatch: error: no BAI_TOKEN is set and munge failed: {exc}",
                "sbatch: error: on a cluster host start munged; elsewhere ask your operator "
                "for a token (BAI_TOKEN)",
            ) from None

    def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = self._connect()
        self.sock.sendall(request)
        head = self._until(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._until(b"\r\n").split(b";")[0], 16)
                body += self._take(size + 2)[:size]
                if size == 0:
                    break
        else:
            body = self._take(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def _until(self, mark: bytes) -> bytes:
        while mark not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(mark)
        return head

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise OSError("the connection closed before the answer was whole")
        self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def post(self, path: str, body: Any) -> dict[str, Any]:
        data = json.dumps(body).encode()
        request = (
            f"POST {self.base}{path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: {self._auth()}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode() + data
        try:
            status, raw = self._exchange(request)
        except (OSError, ValueError, IndexError) as exc:
            self.close()
            raise ServiceError(
                f"sbatch: error: the bai service at {self.where} did not answer ({exc}); "
                "check BAI_URL, or ask your operator whether bai is running"
            ) from None
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            doc = {}
        if status >= 400:
            message = (doc.get("error") or {}).get("message") if isinstance(doc, dict) else None
            text = message or f"the bai service answered {status}"
            raise ServiceError(
                *(
                    line if line.startswith("sbatch: ") else f"sbatch: error: {line}"
                    for line in text.splitlines()
                )
            )
        if not isinstance(doc, dict):
            raise ServiceError("sbatch: error: the bai service sent an answer bai cannot read")
        return doc


def connect(environ: Mapping[str, str]) -> Service:
    from adapter.cli import config

    try:
        settings = config.load(environ)
    except config.ConfigError as exc:
        raise ServiceError(f"sbatch: error: {exc}") from None
    if not settings.url:
        raise ServiceError(
            "sbatch: error: bai does not know where its service is: BAI_URL is not set and "
            f"{settings.path} does not name it; ask your operator"
        )
    return Service(settings.url, settings.ca, settings.token)
