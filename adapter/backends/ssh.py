"""The `ssh` runner: bai on its own host, Slurm's commands on a login or controller host.

One asyncssh connection is kept to the configured host and opened again when it is lost. Every
command is the same argv the local runner would run, quoted for the remote shell here and only
here (`remote_command`), and run as the account bai logs in with: a user's command through
`sudo -n -u <user>`, the service's own through `sudo -n` (the sudo rules name the exact
commands: docs/slurm-backend.md), or directly when that account is root. The host key must be in
the operator's known_hosts file; there is no trust on first use.

Files over SFTP are the controller host's own (the partitions include file). Job spools are on
the shared filesystem the service host mounts too, and are read there through adapter.boundary:
SFTP's open follows symbolic links, so root must not read a user's files through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import shlex
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncssh
import structlog

from adapter.backends.runner import SAFE_PATH, CommandResult
from adapter.errors import BackendUnavailable

if TYPE_CHECKING:
    from adapter.settings import SshSettings

log = structlog.get_logger(__name__)

# What a command run over SSH gets as its environment, whoever it runs as (sudo resets the rest).
REMOTE_ENV = {"PATH": SAFE_PATH, "LANG": "C.UTF-8"}


@dataclass(frozen=True, slots=True)
class SshTarget:
    """Where the runner logs in, and what it trusts."""

    host: str
    port: int
    user: str
    key_file: str
    known_hosts: str
    connect_timeout: float = 10.0
    keepalive: float = 30.0


def remote_command(argv: Sequence[str], *, account: str, user: str | None) -> str:
    """The command line the remote shell runs for argv, as `user` (None: the service's own
    commands). Each word is quoted, so nothing in argv is ever shell syntax there."""
    if not argv:
        raise ValueError("an empty command")
    env = [f"{name}={value}" for name, value in REMOTE_ENV.items()]
    if account == "root":
        switch = [] if user in (None, "root") else ["runuser", "-u", user, "--"]
        words = ["env", *env, *switch, *argv]
    elif user == account:
        words = ["env", *env, *argv]
    elif user is None:
        words = ["sudo", "-n", "--", *argv]
    else:
        words = ["sudo", "-n", "-u", user, "--", *argv]
    return "cd / && exec " + shlex.join(words)


class SshRunner:
    """Runs commands and moves the controller host's files over one kept SSH connection."""

    def __init__(self, target: SshTarget) -> None:
        self.target = target
        self._conn: asyncssh.SSHClientConnection | None = None
        self._connecting = asyncio.Lock()

    @classmethod
    def from_settings(cls, ssh: SshSettings) -> SshRunner:
        """The runner of the `slurm.ssh` settings."""
        return cls(
            SshTarget(
                host=ssh.host,
                port=ssh.port,
                user=ssh.user,
                key_file=ssh.key_file,
                known_hosts=ssh.known_hosts,
                connect_timeout=ssh.connect_timeout_seconds,
                keepalive=ssh.keepalive_seconds,
            )
        )

    @property
    def where(self) -> str:
        return f"{self.target.user}@{self.target.host}:{self.target.port}"

    async def _connection(self) -> asyncssh.SSHClientConnection:
        async with self._connecting:
            conn = self._conn
            if conn is not None and not conn.is_closed():
                return conn
            try:
                conn = await asyncssh.connect(
                    self.target.host,
                    self.target.port,
                    username=self.target.user,
                    client_keys=[self.target.key_file],
                    known_hosts=self.target.known_hosts,
                    connect_timeout=self.target.connect_timeout,
                    keepalive_interval=self.target.keepalive,
                    agent_path=None,
                    config=(),
                )
            except asyncssh.HostKeyNotVerifiable as exc:
                raise BackendUnavailable(
                    f"the host key of {self.where} is not the one in {self.target.known_hosts} "
                    f"({exc.reason}); add the host's key there (ssh-keyscan, checked by hand)"
                ) from exc
            except asyncssh.PermissionDenied as exc:
                raise BackendUnavailable(
                    f"{self.where} refused the key {self.target.key_file} ({exc.reason}); "
                    "add its public half to that account's authorized_keys"
                ) from exc
            except (OSError, TimeoutError, asyncssh.Error) as exc:
                raise BackendUnavailable(f"cannot reach {self.where}: {_reason(exc)}") from exc
            log.info("ssh connection opened", host=self.where)
            self._conn = conn
            return conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()

    async def run(
        self,
        argv: Sequence[str],
        *,
        user: str | None = None,
        stdin: str | None = None,
        timeout: float = 60.0,
    ) -> CommandResult:
        command = remote_command(argv, account=self.target.user, user=user)
        # A connection found dead before the command started is opened again once; one lost
        # while a command ran is not: the command may have run (an sbatch twice is two jobs).
        for attempt in (1, 2):
            conn = await self._connection()
            try:
                process = await conn.create_process(command, encoding=None)
            except (asyncssh.ChannelOpenError, asyncssh.ConnectionLost, OSError) as exc:
                self._forget(conn)
                if attempt == 2:
                    raise BackendUnavailable(f"{self.where}: {_reason(exc)}", argv=argv) from exc
                continue
            return await self._finish(process, conn, argv, stdin, timeout)
        raise AssertionError("unreachable")

    async def _finish(
        self,
        process: asyncssh.SSHClientProcess[bytes],
        conn: asyncssh.SSHClientConnection,
        argv: Sequence[str],
        stdin: str | None,
        timeout: float,
    ) -> CommandResult:
        try:
            out, err = await asyncio.wait_for(
                process.communicate(stdin.encode() if stdin is not None else b""), timeout
            )
        except TimeoutError as exc:
            _stop(process)
            raise BackendUnavailable(f"no answer within {timeout:g} s", argv=argv) from exc
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError, OSError) as exc:
            self._forget(conn)
            raise BackendUnavailable(
                f"the connection to {self.where} was lost while the command ran "
                f"({_reason(exc)}); it may have run",
                argv=argv,
            ) from exc
        status, err = process.exit_status, err or b""
        if status is None:  # the channel closed without an exit status: the connection went
            self._forget(conn)
            raise BackendUnavailable(
                f"the connection to {self.where} closed while the command ran; it may have run",
                argv=argv,
            )
        if status == 127 or (
            status == 1 and err.startswith(b"sudo: ") and b"command not found" in err
        ):
            raise BackendUnavailable(
                f"{argv[0]} is not installed on {self.target.host}; install the Slurm client "
                "tools there (Debian: apt install slurm-client)",
                argv=argv,
            )
        if status == 1 and b"sudo: a password is required" in err:
            raise BackendUnavailable(
                f"{self.where} may not sudo {argv[0]}; give that account the sudo rules of "
                "docs/slurm-backend.md",
                argv=argv,
            )
        return CommandResult(
            argv=tuple(argv),
            returncode=status,
            stdout=(out or b"").decode(errors="replace"),
            stderr=(err or b"").decode(errors="replace"),
        )

    def _forget(self, conn: asyncssh.SSHClientConnection) -> None:
        if self._conn is conn:
            self._conn = None
        conn.close()

    # -- the controller host's files, over SFTP --------------------------------------------------

    async def _sftp(self, what: str, path: str) -> asyncssh.SFTPClient:
        conn = await self._connection()
        try:
            return await conn.start_sftp_client()
        except (asyncssh.ChannelOpenError, asyncssh.ConnectionLost, OSError) as exc:
            self._forget(conn)
            raise BackendUnavailable(
                f"cannot {what} {path} on {self.where}: {_reason(exc)}"
            ) from exc

    async def read_text(self, path: str) -> str | None:
        sftp = await self._sftp("read", path)
        try:
            async with sftp.open(path, "rb") as f:
                data: bytes = await f.read()
            return data.decode(errors="replace")
        except asyncssh.SFTPNoSuchFile:
            return None
        except (asyncssh.SFTPError, OSError) as exc:
            raise BackendUnavailable(f"cannot read {path} on {self.where}: {_reason(exc)}") from exc
        finally:
            sftp.exit()

    async def write_text(
        self,
        path: str,
        text: str,
        mode: int = 0o644,
        owner: str | None = None,
    ) -> None:
        """Replace the file atomically: a new file beside it (its mode set when it is made),
        synced, then renamed over it. `owner` is not supported: the file is the account's."""
        if owner is not None and owner != self.target.user:
            raise BackendUnavailable(f"cannot give {path} on {self.where} to {owner}")
        parent, name = posixpath.split(path)
        tmp = posixpath.join(parent, f".{name}.{uuid.uuid4().hex[:12]}")
        sftp = await self._sftp("write", path)
        try:
            attrs = asyncssh.SFTPAttrs(permissions=mode)
            async with sftp.open(tmp, "wb", attrs) as f:
                await f.write(text.encode())
                await f.fsync()
            await sftp.chmod(tmp, mode)  # as given, whatever the remote umask took away
            await sftp.posix_rename(tmp, path)
        except (asyncssh.SFTPError, OSError) as exc:
            await _quietly(sftp.remove(tmp))
            raise BackendUnavailable(
                f"cannot write {path} on {self.where}: {_reason(exc)}"
            ) from exc
        finally:
            sftp.exit()

    async def remove(self, path: str) -> None:
        sftp = await self._sftp("remove", path)
        try:
            await sftp.rmtree(path) if await sftp.isdir(path) else await sftp.remove(path)
        except asyncssh.SFTPNoSuchFile:
            pass
        except (asyncssh.SFTPError, OSError) as exc:
            raise BackendUnavailable(
                f"cannot remove {path} on {self.where}: {_reason(exc)}"
            ) from exc
        finally:
            sftp.exit()


def _stop(process: asyncssh.SSHClientProcess[Any]) -> None:
    """Ask the remote command to end (sudo passes TERM on), then close its channel."""
    with contextlib.suppress(OSError, asyncssh.Error):
        process.send_signal("TERM")
    process.close()


async def _quietly(step: Any) -> None:
    with contextlib.suppress(asyncssh.SFTPError, OSError):
        await step


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return str(reason)
