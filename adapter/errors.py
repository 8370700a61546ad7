"""The one error tree of bai: every failure the service reports derives from `BaiError`."""

from __future__ import annotations

from collections.abc import Sequence


class BaiError(Exception):
    """Root of every error bai raises on purpose."""


class BackendError(BaiError):
    """A Slurm command failed or said something bai cannot read.

    The message alone is enough to debug: the command, its exit code and what it printed.
    """

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stderr: str = "",
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        detail = []
        if self.argv:
            detail.append(f"command: {' '.join(self.argv)}")
        if returncode is not None:
            detail.append(f"exit code {returncode}")
        if stderr.strip():
            detail.append(f"stderr: {stderr.strip()}")
        super().__init__(f"{message} ({'; '.join(detail)})" if detail else message)
        self.reason = message


class BackendUnavailable(BackendError):
    """Slurm cannot be reached right now (controller or munge down, command missing, timeout)."""


class StoreError(BaiError):
    """The store cannot be used as it is (too new, damaged, missing): the message says why and
    what to do."""


class RequestError(BaiError):
    """A request bai refuses; carries the HTTP status and ARM error code it maps to."""

    status = 400
    code = "BadRequest"

    def __init__(
        self, message: str, *, target: str | None = None, details: Sequence[RequestError] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.target = target
        self.details = list(details)


class InvalidRequest(RequestError):
    """The request is malformed or asks for something impossible (400)."""


class NotFound(RequestError):
    """The named resource does not exist (404)."""

    status = 404
    code = "ResourceNotFound"


class Conflict(RequestError):
    """The request contradicts the current state of a resource (409)."""

    status = 409
    code = "Conflict"


class InsufficientCapacity(Conflict):
    """Not enough free nodes of the type for a dedicated cluster (409)."""

    code = "InsufficientCapacity"


class QuotaExceeded(Conflict):
    """The cluster would take its owner past an operator-set GPU quota (409, as Azure Compute
    answers a core quota overrun: the request is valid, the current use is what refuses it)."""

    code = "QuotaExceeded"


class Unauthorized(RequestError):
    """No valid token (401)."""

    status = 401
    code = "AuthenticationFailed"


class Forbidden(RequestError):
    """The token's user may not do this (403)."""

    status = 403
    code = "AuthorizationFailed"
