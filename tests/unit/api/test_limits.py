"""A body above api.max_body_bytes is a 413 CloudError, from Content-Length or by counting the
streamed chunks, and the rest of such a body is never read."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.types import Message, Receive, Scope, Send

from adapter.api.app import build_services, create_app
from adapter.api.limits import BodyLimit, content_length
from adapter.backends.cli import CliBackend
from adapter.backends.runner import LocalRunner
from adapter.errors import InvalidRequest
from adapter.settings import ApiSettings, Settings
from tests.unit.api.apps import LIMITS, client, error_of, small_app

LIMIT = LIMITS.max_body_bytes
WORKSPACE = b'{"location": "eastus"}'
EASTUS = {"location": "eastus", "tags": {}}  # what /things answers for WORKSPACE
TOO_LARGE = {
    "code": "RequestEntityTooLarge",
    "message": (
        f"the request body is larger than {LIMIT} bytes, the most bai accepts; send a smaller "
        "body (fewer or shorter environment variables, secrets or command lines), or ask the "
        "operator to raise api.max_body_bytes"
    ),
    "target": "body",
}


def padded(size: int) -> bytes:
    """A valid workspace body of exactly `size` bytes."""
    return WORKSPACE + b" " * (size - len(WORKSPACE))


async def chunks(count: int, size: int, pulled: list[int]) -> AsyncIterator[bytes]:
    for _ in range(count):
        pulled.append(size)
        yield b" " * size


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PUT", "/things", padded(LIMIT), 200),
        ("PUT", "/things", padded(LIMIT + 1), 413),
        ("PUT", "/things", padded(100 * LIMIT), 413),
        ("GET", "/nothing", b"x" * LIMIT, 200),  # a route that ignores its body
        ("GET", "/nothing", b"x" * (LIMIT + 1), 413),  # GETs are bounded too
    ],
)
async def test_content_length_decides(method: str, path: str, body: bytes, status: int) -> None:
    async with client(small_app()) as http:
        response = await http.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == status, response.text
    if status == 413:
        assert error_of(response) == TOO_LARGE
        assert response.headers["connection"] == "close"
    else:
        assert response.json() == (EASTUS if path == "/things" else {})


@pytest.mark.parametrize(
    ("count", "size", "status", "read"),
    [
        (3, 1024, 200, 3),  # 4 KiB in all: exactly the limit
        (99, 1024, 413, 4),  # reading stops at the 4th chunk after the first, past 4 KiB
        (1, LIMIT, 413, 1),
    ],
)
async def test_streamed_body_is_counted(count: int, size: int, status: int, read: int) -> None:
    pulled: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        yield padded(1024)
        async for chunk in chunks(count, size, pulled):
            yield chunk

    async with client(small_app()) as http:
        response = await http.put("/things", content=body())  # chunked: no Content-Length
    assert "content-length" not in response.request.headers
    assert response.status_code == status, response.text
    assert len(pulled) == read
    if status == 413:
        assert error_of(response) == TOO_LARGE
        assert response.headers["connection"] == "close"  # the rest of the body is unread
    else:
        assert response.json() == EASTUS


async def test_apps_without_bai_error_handlers_get_the_413_too() -> None:
    """An app reading its body through the bounded receive, with no handler for the error."""
    read: list[int] = []

    async def reader(scope: Scope, receive: Receive, send: Send) -> None:
        while (message := await receive())["more_body"]:
            read.append(len(message["body"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with client(BodyLimit(reader, LIMITS)) as http:
        response = await http.post("/", content=chunks(10, 1024, []))
    assert response.status_code == 413
    assert error_of(response) == TOO_LARGE
    assert response.headers["connection"] == "close"
    assert read == [1024] * 4  # the 5th chunk, past the limit, never reached the app


async def test_lifespan_and_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def nothing() -> Message:
        return {"type": "lifespan.startup"}

    async def drop(message: Message) -> None:
        pass

    await BodyLimit(app, LIMITS)({"type": "lifespan"}, nothing, drop)
    assert seen == ["lifespan"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([b"0"], 0),
        ([b"4096"], 4096),
        ([b"12", b"12"], 12),  # repeated, same value
        ([b" 12 "], 12),
        ([b"12", b"13"], "400"),
        ([b"-1"], "400"),
        ([b"1e3"], "400"),
        ([b""], "400"),
        ([b"\xd9\xa1"], "400"),  # an Arabic-Indic digit, which int() would take as text
        ([b"9" * 40], "400"),
    ],
)
def test_content_length_values(values: list[bytes], expected: int | str | None) -> None:
    if expected == "400":
        with pytest.raises(InvalidRequest) as info:
            content_length(values)
        assert info.value.target == "Content-Length"
        assert info.value.message.startswith("the Content-Length header is not one number")
    else:
        assert content_length(values) == expected


async def test_a_bad_content_length_is_a_400() -> None:
    async def never(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the app was called")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        raise AssertionError("the body was read")

    scope = {"type": "http", "method": "PUT", "path": "/", "headers": [(b"content-length", b"x")]}
    await BodyLimit(never, LIMITS)(scope, receive, send)
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"]) == {
        "error": {
            "code": "BadRequest",
            "message": "the Content-Length header is not one number of bytes; send the body's "
            "length in bytes, or send it chunked",
            "target": "Content-Length",
        }
    }


@pytest.fixture
def server() -> Iterator[int]:
    """The small app served by a real uvicorn on a free local port."""
    config = uvicorn.Config(
        small_app(), host="127.0.0.1", port=0, lifespan="off", ws="none", log_level="error"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run)
    thread.start()
    try:
        while not srv.started:
            assert thread.is_alive(), "uvicorn did not start"
            threading.Event().wait(0.01)
        yield srv.servers[0].sockets[0].getsockname()[1]
    finally:
        srv.should_exit = True
        thread.join()


def test_a_real_server_answers_413_before_the_body_ends(server: int) -> None:
    """Over a socket: a chunked body past the limit, never finished, still gets its 413, and
    the server closes the connection rather than read on."""
    with socket.create_connection(("127.0.0.1", server), timeout=10) as conn:
        conn.sendall(
            b"PUT /things HTTP/1.1\r\nHost: bai\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(5):  # 5 KiB: past the 4 KiB limit; the closing 0-chunk is never sent
            conn.sendall(b"400\r\n" + b" " * 1024 + b"\r\n")
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"connection: close" in head.lower()
    assert json.loads(body) == {"error": TOO_LARGE}


async def test_create_app_bounds_bodies_with_the_settings(tmp_path: Path) -> None:
    """The wired app: the settings' limit, refused inside RequestContext (request id echoed)."""
    settings = Settings(state_dir=tmp_path, api=ApiSettings(max_body_bytes=2048))
    app = create_app(build_services(settings, CliBackend(LocalRunner())), run_reconciler=False)
    path = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/w"
    async with client(app) as http:
        big, fits = [
            await http.put(
                path,
                params={"api-version": "2018-05-01"},
                content=b" " * size,
                headers={"x-ms-client-request-id": "big-one"},
            )
            for size in (2049, 2048)
        ]
    assert big.status_code == 413
    assert big.headers["x-ms-request-id"] == "big-one"
    assert error_of(big) == {**TOO_LARGE, "message": TOO_LARGE["message"].replace("4096", "2048")}
    # Within the limit, the request goes on to the route (refused there for want of a token).
    assert fits.status_code == 401
    assert error_of(fits)["code"] == "AuthenticationFailed"
