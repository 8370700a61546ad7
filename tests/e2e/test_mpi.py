"""MPI jobs form one real world on the dev cluster: OpenMPI and mpi4py from Debian, ranks placed
by Slurm's PMIx plugin (`srun --mpi=pmix`) or by the site's mpirun (this suite's service starts
chainer jobs with it: tests/e2e/service.py). Each rank reports its place and an allreduce."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.service import Api

pytestmark = pytest.mark.slurm

SHARE = Path("/var/lib/bai/dev-storage/jobs/logs")
LOGS = {
    "azureFileShares": [
        {"azureFileUrl": "https://jobs.file.core.windows.net/logs", "relativeMountPath": "logs"}
    ]
}
# One JSON line per rank: where it runs, what the world says, and an allreduce over all ranks.
PROGRAM = """\
import json, os
from mpi4py import MPI
world = MPI.COMM_WORLD
total = world.allreduce(world.Get_rank(), op=MPI.SUM)
print(json.dumps({"rank": world.Get_rank(), "size": world.Get_size(),
                  "node": os.environ.get("SLURMD_NODENAME"), "sum": total,
                  "task": os.environ.get("SLURM_PROCID")}), flush=True)
"""


@pytest.fixture
def code(alice: Api) -> str:
    """The program, on the share every job mounts, in a directory of its own; the jobs name it
    through an input directory: `$AZ_BATCHAI_INPUT_CODE/mpi_world.py`."""
    rel = f"mpi-{uuid.uuid4().hex[:8]}"
    where = SHARE / rel
    where.mkdir(parents=True)
    (where / "mpi_world.py").write_text(PROGRAM)
    os.chmod(where, 0o755)
    return rel


@pytest.fixture
def pairs(alice: Api, workspace: str) -> dict[str, str]:
    """Two clusters of two nodes of 2 CPUs each, t4x1 and a100x2 (low priority: shared with
    the rest of the suite), so the jobs run two at a time."""
    for name, size in (("mpi-t4", "t4x1"), ("mpi-a100", "a100x2")):
        alice.cluster(
            workspace,
            name,
            {
                "vmSize": size,
                "vmPriority": "lowpriority",
                "scaleSettings": {"manual": {"targetNodeCount": 2}},
                "userAccountSettings": {"adminUserName": "alice"},
            },
        )
    alice.experiment(workspace, "mpi")
    return {n: alice.path("workspaces", workspace, "clusters", n) for n in ("mpi-t4", "mpi-a100")}


def mpi_job(cluster: str, code: str, toolkit: dict[str, Any]) -> dict[str, Any]:
    return {
        "cluster": {"id": cluster},
        "nodeCount": 2,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "mountVolumes": LOGS,
        "inputDirectories": [{"id": "CODE", "path": f"$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/{code}"}],
        **toolkit,
    }


SCRIPT = "$AZ_BATCHAI_INPUT_CODE/mpi_world.py"
# Shapes: how each toolkit names the program, and how many ranks it asks for. No job names an
# interpreter and none has an image: the nodes have python3 and no `python`.
SHAPES: dict[str, tuple[dict[str, Any], int]] = {
    "custommpi": (
        {"customMpiSettings": {"commandLine": f"python3 {SCRIPT}", "processCount": 4}},
        4,
    ),
    "horovod": ({"horovodSettings": {"pythonScriptFilePath": SCRIPT, "processCount": 4}}, 4),
    # Through mpirun (the suite's service names chainer in jobs.mpirun_toolkits).
    "chainer": ({"chainerSettings": {"pythonScriptFilePath": SCRIPT, "processCount": 4}}, 4),
    # More ranks than the nodes have CPUs (3 a node, 2 CPUs): Batch AI did not bind processes
    # to CPUs, and neither does bai.
    "overcommit": ({"horovodSettings": {"pythonScriptFilePath": SCRIPT, "processCount": 6}}, 6),
}


def test_mpi_jobs_of_every_launch_shape_form_one_world(
    alice: Api, workspace: str, pairs: dict[str, str], code: str
) -> None:
    for i, (name, (toolkit, _)) in enumerate(SHAPES.items()):
        on = pairs["mpi-t4" if i % 2 == 0 else "mpi-a100"]
        alice.job(workspace, "mpi", name, mpi_job(on, code, toolkit))
    for name, (_, size) in SHAPES.items():
        done = alice.wait_job(workspace, "mpi", name)["properties"]
        stderr = alice.read(workspace, "mpi", name, "stderr.txt")
        assert done["executionState"] == "succeeded", (name, done["executionInfo"], stderr)
        ranks = [
            json.loads(line)
            for line in alice.read(workspace, "mpi", name, "stdout.txt").splitlines()
        ]
        # Every rank exactly once, all in one world of the requested size, the allreduce whole.
        assert sorted(r["rank"] for r in ranks) == list(range(size)), (name, ranks)
        assert {r["size"] for r in ranks} == {size}, (name, ranks)
        assert {r["sum"] for r in ranks} == {size * (size - 1) // 2}, (name, ranks)
        # Spread evenly over both nodes of the job.
        per_node = Counter(r["node"] for r in ranks)
        assert len(per_node) == 2 and set(per_node.values()) == {size // 2}, (name, per_node)
        # srun started each rank as a task of its own; mpirun started one daemon per node (a
        # Slurm task each), which started the node's ranks.
        tasks = Counter(r["task"] for r in ranks)
        if name == "chainer":
            assert sorted(tasks) == ["0", "1"] and set(tasks.values()) == {size // 2}, tasks
        else:
            assert all(r["task"] == str(r["rank"]) for r in ranks), (name, ranks)
