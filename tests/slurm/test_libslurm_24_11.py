"""The in-process binding built against Slurm 24.11's headers and run against a 24.11
slurmctld: inside the 24.11 cluster's Debian 13 root (its programs and libslurm need Debian 13's
C library), by that root's Python, through tests/slurm/libslurm_in_root.py. Jobs in every state
submitted through libslurm read the same through it as through `squeue --json`; an over-limit
job is refused with Slurm's own words."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.slurm.conftest import PartitionFactory, SlurmCluster

pytestmark = pytest.mark.slurm
RELEASES = ("24.11",)
REPO = Path(__file__).resolve().parents[2]
# Inside the root: built once, kept between runs (keyed by release and declarations).
CACHE = "/var/lib/bai-test/libslurm"


async def test_the_binding_builds_against_24_11_and_reads_its_jobs_as_squeue_does(
    cluster: SlurmCluster, partition: PartitionFactory, workdir: Path
) -> None:
    part = await partition(nodes=(cluster.with_gpu("t4")[0],), max_time_minutes=60)
    argv = ["python3", str(REPO / "tests/slurm/libslurm_in_root.py"), part, str(workdir), CACHE]
    done = subprocess.run(
        cluster.command("env", f"PYTHONPATH={REPO}", "PYTHONDONTWRITEBYTECODE=1", *argv),
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen: dict[str, Any] = json.loads(done.stdout)

    assert seen["version"].startswith("24.11.")
    ids = seen["ids"]
    by_id = {j["job_id"]: j for j in seen["libslurm"]}
    assert {by_id[i]["state"] for i in ids.values()} == {
        "COMPLETED",
        "FAILED",
        "RUNNING",
        "PENDING",
        "CANCELLED",
    }
    assert by_id[ids["done"]]["user"] == "bob" and by_id[ids["done"]]["comment"] == "bai:done"
    assert by_id[ids["failed"]]["exit_status"] == 3 and by_id[ids["failed"]]["user"] == "alice"
    running = by_id[ids["running"]]
    assert running["time_limit_minutes"] == 30 and running["requeue"] is True
    assert running["nodes"] == [cluster.with_gpu("t4")[0]]
    assert by_id[ids["pending"]]["state_reason"] in {"Resources", "Priority"}
    # The same jobs through the command.
    key = lambda j: j["job_id"]  # noqa: E731
    assert sorted(seen["libslurm"], key=key) == sorted(seen["squeue"], key=key)
    assert seen["again"] == seen["libslurm"]
    assert "Requested time limit is invalid" in seen["refused"]
