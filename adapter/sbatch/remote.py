"""The bai service as `bai sbatch` reaches it: one HTTPS connection, standard library only.

BAI_URL and BAI_CA come from the environment or /etc/bai/client.conf (adapter.cli.config).
With BAI_TOKEN set the requests carry it; without, each carries a fresh munge credential, which
proves the Unix user to the service as it does to Slurm.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from collections.abc import Mapping
from typing import Any


class ServiceError(Exception):
    """What to print (sbatch's way: `sbatch: error: ...` lines)."""

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class Service:
    def __init__(self, url: str, ca: str | None, token: str | None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ServiceError(f"sbatch: error: BAI_URL {url!r} is not an http(s) URL")
        self.base = parts.path.rstrip("/")
        self.token = token
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port or 443, context=context, timeout=60
            )
        else:
            self.conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
        self.where = f"{parts.scheme}://{parts.netloc}"

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

    def post(self, path: str, body: Any) -> dict[str, Any]:
        data = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": self._auth(),
        }
        try:
            self.conn.request("POST", self.base + path, body=data, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            raise ServiceError(
                f"sbatch: error: the bai service at {self.where} did not answer ({exc}); "
                "check BAI_URL, or ask your operator whether bai is running"
            ) from None
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            doc = {}
        if response.status >= 400:
            message = (doc.get("error") or {}).get("message") if isinstance(doc, dict) else None
            text = message or f"the bai service answered {response.status} {response.reason}"
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
