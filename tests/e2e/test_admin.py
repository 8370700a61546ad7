"""`bai admin` on the service host against the real deployment: a backup of the running
service's store, a restore refused while the service answers, and `bai admin check` passing
with a canary job and failing with what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapter.store import Store
from tests.e2e.service import Api, Service

pytestmark = pytest.mark.slurm


def admin_cli(service: Service, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`bai admin` with the settings of the service under test (wide rows: one line each)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "bai"), "admin", *args],
        env={**os.environ, **service.env, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def rows(table: str) -> dict[str, str]:
    """The check table's rows: check name -> the rest of its first line."""
    found = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 3 and cells[0] and cells[0] != "Check":
            found[cells[0]] = f"{cells[1]} {cells[2]}"
    return found


def test_a_backup_of_the_running_service_and_no_restore_under_it(
    service: Service, alice: Api, workspace: str, tmp_path: Path
) -> None:
    target = tmp_path / "bai-backup.db"
    done = admin_cli(service, "backup", str(target))
    assert done.returncode == 0, done.stderr
    assert f"to {target} (schema version" in done.stdout
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    copy = Store(target)
    assert workspace in [w.name for w in copy.workspaces(alice.sub, alice.rg)]
    copy.close()

    again = admin_cli(service, "backup", str(target))
    assert again.returncode == 1 and "exists: name a new file" in again.stderr

    refused = admin_cli(service, "restore", str(target))
    assert refused.returncode == 1
    assert f"the service answers on 127.0.0.1:{service.env['BAI_PORT']}: stop it first" in (
        refused.stderr
    )


def test_check_passes_on_the_deployment_with_a_canary_job(
    service: Service, alice: Api, workspace: str
) -> None:
    alice.cluster(
        workspace,
        "canary",
        {
            "vmSize": "t4x1",
            "scaleSettings": {"manual": {"targetNodeCount": 1}},
            "userAccountSettings": {"adminUserName": "alice"},
        },
    )
    alice.wait_cluster(workspace, "canary", lambda p: p["currentNodeCount"] == 1)

    done = admin_cli(service, "check", "--cluster", "canary")

    assert done.returncode == 0, done.stdout + done.stderr
    found = rows(done.stdout)
    assert list(found) == [
        "store",
        "slurm",
        "partitions file",
        "munge",
        "storage accounts",
        "canary job",
    ]
    assert all(r.startswith("ok ") for r in found.values()), found
    assert "Slurm 22.05: 5 nodes" in found["slurm"]
    assert "of alice in" in found["canary job"] and "completed" in found["canary job"]


def test_check_fails_with_what_to_fix_when_slurm_is_out_of_reach(service: Service) -> None:
    done = admin_cli(
        service,
        "check",
        BAI_SLURM__RUNNER="ssh",
        BAI_SLURM__CLIENT="commands",
        BAI_SLURM__SSH__PORT="1",
    )

    assert done.returncode == 1, done.stdout
    found = rows(done.stdout)
    assert found["store"].startswith("ok ") and found["munge"].startswith("ok ")
    assert found["slurm"].startswith("FAILED ") and "fix: with slurm.runner = ssh" in done.stdout
    assert found["partitions file"].startswith("FAILED ")
