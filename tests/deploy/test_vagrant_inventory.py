"""The Vagrant cluster's inventory agrees with its Vagrantfile and the playbook accepts it.

Booting the three VMs is `make vagrant-up` + `make vagrant-check` (vagrant/README.md), too slow
for `make test`; this keeps the files that describe them from drifting apart in the meantime.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent


def inventory() -> dict[str, Any]:
    out = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", "inventories/vagrant", "--list"],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def test_inventory_matches_the_vagrantfile_machines_and_roles() -> None:
    inv = inventory()
    hostvars = inv["_meta"]["hostvars"]
    machines = dict(
        re.findall(r'"(\w+)" => "([\d.]+)"', (ROOT / "vagrant" / "Vagrantfile").read_text())
    )
    assert machines == {name: v["ansible_host"] for name, v in hostvars.items()}
    assert inv["slurm_controller"]["hosts"] == ["ctl"]
    assert sorted(inv["slurm_nodes"]["hosts"]) == ["node1", "node2"]
    assert sorted(inv["munge"]["hosts"]) == ["ctl", "node1", "node2"]
    ctl = hostvars["ctl"]
    assert ctl["slurm_controller_addr"] == machines["ctl"]
    for node in ctl["slurm_nodes"]:
        # Each Slurm node is the VM of the same name, on that VM's private address.
        assert node["host"] == node["name"] and node["addr"] == machines[node["name"]]
        assert node["type"] in ctl["slurm_node_types"]
    assert ctl["munge_key_src"].endswith("/vagrant/.munge.key")


def test_site_playbook_accepts_the_vagrant_inventory() -> None:
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "inventories/vagrant", "site.yml", "--syntax-check"],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
