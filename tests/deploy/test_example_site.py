"""The example site inventory (ansible/inventories/example-site): the playbook accepts it, its
hosts land in the groups its comments promise, and it documents every variable of the roles.

It names hosts that do not exist, so nothing runs against it here; a check-mode run would need
them. What CI deploys for real is the dev inventory (tests/deploy/test_playbook.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
SITE = ANSIBLE / "inventories" / "example-site"
BIN = Path(sys.executable).parent


def ansible(program: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / program), "-i", "inventories/example-site", *args],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("check", ["--syntax-check", "--list-tasks"])
def test_the_site_playbook_accepts_the_example_site(check: str) -> None:
    done = ansible("ansible-playbook", "site.yml", check)
    assert done.returncode == 0, done.stdout + done.stderr


def test_its_hosts_are_in_the_groups_it_says() -> None:
    listed = ansible("ansible-inventory", "--list")
    assert listed.returncode == 0, listed.stderr
    inv: dict[str, Any] = json.loads(listed.stdout)
    hosts = {group: sorted(inv[group]["hosts"]) for group in inv if "hosts" in inv[group]}
    assert hosts["bai_adapter"] == ["bai.example.org"] == hosts["monitoring"]
    assert "bai.example.org" in hosts["login"] and "login-01.example.org" in hosts["login"]
    assert set(hosts["munge"]) >= {*hosts["slurm_controller"], *hosts["slurm_nodes"]}
    site = inv["_meta"]["hostvars"]["bai.example.org"]
    assert (site["bai_init"], site["bai_slurm_runner"]) == ("systemd", "ssh")
    assert {n["host"] for n in site["slurm_nodes"]} == set(hosts["slurm_nodes"])


def test_it_documents_every_variable_of_the_roles() -> None:
    text = (SITE / "group_vars" / "all.yml").read_text()
    mentioned = set(re.findall(r"^(?:# )?([a-z][a-z0-9_]*):", text, re.MULTILINE))
    defaults = {
        name: path.parent.parent.name
        for path in sorted((ANSIBLE / "roles").glob("*/defaults/main.yml"))
        for name in re.findall(r"^([a-z][a-z0-9_]*):", path.read_text(), re.MULTILINE)
    }
    missing = {name: role for name, role in defaults.items() if name not in mentioned}
    assert not missing, f"variables of roles/*/defaults the example site does not show: {missing}"
