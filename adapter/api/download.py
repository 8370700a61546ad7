"""A download served from a descriptor the boundary opened, with single `Range` requests.

Serving from the descriptor, not a path, means the file served is the file that was checked:
a user cannot swap it for a link between the check and the read.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator

from fastapi.responses import Response, StreamingResponse

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) of a `bytes=a-b` / `bytes=a-` / `bytes=-n` header; None: the whole file.
    ValueError when the range cannot be served (416)."""
    m = _RANGE.match((header or "").strip())
    if m is None or m.group(1) == m.group(2) == "":
        return None  # absent or not a single range: the whole file, as RFC 9110 allows
    first, last = m.group(1), m.group(2)
    if first == "":
        n = int(last)
        if n == 0:
            raise ValueError("empty suffix range")
        return max(size - n, 0), size - 1
    start = int(first)
    if start >= size:
        raise ValueError("range starts past the end")
    return start, min(int(last), size - 1) if last else size - 1


async def _chunks(fd: int, start: int, length: int) -> AsyncIterator[bytes]:
    try:
        offset, left = start, length
        while left > 0:
            data = await asyncio.to_thread(os.pread, fd, min(CHUNK, left), offset)
            if not data:
                break  # the file shrank while it was served
            offset, left = offset + len(data), left - len(data)
            yield data
    finally:
        os.close(fd)


def fd_response(fd: int, size: int, range_header: str | None) -> Response:
    """The file behind `fd` (which this takes over and closes), or the part asked for."""
    try:
        wanted = byte_range(range_header, size)
    except ValueError:
        os.close(fd)
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    headers = {"Accept-Ranges": "bytes"}
    if wanted is None:
        start, length, status = 0, size, 200
    else:
        start, length, status = wanted[0], wanted[1] - wanted[0] + 1, 206
        headers["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{size}"
    headers["Content-Length"] = str(length)
    return StreamingResponse(
        _chunks(fd, start, length),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )
