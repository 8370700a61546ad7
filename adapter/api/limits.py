"""The request body size bound: a body above `api.max_body_bytes` is refused with 413."""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapter.api.errors import cloud_error
from adapter.errors import InvalidRequest, RequestError
from adapter.settings import ApiSettings

# Where BodyLimit leaves the ApiSettings for parse_body (an ASGI scope extension key).
SCOPE_KEY = "bai.api_limits"
_DECIMAL = re.compile(rb"[0-9]{1,19}")
_CLOSE = (b"connection", b"close")
# A body declared larger than the limit but no larger than this is read and dropped before the
# 413 (sbatch's own script limit is 4 MB); a larger one is refused at once, the rest unread.
DRAIN_MAX = 16 * 1024 * 1024


class PayloadTooLarge(RequestError):
    """The request body is larger than the service accepts (413)."""

    status = 413
    code = "RequestEntityTooLarge"


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than {limit} bytes, the most bai accepts; send a smaller "
        "body (fewer or shorter environment variables, secrets or command lines), or ask the "
        "operator to raise api.max_body_bytes",
        target="body",
    )


def limits_of(scope: Scope) -> ApiSettings:
    """The limits BodyLimit put in the scope; the defaults in an app without it."""
    limits = scope.get(SCOPE_KEY)
    return limits if isinstance(limits, ApiSettings) else ApiSettings()


class BodyLimit:
    """Refuses a request body above `limits.max_body_bytes` with a 413 CloudError.

    Decided from Content-Length when the client sends one, before anything is read; otherwise
    (chunked bodies) the chunks are counted as the app reads them, and reading stops at the
    first chunk past the limit. The body is never buffered here. Every method is bounded, GETs
    included; a route that never reads its body leaves the rest unread.

    Plain ASGI, like RequestContext: no extra task per request.
    """

    def __init__(self, app: ASGIApp, limits: ApiSettings) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = self.limits
        limit = self.limits.max_body_bytes
        try:
            declared = content_length(v for k, v in scope["headers"] if k == b"content-length")
        except InvalidRequest as exc:
            await _refuse(exc, scope, receive, send)
            return
        if declared is not None and declared > limit:
            if declared <= DRAIN_MAX:  # read and drop it: a client still sending sees the 413
                await _drain(receive)
            await _refuse(too_large(limit), scope, receive, send)
            return
        received = 0
        started = exceeded = False

        async def bounded_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise too_large(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if exceeded:  # the app's own answer to too_large: the rest stays unread
                    message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            await send(message)

        try:
            await self.app(scope, bounded_receive, watched_send)
        except PayloadTooLarge as exc:
            # An app with errors.install answers this itself; this covers any other.
            if started:
                raise
            await _refuse(exc, scope, receive, send)


def content_length(values: Iterable[bytes]) -> int | None:
    """The Content-Length of these header values (None when absent); a value that is not a
    number of bytes, or two that differ, is a 400."""
    found: set[bytes] = {v.strip() for v in values}
    if not found:
        return None
    if len(found) > 1 or _DECIMAL.fullmatch(next(iter(found))) is None:
        raise InvalidRequest(
            "the Content-Length header is not one number of bytes; send the body's length in "
            "bytes, or send it chunked",
            target="Content-Length",
        )
    return int(next(iter(found)))


async def _drain(receive: Receive) -> None:
    """Read a body to its end, keeping none of it. Clients (requests, httpx, the SDK) send a
    whole body before they read the answer; a 413 sent while they still send reaches them as
    a broken connection instead."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _refuse(exc: RequestError, scope: Scope, receive: Receive, send: Send) -> None:
    # The rest of the body stays unread, so the connection cannot carry another request.
    response = cloud_error(exc.status, exc.code, exc.message, exc.target)
    response.raw_headers.append(_CLOSE)
    await response(scope, receive, send)
