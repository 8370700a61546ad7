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
