"""Golden sbatch scripts: one fixed job per toolkit shape, compared byte for byte.

The rendered scripts live in tests/unit/jobs/golden/<name>.sh. After an intended change to the
renderer, regenerate them with BAI_REGEN_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapter.jobs.launch import Launch, Runtime, launch_for
from adapter.jobs.layout import JobLayout, build_layout, job_segment
from adapter.jobs.script import JobScript, render_job_script
from adapter.settings import Settings

GOLDEN = Path(__file__).parent / "golden"
REGEN = "BAI_REGEN_GOLDEN"

UID = "0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
JOB_ROOT = "/mnt/batch/tasks/shared/LS_root/jobs"
SPOOL_ROOT = "/var/lib/bai/spool"
ADDRESSES = {"gpu-a100-1": "10.0.0.1", "gpu-a100-2": "10.0.0.2"}
# The defaults of settings.jobs, on nodes of 8 CPUs.
RUNTIME = Runtime(mpirun=Settings().jobs.mpirun, cpus=8)


def layout(
    outputs: list[dict[str, str]] | None = None, inputs: list[dict[str, str]] | None = None
) -> JobLayout:
    return build_layout(
        segment=job_segment("sub0", "rg", "ws", "exp", "job1", UID),
        uid=UID,
        job_root=JOB_ROOT,
        spool_root=SPOOL_ROOT,
        cluster_mount_root=f"{JOB_ROOT}/{UID}/cluster-mounts",
        std_out_err_prefix="$AZ_BATCHAI_MOUNT_ROOT/afs",
        outputs=outputs or [],
        inputs=inputs or [],
    )


def launch(
    tool: str,
    settings: dict[str, Any],
    lay: JobLayout,
    *,
    nodes: int,
    gpus: int,
    runtime: Runtime = RUNTIME,
    image: bool = False,
) -> Launch:
    return launch_for(
        tool,
        settings,
        nodes=nodes,
        gpus=gpus,
        variables=lay.variables(),
        runtime=runtime,
        container=False,
        image=image,
        field="properties.toolkitSettings",
    )


def base(lay: JobLayout, the_launch: Launch, **changes: Any) -> JobScript:
    job = JobScript(
        title="rg/ws/exp/job1",
        uid=UID,
        name="job1",
        partition="c1-012345",
        nodes=1,
        gpu_type="a100",
        gpus_per_node=2,
        time_limit_minutes=7 * 24 * 60,
        capped=False,
        priority="normal",
        low_priority=False,
        grace_seconds=60,
        layout=lay,
        environment=[("LEARNING_RATE", "0.01")],
        secrets_file=None,
        plan_file=f"{lay.spool}/plan.json",
        node_addresses={"gpu-a100-1": "10.0.0.1"},
        launch=the_launch,
        job_preparation=None,
    )
    return replace(job, **changes)


def custom() -> JobScript:
    lay = layout(
        outputs=[
            {"id": "model", "pathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/afs", "pathSuffix": "models"},
            {"id": "LOGS", "pathPrefix": "${AZ_BATCHAI_JOB_MOUNT_ROOT}/logs"},
        ],
        inputs=[{"id": "DATA", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data/mnist"}],
    )
    settings = {"commandLine": 'echo "hello $USER"; python train.py --out $AZ_BATCHAI_OUTPUT_MODEL'}
    return base(lay, launch("custom", settings, lay, nodes=1, gpus=2), gpu_type=None)


def pytorch() -> JobScript:
    lay = layout()
    settings = {
        "pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/mnist.py",
        "commandLineArgs": "--epochs 3 --dist-url $AZ_BATCHAI_PYTORCH_INIT_METHOD",
        "communicationBackend": "nccl",
    }
    return base(
        lay,
        launch("pytorch", settings, lay, nodes=2, gpus=2),
        nodes=2,
        node_addresses=ADDRESSES,
        priority="high",
    )


def tensorflow_distributed() -> JobScript:
    lay = layout()
    settings = {
        "pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/tf/mnist_replica.py",
        "masterCommandLineArgs": "--job_name=worker --task_index=0",
        "workerCommandLineArgs": "--job_name=worker --task_index=$AZ_BATCHAI_TASK_INDEX",
        "parameterServerCommandLineArgs": "--job_name=ps --task_index=$AZ_BATCHAI_TASK_INDEX",
        "parameterServerCount": 1,
        "workerCount": 2,
    }
    return base(
        lay,
        launch("tensorflow", settings, lay, nodes=2, gpus=2),
        nodes=2,
        node_addresses=ADDRESSES,
    )


def tensorflow_single() -> JobScript:
    lay = layout()
    settings = {
        "pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/tf/mnist.py",
        "pythonInterpreterPath": "/usr/bin/python3",
        "masterCommandLineArgs": "--data $AZ_BATCHAI_INPUT_DATA",
    }
    return base(lay, launch("tensorflow", settings, lay, nodes=1, gpus=2))


def horovod() -> JobScript:
    lay = layout()
    settings = {
        "pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/hvd/train.py",
        "commandLineArgs": "--batch-size 64",
        "processCount": 4,
    }
    return base(
        lay,
        launch("horovod", settings, lay, nodes=2, gpus=2),
        nodes=2,
        node_addresses=ADDRESSES,
    )


def custom_mpi() -> JobScript:
    lay = layout()
    settings = {
        "commandLine": "$AZ_BATCHAI_JOB_MOUNT_ROOT/bin/mpi_hello --rounds 5",
        "processCount": 3,
    }
    return base(
        lay,
        launch("custommpi", settings, lay, nodes=2, gpus=2),
        nodes=2,
        node_addresses=ADDRESSES,
    )


def chainer_mpirun_inputs() -> JobScript:
    """Chainer through the site's mpirun, with more ranks per node than CPUs, and its script
    named by an input directory's variable."""
    lay = layout(inputs=[{"id": "SCRIPTS", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/code"}])
    settings = {
        "pythonScriptFilePath": "$AZ_BATCHAI_INPUT_SCRIPTS/train_mnist.py",
        "commandLineArgs": "--communicator naive",
        "processCount": 6,
    }
    runtime = replace(RUNTIME, mpirun_toolkits=frozenset({"chainer"}), cpus=2)
    return base(
        lay,
        launch("chainer", settings, lay, nodes=2, gpus=2, runtime=runtime),
        nodes=2,
        node_addresses=ADDRESSES,
    )


def horovod_overcommit_python() -> JobScript:
    """srun with more tasks per node than CPUs, and an operator's interpreter."""
    lay = layout()
    settings = {
        "pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/hvd/train.py",
        "processCount": 6,
    }
    runtime = replace(RUNTIME, cpus=2, python="/opt/conda/bin/python")
    return base(
        lay,
        launch("horovod", settings, lay, nodes=2, gpus=2, runtime=runtime),
        nodes=2,
        node_addresses=ADDRESSES,
    )


def caffe2() -> JobScript:
    lay = layout()
    settings = {
        "pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/caffe2/resnet50_trainer.py",
        "commandLineArgs": "--num_shards 2 --shard_id $AZ_BATCHAI_TASK_INDEX",
    }
    return base(
        lay, launch("caffe2", settings, lay, nodes=2, gpus=2), nodes=2, node_addresses=ADDRESSES
    )


def cntk_brainscript() -> JobScript:
    lay = layout()
    settings = {
        "configFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/cntk/ConvNet_MNIST.cntk",
        "commandLineArgs": "rootDir=. dataDir=$AZ_BATCHAI_INPUT_DATA",
        "processCount": 2,
    }
    return base(
        lay, launch("cntk", settings, lay, nodes=2, gpus=2), nodes=2, node_addresses=ADDRESSES
    )


def low_priority_capped() -> JobScript:
    lay = layout(outputs=[{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/afs"}])
    settings = {"commandLine": "python $AZ_BATCHAI_JOB_MOUNT_ROOT/train.py"}
    return base(
        lay,
        launch("custom", settings, lay, nodes=1, gpus=1),
        partition="lowc-6789ab",
        gpu_type="t4",
        gpus_per_node=1,
        time_limit_minutes=24 * 60,
        capped=True,
        priority="low",
        low_priority=True,
        grace_seconds=30,
        secrets_file=f"{lay.spool}/secrets.env",
        plan_file=f"{lay.spool}/plan.json",
        user_volumes=True,
        node_addresses={"gpu-t4-1": "10.0.1.11"},
        job_preparation="apt-get install -y jq && pip install -r requirements.txt",
        image_not_used="tensorflow/tensorflow:1.15.0-gpu-py3",
        host_path=("/opt/bai/host-bin", "/opt/bai/python/bin"),
    )


CASES: dict[str, Callable[[], JobScript]] = {
    "custom": custom,
    "pytorch": pytorch,
    "tensorflow_distributed": tensorflow_distributed,
    "tensorflow_single": tensorflow_single,
    "horovod": horovod,
    "custom_mpi": custom_mpi,
    "chainer_mpirun_inputs": chainer_mpirun_inputs,
    "horovod_overcommit_python": horovod_overcommit_python,
    "caffe2": caffe2,
    "cntk_brainscript": cntk_brainscript,
    "low_priority_capped": low_priority_capped,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_script(name: str) -> None:
    rendered = render_job_script(CASES[name]())
    path = GOLDEN / f"{name}.sh"
    if os.environ.get(REGEN) == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(rendered)
    how = (
        f"set the environment variable {REGEN}=1 and rerun to regenerate it "
        f"({REGEN}=1 .venv/bin/pytest tests/unit/jobs/test_golden.py), then review the diff"
    )
    assert path.exists(), f"{path} is missing: {how}"
    expected = path.read_text()
    assert rendered == expected, f"the rendered script differs from {path}: {how}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_script_is_valid_bash(name: str) -> None:
    rendered = render_job_script(CASES[name]())
    result = subprocess.run(["bash", "-n"], input=rendered, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_golden_scripts_are_deterministic() -> None:
    for make in CASES.values():
        assert render_job_script(make()) == render_job_script(make())


def test_no_stray_golden_files() -> None:
    """Every file in golden/ belongs to a case (a renamed case must not leave its old file)."""
    assert sorted(p.stem for p in GOLDEN.glob("*.sh")) == sorted(CASES)
