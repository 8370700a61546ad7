"""The ssh runner against the dev controller host's real sshd (127.0.0.1:2222), as the account
the Ansible roles made for it (bai: the service's key only, sudo for exactly Slurm's commands).

What crosses SSH arrives word for word; a user's command runs as that user and never as root; a
timeout ends the remote command; a connection killed mid-command is reported (the command may
have run) and the next command reconnects; an unknown host key or key is refused with the fix;
the controller host's files are replaced atomically over SFTP.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from adapter.backends import CliBackend
from adapter.backends.slurm_options import SlurmOptions
from adapter.backends.ssh import SshRunner, SshTarget
from adapter.errors import BackendUnavailable
from tests.slurm.conftest import PartitionFactory
from tests.unit.backends.test_ssh_command import CORPUS

pytestmark = pytest.mark.slurm

# What the dev inventory sets up (ansible/inventories/dev/group_vars/all.yml).
TARGET = SshTarget(
    host="127.0.0.1",
    port=2222,
    user="bai",
    key_file="/etc/bai/ssh/id_ed25519",
    known_hosts="/etc/bai/ssh/known_hosts",
    connect_timeout=5,
)
INCLUDE_DIR = Path("/etc/slurm/bai")


@pytest.fixture
async def runner() -> AsyncIterator[SshRunner]:
    ssh = SshRunner(TARGET)
    yield ssh
    await ssh.close()


def pids(pattern: str, user: str = "bai") -> list[int]:
    found = subprocess.run(["pgrep", "-u", user, "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_every_word_crosses_ssh_as_it_was(runner: SshRunner) -> None:
    result = await runner.run(["printf", "%s\\0", *CORPUS], user="bai")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\0")[:-1] == CORPUS


async def test_a_job_submitted_over_ssh_is_the_user_s_with_its_name_intact(
    runner: SshRunner, partition: PartitionFactory
) -> None:
    backend = CliBackend(runner)
    part = await partition(nodes=("gpu-t4-2",))
    name = "a$(id)`x`;|&<>*"  # no word breaks or quotes: #SBATCH lines cannot carry those
    options = SlurmOptions(job_name=name, partition=part, output="/dev/null", nice=10000)
    script = "\n".join(["#!/bin/sh", *options.directives(), "sleep 30", ""])
    job_id = await backend.submit_job(options, script, user="alice")
    try:
        shown = subprocess.run(
            ["squeue", "-h", "-j", str(job_id), "-o", "%u|%j"], capture_output=True, text=True
        ).stdout.strip()
        assert shown == f"alice|{name}"
        (job,) = [j for j in await backend.jobs([part]) if j.job_id == job_id]
        assert job.name == name
    finally:
        await backend.cancel(job_id)


async def test_the_account_runs_slurm_s_commands_and_nothing_else_as_root(
    runner: SshRunner,
) -> None:
    assert (await runner.run(["scontrol", "ping"])).returncode == 0
    for argv, user in ((["id"], None), (["sbatch", "--version"], "root")):
        with pytest.raises(BackendUnavailable, match="may not sudo .*docs/slurm-backend.md"):
            await runner.run(argv, user=user)
    assert (await runner.run(["sbatch", "--version"], user="alice")).stdout.startswith("slurm")


async def test_a_missing_command_says_what_to_install(runner: SshRunner) -> None:
    with pytest.raises(BackendUnavailable, match="not installed on 127.0.0.1; install"):
        await runner.run(["no-such-slurm-command"], user="bai")
    # Through sudo, a command its rules do not name is refused before it is looked for.
    with pytest.raises(BackendUnavailable, match="may not sudo no-such-slurm-command"):
        await runner.run(["no-such-slurm-command"])


async def test_a_timeout_ends_the_remote_command(runner: SshRunner) -> None:
    marker = f"sleep 3{uuid.uuid4().int % 1000:03d}"
    with pytest.raises(BackendUnavailable, match="no answer within 1 s"):
        await runner.run(marker.split(), user="bai", timeout=1)
    await until(lambda: not pids(marker))  # sshd passed TERM on
    assert (await runner.run(["true"], user="bai")).returncode == 0


async def test_a_connection_killed_mid_command_is_reported_and_the_next_one_reconnects(
    runner: SshRunner,
) -> None:
    await runner.run(["true"], user="bai")
    first = runner._conn
    marker = f"sleep 2{uuid.uuid4().int % 1000:03d}"
    running = asyncio.create_task(runner.run(marker.split(), user="bai"))
    await until(lambda: bool(pids(marker)))
    # The connection's sshd processes: the account's session and root's monitor of it.
    sessions = pids("^sshd: bai", "bai") + pids("^sshd: bai", "root")
    assert sessions
    for pid in sessions:
        os.kill(pid, 9)
    with pytest.raises(BackendUnavailable, match="while the command ran.*it may have run"):
        await asyncio.wait_for(running, 10)
    result = await runner.run(["printf", "again"], user="bai")
    assert result.stdout == "again" and runner._conn is not first


async def test_a_host_key_not_in_known_hosts_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:2222 {other.with_suffix('.pub').read_text()}")
    stranger = SshRunner(replace(TARGET, known_hosts=str(known)))
    with pytest.raises(BackendUnavailable, match=f"not the one in {known}.*ssh-keyscan"):
        await stranger.run(["true"], user="bai")


async def test_a_key_the_account_does_not_know_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    stranger = SshRunner(replace(TARGET, key_file=str(key)))
    with pytest.raises(BackendUnavailable, match=f"refused the key {key}.*authorized_keys"):
        await stranger.run(["true"], user="bai")


async def test_files_are_replaced_atomically_over_sftp(runner: SshRunner) -> None:
    path = INCLUDE_DIR / f"t-{uuid.uuid4().hex[:8]}.conf"
    try:
        assert await runner.read_text(str(path)) is None
        await runner.write_text(str(path), "first\n", mode=0o640)
        await runner.write_text(str(path), "second\n", mode=0o640)
        assert await runner.read_text(str(path)) == "second\n" == path.read_text()
        st = path.stat()
        assert (st.st_mode & 0o777, st.st_uid) == (0o640, pwd.getpwnam("bai").pw_uid)
        assert sorted(p.name for p in INCLUDE_DIR.iterdir() if path.stem in p.name) == [path.name]
        await runner.remove(str(path))
        assert not path.exists()
        await runner.remove(str(path))  # a missing file is not an error
    finally:
        path.unlink(missing_ok=True)
    with pytest.raises(BackendUnavailable, match="cannot write /etc/slurm/t-x.conf on bai@"):
        await runner.write_text("/etc/slurm/t-x.conf", "no\n")  # root's directory
