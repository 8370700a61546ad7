"""The six public Batch AI recipes run unchanged on the dev cluster.

Each recipe's job.json only gains the cluster reference and has its storage account placeholder
filled in. The scripts it names are stand-ins (tests/e2e/recipes/) that check what the real
framework would need (ranks, world size, host lists, TF_CONFIG, a reachable init method and
parameter server, writable output directories) and fail the job otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.service import Api

pytestmark = pytest.mark.slurm

RECIPES = Path(__file__).resolve().parents[1] / "fixtures" / "batchai-recipes"
STANDINS = Path(__file__).parent / "recipes"
STORAGE = Path("/var/lib/bai/dev-storage")
ACCOUNT = "recipes"


@pytest.fixture(scope="module")
def recipe_storage() -> Iterator[Path]:
    """The `recipes` storage account: stand-in scripts in `scripts`, MNIST-like data in `data`."""
    root = STORAGE / ACCOUNT
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    root.chmod(0o1777)  # the jobs' users create the logs and external shares on first use
    for framework in ("cntk", "chainer", "horovod", "pytorch", "tensorflow"):
        target = root / "scripts" / framework
        target.mkdir(parents=True)
        for script in [*(STANDINS / framework).glob("*.py"), STANDINS / "standin.py"]:
            shutil.copy(script, target / script.name)
    data = root / "data" / "mnist_data"
    data.mkdir(parents=True)
    (data / "Train-28x28_cntk_text.txt").write_text("|labels 1 0 |features 0 0\n")
    for path in [root / "scripts", root / "data", *root.glob("*/*"), *root.glob("*/*/*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def recipe(name: str, cluster_id: str) -> dict[str, Any]:
    text = (RECIPES / f"{name}.job.json").read_text()
    body: dict[str, Any] = json.loads(text.replace("<AZURE_BATCHAI_STORAGE_ACCOUNT>", ACCOUNT))
    body["properties"]["cluster"] = {"id": cluster_id}
    return body


@pytest.fixture
def nc6(alice: Api, workspace: str, recipe_storage: Path) -> str:
    """Two NC6-like nodes (t4x1, one GPU each) with the `external` share the Horovod recipe
    writes its model to, mounted at cluster level as Batch AI recipe clusters had it."""
    alice.cluster(
        workspace,
        "nc6",
        {
            "vmSize": "STANDARD_NC6",
            "vmPriority": "lowpriority",
            "scaleSettings": {"manual": {"targetNodeCount": 2}},
            "userAccountSettings": {"adminUserName": "alice"},
            "nodeSetup": {
                "mountVolumes": {
                    "azureFileShares": [
                        {
                            "azureFileUrl": f"https://{ACCOUNT}.file.core.windows.net/external",
                            "relativeMountPath": "external",
                        }
                    ]
                }
            },
        },
    )
    alice.experiment(workspace, "recipes")
    return alice.path("workspaces", workspace, "clusters", "nc6")


def run(alice: Api, workspace: str, name: str, cluster: str) -> dict[str, Any]:
    job_name = name.split("_", 1)[1].lower().replace(".", "-")[:40]
    body = recipe(name, cluster)
    alice.call("PUT", alice.job_path(workspace, "recipes", job_name), body)
    done = alice.wait_job(workspace, "recipes", job_name, timeout=180)["properties"]
    files = alice.files(workspace, "recipes", job_name)
    if done["executionState"] != "succeeded":
        logs = {
            f: alice.read(workspace, "recipes", job_name, f) for f in files if f.startswith("std")
        }
        uid = done["jobOutputDirectoryPathSegment"].rsplit("/", 1)[1]
        spool = Path("/var/lib/bai/spool/jobs") / uid
        logs |= {p.name: p.read_text() for p in spool.glob("*.out")}
        logs |= {p.name: p.read_text() for p in spool.glob("*error*")}
        raise AssertionError(f"{name} failed: {done['executionInfo']}\n{logs}")
    return {"props": done, "files": files, "name": job_name}


def outputs(alice: Api, workspace: str, job: str, directory_id: str) -> set[str]:
    items = alice.call(
        "POST",
        alice.job_path(workspace, "recipes", job, "listOutputFiles"),
        outputdirectoryid=directory_id,
    ).json()["value"]
    return {i["name"] for i in items}


def reports(alice: Api, workspace: str, job: str, file: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in alice.read(workspace, "recipes", job, file).splitlines()
        if line.startswith("{")
    ]


def test_cntk_gpu_python(alice: Api, workspace: str, nc6: str) -> None:
    job = run(alice, workspace, "CNTK_CNTK-GPU-Python", nc6)
    assert job["props"]["toolType"] == "cntk"
    assert "ConvNet_MNIST.model" in outputs(alice, workspace, job["name"], "MODEL")
    assert reports(alice, workspace, job["name"], "stdout.txt") == [
        {"framework": "cntk", "rank": 0, "world": 1}
    ]
    log = alice.read(workspace, "recipes", job["name"], "execution.log")
    assert "image_not_used" in log  # the dev cluster runs images on the host


def test_chainer_gpu_distributed(alice: Api, workspace: str, nc6: str) -> None:
    job = run(alice, workspace, "Chainer_Chainer-GPU-Distributed", nc6)
    assert job["props"]["chainerSettings"]["processCount"] == 2
    assert outputs(alice, workspace, job["name"], "MODEL") == {"rank-0.npz", "rank-1.npz"}
    ranks = reports(alice, workspace, job["name"], "stdout.txt")
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    assert sorted(ranks[0]["hosts"]) == ["127.0.1.11", "127.0.1.12"]


def test_horovod_pytorch(alice: Api, workspace: str, nc6: str) -> None:
    job = run(alice, workspace, "Horovod_Horovod-PyTorch", nc6)
    assert "checkpoint.pt" in outputs(alice, workspace, job["name"], "MODEL")
    prep = alice.read(workspace, "recipes", job["name"], "stdout-job_prep.txt")
    assert prep.count("stand-in for the container image's pip: install horovod") == 2  # 2 nodes
    assert sorted(r["rank"] for r in reports(alice, workspace, job["name"], "stdout.txt")) == [0, 1]


def test_pytorch_gpu_distributed_gloo(alice: Api, workspace: str, nc6: str) -> None:
    job = run(alice, workspace, "PyTorch_PyTorch-GPU-Distributed-Gloo", nc6)
    assert job["props"]["toolType"] == "pytorch"
    for rank in (0, 1):
        assert reports(alice, workspace, job["name"], f"stdout-{rank}.txt") == [
            {"framework": "pytorch", "rank": rank, "world": 2}
        ]


def test_tensorflow_gpu_distributed(alice: Api, workspace: str, nc6: str) -> None:
    job = run(alice, workspace, "TensorFlow_TensorFlow-GPU-Distributed", nc6)
    files = job["files"]
    assert {"stdout-wk-0.txt", "stdout-wk-1.txt", "stdout-ps-0.txt"} <= set(files)
    master = reports(alice, workspace, job["name"], "stdout-wk-0.txt")[0]
    worker = reports(alice, workspace, job["name"], "stdout-wk-1.txt")[0]
    ps = reports(alice, workspace, job["name"], "stdout-ps-0.txt")[0]
    # Batch AI's placement: ps 2222 on the first node, the worker next to it 2223.
    assert ps["address"] == "127.0.1.11:2222" and master["address"] == "127.0.1.11:2223"
    assert worker["address"] == "127.0.1.12:2222" and master["role"] == "master"
    for directory in ("MODEL", "TENSORBOARD"):
        outputs(alice, workspace, job["name"], directory)  # listable: they were created


def test_tensorflow_gpu_single(alice: Api, workspace: str, nc6: str) -> None:
    job = run(alice, workspace, "TensorFlow_TensorFlow-GPU", nc6)
    assert reports(alice, workspace, job["name"], "stdout-wk-0.txt") == [
        {"framework": "tensorflow", "index": 0, "role": "master"}
    ]
