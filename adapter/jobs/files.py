"""A job's output files: listing, and signed expiring download URLs (Batch AI's SAS links).

Every access goes through `adapter.boundary`: the job's own directory (the one named by its
uuid) and everything below it must belong to the job's user, links are never followed, and only
regular files are listed or served.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote as urlquote

from adapter import boundary
from adapter.errors import InvalidRequest, NotFound
from adapter.jobs.signing import UrlSigner
from adapter.jobs.spool import Owner, volumes_of
from adapter.jobs.volumes import adapter_view
from adapter.records import Job
from adapter.sbatch.patterns import default_output, expand

STDOUTERR = "stdouterr"
MAX_ENTRIES = 100_000  # one listing; deeper trees are listed directory by directory


@dataclass(frozen=True)
class FileEntry:
    name: str
    is_dir: bool
    size: int
    modified: datetime


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


def job_directory(job: Job, directory_id: str) -> tuple[str, str]:
    """Where the bai host reads that directory: the job's own directory (…/<segment>, the
    boundary's zone) and the path below it."""
    node_path = directory_of(job, directory_id)
    seen = adapter_view(node_path, volumes_of(job))
    if seen is None:
        raise InvalidRequest(
            f"the {directory_id} directory is on a volume bai cannot read ({node_path}); the "
            "operator can set adapter_path on its storage account",
            target="outputdirectoryid",
        )
    segment = "/" + job.info["segment"]
    at = seen.find(segment + "/")
    if at < 0:  # every job directory is laid out below <prefix>/<segment>
        raise InvalidRequest(f"{node_path} is not below the job's directory", target="directory")
    top = seen[: at + len(segment)]
    return top, seen[len(top) + 1 :]


def owner_uid(job: Job) -> int:
    try:
        return Owner.of(job.owner).uid
    except KeyError:
        raise NotFound(f"the job's user {job.owner!r} no longer exists on this host") from None


def _below(base: str, relative: str, field: str) -> str:
    try:
        parts = boundary.relative_parts(relative or ".")
    except boundary.UnsafePath as exc:
        raise InvalidRequest(
            f"{field} {relative!r} {exc.reason}; give a path inside the job's directory",
            target=field,
        ) from None
    return "/".join([base, *parts]).strip("/")


def sbatch_files(job: Job) -> dict[str, str]:
    """A `bai sbatch` job's standard output and error files (each task's, for an array), as
    Slurm names them from -o/-e: name (relative to the job's working directory where it is
    below it) -> path. Only once Slurm has the job: the names hold its id."""
    sb = job.info["sbatch"]
    if job.slurm_id is None:
        return {}
    workdir = sb["workdir"].rstrip("/") or "/"
    array = bool(sb.get("array"))
    runs: list[tuple[int, int | None, str]] = (
        [
            (t["jobId"], int(i), t.get("host") or "")
            for i, t in sb["tasks"].items()
            if t.get("jobId")
        ]
        if array
        else [(job.slurm_id, None, sb.get("host") or "")]
    )
    found: dict[str, str] = {}
    for job_id, task, node in sorted(runs, key=lambda r: (r[1] or 0, r[0])):
        patterns = [sb.get("output") or default_output(array), sb.get("error")]
        for pattern in patterns:
            if not pattern:
                continue
            path = expand(
                pattern,
                job_id=job_id,
                array_job_id=job.slurm_id if array else 0,
                array_task_id=task,
                user=job.owner,
                job_name=sb.get("jobName") or "sbatch",
                node=node,
            )
            path = path if path.startswith("/") else f"{workdir}/{path}"
            name = path[len(workdir) + 1 :] if path.startswith(workdir + "/") else path
            found.setdefault(name.lstrip("/"), path)
    return found


def _sbatch_file(job: Job, name: str) -> tuple[str, str]:
    path = sbatch_files(job).get(name)
    if path is None:
        raise NotFound(f"{name} is not one of the job's output files")
    parent, _, base = path.rpartition("/")
    return parent or "/", base


def _sbatch_list(job: Job, directory_id: str, relative: str) -> list[FileEntry]:
    if directory_id.lower() != STDOUTERR or relative.strip("./"):
        raise InvalidRequest(
            "a bai sbatch job has one directory, stdouterr: its -o/-e files",
            target="outputdirectoryid",
        )
    uid = owner_uid(job)
    out = []
    for name in sbatch_files(job):
        try:
            fd, st = _open_sbatch(job, name, uid)
        except (NotFound, InvalidRequest):
            continue  # not written yet, or not one bai serves (see docs/sbatch.md)
        os.close(fd)
        out.append(FileEntry(name, False, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)))
    return out


def _open_sbatch(job: Job, name: str, uid: int) -> tuple[int, os.stat_result]:
    """The file through the boundary: its directory and the file must be the job user's."""
    parent, base = _sbatch_file(job, name)
    try:
        with boundary.zone(parent, uid) as dir_fd:
            return boundary.open_file(dir_fd, base, f"{parent}/{base}", uid)
    except FileNotFoundError:
        raise NotFound(f"{name} does not exist") from None
    except boundary.UnsafePath as exc:
        raise NotFound(f"{name} is not one of the job's files: {exc.reason}") from None


def list_dir(job: Job, directory_id: str, relative: str) -> list[FileEntry]:
    if job.info.get("kind") == "sbatch":
        return _sbatch_list(job, directory_id, relative)
    top, base = job_directory(job, directory_id)
    uid = owner_uid(job)
    try:
        with boundary.zone(top, uid, _below(base, relative, "directory")) as fd:
            found = boundary.list_entries(fd, uid, MAX_ENTRIES)
    except FileNotFoundError:
        if relative.strip("./"):
            raise NotFound(f"directory {relative!r} does not exist", target="directory") from None
        return []  # the job has not written anything there yet
    except boundary.UnsafePath as exc:
        raise InvalidRequest(
            f"{directory_id}/{relative}: {exc.reason}", target="directory"
        ) from None
    entries = [
        FileEntry(e.name, e.is_dir, e.size, datetime.fromtimestamp(e.mtime, UTC)) for e in found
    ]
    return sorted(entries, key=lambda e: (not e.is_dir, e.name))


def open_download(job: Job, directory_id: str, relative: str) -> tuple[int, int]:
    """An open descriptor of one of the job's files and its size (the caller closes it)."""
    if job.info.get("kind") == "sbatch":
        fd, st = _open_sbatch(job, relative, owner_uid(job))
        return fd, st.st_size
    top, base = job_directory(job, directory_id)
    uid = owner_uid(job)
    *dirs, name = _below(base, relative, "path").split("/")
    try:
        with boundary.zone(top, uid, "/".join(dirs)) as dir_fd:
            fd, st = boundary.open_file(dir_fd, name, relative, uid)
    except FileNotFoundError:
        raise NotFound(f"{relative} does not exist") from None
    except boundary.UnsafePath as exc:
        raise NotFound(f"{relative} is not one of the job's files: {exc.reason}") from None
    return fd, st.st_size


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
