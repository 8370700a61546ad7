"""The one place argv becomes a remote shell command (adapter.backends.ssh.remote_command): every
word arrives as it was, through a real POSIX shell, whoever the command runs as."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from adapter.backends.ssh import REMOTE_ENV, remote_command

# Words a request or a user can put into argv: a job name, a comment, a path, a script.
CORPUS = [
    "plain",
    "two words",
    "it's",
    'say "hi"',
    "$(touch /tmp/bai-pwned)",
    "`id`",
    "$HOME ${PATH} $1 $@ $*",
    "a;b|c&d>e<f",
    "new\nline",
    "tab\there",
    "-not-an-option",
    "--",
    "",
    " ",
    "*",
    "~root",
    "back\\slash",
    "ünïcödé ✓",
    "#not a comment",
    "!event",
    "a\x01b",
]
ENV = [f"{k}={v}" for k, v in REMOTE_ENV.items()]


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_every_word_reaches_the_program_as_it_was(shell: str) -> None:
    command = remote_command(["printf", "%s\\0", *CORPUS], account="bai", user="bai")
    out = subprocess.run([shell, "-c", command], capture_output=True, check=True).stdout
    assert out.decode().split("\0")[:-1] == CORPUS


@pytest.mark.parametrize(
    ("account", "user", "words"),
    [
        # the account's own command, run directly, with the fixed environment
        ("bai", "bai", ["env", *ENV, "squeue", "--json"]),
        # the service's commands through sudo as root; a user's through sudo as that user
        ("bai", None, ["sudo", "-n", "--", "squeue", "--json"]),
        ("bai", "alice", ["sudo", "-n", "-u", "alice", "--", "squeue", "--json"]),
        # logged in as root: no sudo; a user's command through runuser
        ("root", None, ["env", *ENV, "squeue", "--json"]),
        ("root", "alice", ["env", *ENV, "runuser", "-u", "alice", "--", "squeue", "--json"]),
    ],
)
def test_who_a_command_runs_as(account: str, user: str | None, words: list[str]) -> None:
    command = remote_command(["squeue", "--json"], account=account, user=user)
    assert command.startswith("cd / && exec ")
    assert shlex.split(command.removeprefix("cd / && exec ")) == words


def test_an_empty_command_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        remote_command([], account="bai", user=None)
