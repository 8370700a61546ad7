"""Runners carry argv lists (never shell strings) and file writes to where Slurm is.

`LocalRunner` uses asyncio subprocesses on this host and runs user commands as the user
(`setpriv` as root, else `sudo -n`), so the Slurm client tools must be installed here; it also
writes bai's spool, which is on this host's filesystem whatever the runner. `SshRunner`
(adapter/backends/ssh.py) runs the same argv on a login or controller host.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from adapter.errors import BackendUnavailable

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished command returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class File:
    """A file to replace atomically, on disk before it replaces the old one."""

    path: str
    text: str
    mode: int = 0o644
    owner: str | None = None


class Runner(Protocol):
    """Runs commands and moves files where the Slurm client tools are."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        stdin: str | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        """Run argv (as `user` if given); a missing program or a timeout is BackendUnavailable."""
        ...

    async def read_text(self, path: str) -> str | None:
        """A file's text, or None if it does not exist."""
        ...

    async def write_text(
        self,
        path: str,
        text: str,
        mode: int = 0o644,
        owner: str | None = None,
    ) -> None:
        """Replace a file atomically (readers see the old or the new text, never a mix), on
        disk before it replaces the old one (the partition file, setup secrets)."""
        ...

    async def remove(self, path: str) -> None:
        """Remove a file or a directory tree; a missing one is not an error."""
        ...


class SpoolFiles(Protocol):
    """Writes and removes files in bai's spool, on the filesystem shared with the nodes."""

    async def write_text(
        self, path: str, text: str, mode: int = 0o644, owner: str | None = None
    ) -> None: ...

    async def remove(self, path: str) -> None: ...


def user_session(base: Mapping[str, str], entry: pwd.struct_passwd) -> tuple[dict[str, str], str]:
    """The environment and working directory of a command run for a user: `base` plus who they
    are, from their home (or `/` if it is missing). sbatch passes both on to the job."""
    env = {**base, "HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name}
    return env, entry.pw_dir if os.path.isdir(entry.pw_dir) else "/"


class LocalRunner:
    """Runs commands on this host."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        # Commands get a small, fixed environment: nothing of the service's own leaks into jobs.
        self.env = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", **(env or {})}

    def _wrap(
        self, argv: Sequence[str], user: str | None
    ) -> tuple[list[str], dict[str, str], str, dict[str, Any]]:
        """argv, environment, working directory and the identity switch for a command."""
        if user is None or user == pwd.getpwuid(os.geteuid()).pw_name:
            return list(argv), {**self.env, "HOME": os.path.expanduser("~")}, "/", {}
        entry = pwd.getpwnam(user)
        env, home = user_session(self.env, entry)
        if os.geteuid() == 0:
            # setpriv (util-linux) switches uid, gid and groups without a PAM session (runuser
            # opens one per command), and lets Python spawn with vfork: measured 1.7x faster
            # than switching in a forked child of this (large) process.
            switch = [
                "setpriv",
                f"--reuid={entry.pw_uid}",
                f"--regid={entry.pw_gid}",
                "--init-groups",
                "--",
            ]
            return [*switch, *argv], env, home, {}
        return ["sudo", "-n", "-u", user, "--", *argv], env, home, {}

    async def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        stdin: str | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        try:
            full, env, cwd, identity = self._wrap(argv, user)
        except KeyError as exc:
            raise BackendUnavailable(f"no Unix user {user!r} on this host", argv=argv) from exc
        try:
            proc = await asyncio.create_subprocess_exec(
                *full,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=cwd,
                **identity,
            )
        except FileNotFoundError as exc:
            raise BackendUnavailable(
                f"{full[0]} is not installed here; install the Slurm client tools "
                "(Debian: apt install slurm-client)",
                argv=argv,
            ) from exc
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(stdin.encode() if stdin is not None else None), timeout
            )
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise BackendUnavailable(f"no answer within {timeout:g} s", argv=argv) from exc
        return CommandResult(
            argv=tuple(argv),
            returncode=proc.returncode if proc.returncode is not None else -1,
            stdout=out.decode(errors="replace"),
            stderr=err.decode(errors="replace"),
        )

    async def read_text(self, path: str) -> str | None:
        def read() -> str | None:
            try:
                return Path(path).read_text()
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(read)

    async def write_text(
        self,
        path: str,
        text: str,
        mode: int = 0o644,
        owner: str | None = None,
    ) -> None:
        await asyncio.to_thread(_write_file, File(path, text, mode, owner))

    async def remove(self, path: str) -> None:
        def remove() -> None:
            target = Path(path)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)

        await asyncio.to_thread(remove)


def _write_file(entry: File) -> None:
    target = Path(entry.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        # The mode is set before any byte is written: secrets files are never readable by
        # others, not even for an instant.
        os.fchmod(fd, entry.mode)
        if entry.owner is not None:
            account = pwd.getpwnam(entry.owner)
            os.fchown(fd, account.pw_uid, account.pw_gid)
        with os.fdopen(fd, "w") as fh:
            fh.write(entry.text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
