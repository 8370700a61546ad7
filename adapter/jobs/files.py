"""A job's output files: listing, and signed expiring download URLs (Batch AI's SAS links).

Paths are confined: a listing or a download resolves symlinks and must stay inside the job's
own directory (its stdouterr directory or one of its output directories).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote as urlquote

from adapter.errors import InvalidRequest, NotFound
from adapter.jobs.volumes import Volume, adapter_view
from adapter.store import Job

STDOUTERR = "stdouterr"


@dataclass(frozen=True)
class FileEntry:
    name: str
    is_dir: bool
    size: int
    modified: datetime


class UrlSigner:
    """HMAC-signed, expiring URLs; the key lives in the state directory (0600)."""

    def __init__(self, key_file: Path) -> None:
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.touch(mode=0o600)
            key_file.write_bytes(secrets.token_bytes(32))
        self._key = key_file.read_bytes()

    def sign(self, path: str, expires: int) -> str:
        return hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def verify(self, path: str, expires: int, signature: str, now: float | None = None) -> bool:
        if expires < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self.sign(path, expires), signature)


def directory_of(job: Job, directory_id: str) -> str:
    """The node path of `stdouterr` or of an output directory id."""
    layout = job.info["layout"]
    if directory_id.lower() == STDOUTERR:
        return str(layout["stdouterr"])
    outputs: dict[str, str] = layout["outputs"]
    found = outputs.get(directory_id.upper())
    if found is None:
        known = ", ".join([STDOUTERR, *sorted(outputs)])
        raise InvalidRequest(
            f"outputdirectoryid {directory_id!r} is not one of this job's: {known}",
            target="outputdirectoryid",
        )
    return found


def local_root(job: Job, directory_id: str) -> Path:
    """Where the bai host reads that directory."""
    volumes = [Volume(**{**v, "remote": None}) for v in job.info["volumes"]]
    node_path = directory_of(job, directory_id)
    seen = adapter_view(node_path, volumes)
    if seen is None:
        raise InvalidRequest(
            f"the {directory_id} directory is on a volume bai cannot read ({node_path}); the "
            "operator can set adapter_path on its storage account",
            target="outputdirectoryid",
        )
    return Path(seen)


def confined(root: Path, relative: str) -> Path:
    """`root/relative`, refusing anything that leaves `root` (.., absolute, symlinks out)."""
    rel = PurePosixPath(relative or ".")
    if rel.is_absolute() or ".." in rel.parts:
        raise InvalidRequest(
            f"directory {relative!r} must be a path inside the job's directory", target="directory"
        )
    base = root.resolve()
    target = (root / rel).resolve()
    if target != base and base not in target.parents:
        raise InvalidRequest(f"{relative!r} leads outside the job's directory", target="directory")
    return target


def list_dir(root: Path, relative: str) -> list[FileEntry]:
    target = confined(root, relative)
    if not target.is_dir():
        if not root.exists():
            return []  # the job has not written anything there yet
        raise NotFound(f"directory {relative!r} does not exist", target="directory")
    entries = []
    with os.scandir(target) as it:
        for entry in it:
            st = entry.stat()
            entries.append(
                FileEntry(
                    entry.name, entry.is_dir(), st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)
                )
            )
    return sorted(entries, key=lambda e: (not e.is_dir, e.name))


def file_items(
    entries: list[FileEntry],
    *,
    base: str,
    job: Job,
    directory_id: str,
    relative: str,
    signer: UrlSigner,
    expiry_minutes: int,
) -> list[dict[str, Any]]:
    expires = int(time.time()) + 60 * expiry_minutes
    items = []
    for e in entries:
        item: dict[str, Any] = {
            "name": e.name,
            "fileType": "directory" if e.is_dir else "file",
            "properties": {"lastModified": e.modified.strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
        }
        if not e.is_dir:
            path = str(PurePosixPath(job.uid) / directory_id / relative / e.name)
            path = str(PurePosixPath(path))  # drops "./"
            item["downloadUrl"] = (
                f"{base}/bai/files/{urlquote(path)}?se={expires}&sig={signer.sign(path, expires)}"
            )
            item["properties"]["contentLength"] = e.size
        items.append(item)
    return items
