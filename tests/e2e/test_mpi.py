"""Distributed jobs form one real world on the dev cluster. MPI: OpenMPI and mpi4py from Debian,
ranks placed by Slurm's PMIx plugin (`srun --mpi=pmix`) or by the site's mpirun (this suite's
service starts chainer jobs with it: tests/e2e/service.py). PyTorch: torch's CPU build, its
gloo backend joined through AZ_BATCHAI_PYTORCH_INIT_METHOD. Each rank reports its place and an
allreduce."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


# The public PyTorch gloo recipe's program, for real: its arguments, the init method, an allreduce.
TORCH_PROGRAM = """\
import argparse, json, os
import torch, torch.distributed as dist
parser = argparse.ArgumentParser()
for flag in ("--world-size", "--dist-backend", "--dist-url", "--rank"):
    parser.add_argument(flag, required=True)
args = parser.parse_args()
dist.init_process_group(args.dist_backend, init_method=args.dist_url,
                        world_size=int(args.world_size), rank=int(args.rank))
total = torch.tensor([float(dist.get_rank())])
dist.all_reduce(total)
print(json.dumps({"rank": dist.get_rank(), "size": dist.get_world_size(), "sum": total.item(),
                  "node": os.environ.get("SLURMD_NODENAME"), "backend": dist.get_backend()}))
dist.destroy_process_group()
"""
# torch's CPU build, as a site would provide it to jobs that have no image: a directory on every
# node, on PYTHONPATH. The machine's pip holds this release on disk (no download).
TORCH = "torch==2.13.0"
TORCH_SITE = Path("/var/lib/bai-test") / TORCH.replace("==", "-")


@pytest.fixture(scope="module")
def torch_site() -> Path:
    """torch installed for the nodes' python3 (made once, kept between runs: 880 MB)."""
    done = TORCH_SITE / ".installed"
    if not done.exists():
        subprocess.run(["rm", "-rf", str(TORCH_SITE)], check=True)
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile"]
        subprocess.run([*pip, "--target", str(TORCH_SITE), TORCH], check=True)
        TORCH_SITE.chmod(0o755)
        done.touch()
    return TORCH_SITE


@pytest.fixture
def code(alice: Api) -> str:
    """The program, on the share every job mounts, in a directory of its own; the jobs name it
    through an input directory: `$AZ_BATCHAI_INPUT_CODE/mpi_world.py`."""
    rel = f"mpi-{uuid.uuid4().hex[:8]}"
    where = SHARE / rel
    where.mkdir(parents=True)
    (where / "mpi_world.py").write_text(PROGRAM)
    (where / "torch_world.py").write_text(TORCH_PROGRAM)
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


def test_a_pytorch_gloo_job_forms_one_world_across_two_nodes(
    alice: Api, workspace: str, pairs: dict[str, str], code: str, torch_site: Path
) -> None:
    """The PyTorch-GPU-Distributed-Gloo recipe's job shape, with real torch and no image."""
    settings = {
        "pythonScriptFilePath": "$AZ_BATCHAI_INPUT_CODE/torch_world.py",
        "commandLineArgs": "--world-size 2 --dist-backend gloo"
        " --dist-url $AZ_BATCHAI_PYTORCH_INIT_METHOD --rank $AZ_BATCHAI_TASK_INDEX",
        "communicationBackend": "gloo",
    }
    job = mpi_job(pairs["mpi-t4"], code, {"pyTorchSettings": settings})
    job["environmentVariables"] = [
        {"name": "PYTHONPATH", "value": str(torch_site)},
        # Dev only: every node is this one host, whose name may resolve to an address of
        # another interface; gloo joins over loopback, as the dev cluster's OpenMPI does.
        {"name": "GLOO_SOCKET_IFNAME", "value": "lo"},
    ]
    alice.job(workspace, "mpi", "pytorch", job)
    done = alice.wait_job(workspace, "mpi", "pytorch", timeout=240)["properties"]
    errs = [alice.read(workspace, "mpi", "pytorch", f"stderr-{r}.txt") for r in (0, 1)]
    assert done["executionState"] == "succeeded", (done["executionInfo"], errs)
    ranks = [json.loads(alice.read(workspace, "mpi", "pytorch", f"stdout-{r}.txt")) for r in (0, 1)]
    # Rank i wrote stdout-i.txt; one world of two, one rank per node, the allreduce whole.
    assert [r["rank"] for r in ranks] == [0, 1], ranks
    assert {r["size"] for r in ranks} == {2} and {r["sum"] for r in ranks} == {1.0}, ranks
    assert {r["backend"] for r in ranks} == {"gloo"}, ranks
    assert len({r["node"] for r in ranks}) == 2, ranks
