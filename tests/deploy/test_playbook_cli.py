"""The bai CLI the playbook installs for every user (ansible/roles/cli): alice's and bob's login
shells run it with no setup, and no user can change what the others run.

These look at what the last playbook run left; in the suite that is test_playbook.py's, which
runs just before (so they cost no playbook run of their own).
"""

from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from adapter import __version__
from adapter.cli.config import parse_conf

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("dev_cluster")]
PREFIX, LINK, CONF = Path("/opt/bai"), Path("/usr/local/bin/bai"), Path("/etc/bai/client.conf")
DEV_URL = "https://127.0.0.1:8443"


def login_shell(user: str, command: str) -> subprocess.CompletedProcess[str]:
    """`command` in `user`'s login shell: their PATH and environment, nothing of root's."""
    return subprocess.run(
        ["runuser", "-l", user, "-c", command], capture_output=True, text=True, timeout=120
    )


def unsafe(top: Path) -> list[str]:
    """Everything under `top` (itself included) that is not root's or that others may write.
    Symbolic links are skipped: their own modes mean nothing, their targets are checked."""
    found = []
    for directory, dirs, files in os.walk(top):
        for path in [Path(directory)] + [Path(directory, name) for name in dirs + files]:
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                found.append(f"{path} uid={st.st_uid} mode={stat.filemode(st.st_mode)}")
    return found


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_a_login_shell_finds_bai(user: str) -> None:
    done = login_shell(user, "command -v bai && bai version")
    assert (done.returncode, done.stdout) == (0, f"{LINK}\n{__version__}\n"), done.stderr


def test_what_users_run_is_roots_and_only_root_may_change_it() -> None:
    assert LINK.is_symlink() and LINK.readlink() == PREFIX / "bin/bai"
    assert LINK.lstat().st_uid == 0
    # Nor may anyone but root rename the venv or the link away and put their own in its place.
    above = {*LINK.parents, *PREFIX.parents}
    assert [p for p in above if p.stat().st_uid != 0 or p.stat().st_mode & 0o022] == []
    # The code alice's bai imports: the venv's, or the checkout an editable install points at.
    done = login_shell("alice", f"{PREFIX}/bin/python -c 'import adapter; print(adapter.__file__)'")
    assert done.returncode == 0, done.stderr
    package = Path(done.stdout.strip()).parent
    assert unsafe(PREFIX) == []
    assert unsafe(package) == []


def test_client_conf_names_the_service_and_a_ca_every_user_reads() -> None:
    st = CONF.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)
    values = parse_conf(CONF.read_text(), CONF)
    assert values["BAI_URL"] == DEV_URL
    ca = values["BAI_CA"]
    done = login_shell("alice", f"cat {ca}")
    assert done.returncode == 0, done.stderr
    assert done.stdout == Path("/var/lib/bai/tls/cert.pem").read_text()
    # The pair is right: the service's certificate verifies against that CA for that URL.
    answer = httpx.get(DEV_URL + "/", verify=ssl.create_default_context(cafile=ca), timeout=10)
    assert answer.status_code < 500


def test_alice_reaches_the_service_with_no_setup() -> None:
    """No token, no variables: client.conf says where the service is, munge who alice is."""
    group = f"cli-{uuid.uuid4().hex[:8]}"
    done = login_shell("alice", f"bai workspace list -g {group} -o json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
