"""`bai job file list/stream`: a job's output files, through listOutputFiles and signed URLs."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import httpx
import typer

from adapter.cli.client import Client, CliError
from adapter.cli.common import Experiment, JobName, Output, ResourceGroup, Workspace, job_path
from adapter.cli.output import Format, emit, prop

app = typer.Typer(help="Output files of a job.", no_args_is_help=True)

DirectoryId = Annotated[
    str,
    typer.Option(
        "-d",
        "--output-directory-id",
        help="stdouterr (the job's logs) or an outputDirectories id.",
    ),
]
SubPath = Annotated[str, typer.Option("-p", "--path", help="Directory inside the output.")]
FINAL = ("succeeded", "failed")
COLUMNS = [
    ("Name", prop("name")),
    ("Type", prop("fileType")),
    ("Size", prop("properties", "contentLength")),
    ("Modified", prop("properties", "lastModified")),
]


def _list(
    client: Client, job: str, directory_id: str, directory: str, expiry: int = 60
) -> list[dict[str, Any]]:
    params = {
        "outputdirectoryid": directory_id,
        "directory": directory,
        "linkexpiryinminutes": expiry,
    }
    return list(client.pages(f"{job}/listOutputFiles", method="POST", **params))


@app.command("list")
def list_(
    job: JobName,
    experiment: Experiment,
    workspace: Workspace,
    resource_group: ResourceGroup = "default",
    directory_id: DirectoryId = "stdouterr",
    path: SubPath = ".",
    expiry: Annotated[
        int, typer.Option("--expiry", help="Minutes the download links stay valid (5 to 600).")
    ] = 60,
    output: Output = Format.table,
) -> None:
    """List the files of a job's output directory with their download links."""
    base = job_path(resource_group, workspace, experiment, job)
    emit(_list(Client(), base, directory_id, path, expiry), COLUMNS, output)


def advance(offset: int, status: int, body: bytes) -> tuple[int, bytes]:
    """After a `Range: bytes=<offset>-` GET: the next offset and the bytes not yet printed."""
    if status == 206:
        return offset + len(body), body
    if status == 200:  # Range ignored: the whole file
        return max(offset, len(body)), body[offset:]
    return offset, b""  # 416: nothing past offset yet


class _Stream:
    """One file of a job, fetched piece by piece through its (expiring) signed URL."""

    def __init__(self, client: Client, job: str, name: str, directory_id: str, path: str) -> None:
        self.client, self.job, self.name = client, job, name
        self.directory_id, self.path = directory_id, path
        self.url = ""

    def finished(self) -> bool:
        return self.client.get(self.job).get("properties", {}).get("executionState") in FINAL

    def refresh(self) -> bool:
        """Fetch a fresh download URL; False while the file does not exist."""
        files = _list(self.client, self.job, self.directory_id, self.path)
        self.url = next(
            (
                str(f["downloadUrl"])
                for f in files
                if f.get("name") == self.name and f.get("downloadUrl")
            ),
            "",
        )
        return bool(self.url)

    def wait_for_file(self) -> None:
        announced = False
        while True:
            finished = self.finished()  # before listing: a finished job writes no more files
            if self.refresh():
                return
            if finished:
                raise CliError(
                    f'the job finished without writing "{self.name}" in '
                    f"{self.directory_id}/{self.path}; see what it wrote with `bai job file list`"
                )
            if not announced:
                print(
                    f'The file "{self.name}" not found. Waiting for the job to generate it.',
                    file=sys.stderr,
                    flush=True,
                )
                announced = True
            time.sleep(1)

    def fetch(self, offset: int) -> tuple[int, bytes]:
        """The bytes from offset on (maybe none), re-listing once when the link expired."""
        response = self._get(offset)
        if response.status_code in (401, 403, 404):  # expired link, or the file was replaced
            if not self.refresh():
                raise CliError(
                    f'"{self.name}" no longer exists in the job\'s output; it was removed '
                    "while streaming (see `bai job file list`)"
                )
            response = self._get(offset)
        if response.status_code not in (200, 206, 416):
            raise CliError(
                f'downloading "{self.name}" failed: HTTP {response.status_code} '
                f"{response.text[:200]}; try `bai job file list` to check the file"
            )
        return advance(offset, response.status_code, response.content)

    def _get(self, offset: int) -> httpx.Response:
        return self.client.download(self.url, {"Range": f"bytes={offset}-"})


@app.command()
def stream(
    job: JobName,
    experiment: Experiment,
    workspace: Workspace,
    file_name: Annotated[str, typer.Option("-f", "--file-name", help="File to stream.")],
    resource_group: ResourceGroup = "default",
    directory_id: DirectoryId = "stdouterr",
    path: SubPath = ".",
) -> None:
    """Print a job's output file as it grows, until the job finishes (like `tail -f`)."""
    base = job_path(resource_group, workspace, experiment, job)
    source = _Stream(Client(), base, file_name, directory_id, path)
    source.wait_for_file()
    out = sys.stdout.buffer
    offset = 0
    while True:
        finished = source.finished()  # before fetching: then no data is left behind
        offset, data = source.fetch(offset)
        if data:
            out.write(data)
            out.flush()
        elif finished:
            return
        time.sleep(1)
