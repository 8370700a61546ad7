"""A node's setup job: its Slurm options as data, the script that carries them, and the
service submitting the value (no script read back)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from adapter.backends.libslurm import job_desc_fields
from adapter.backends.slurm_options import SlurmOptions, check_script, script_directives
from adapter.clusters.plan import SETUP_COMMENT, reservation_name
from adapter.errors import BackendError
from adapter.scripts.setup_task import SetupJob, render_setup, setup_options
from tests.unit.clusters.factories import cluster, manual
from tests.unit.clusters.test_setup_secrets import FakeBackend, service, snap, stored

JOB = SetupJob(
    partition="c-1",
    node="gpu-t4-1",
    reservation="bai-setup-0b5a3f3e-gpu-t4-1",
    comment="bai-setup:0b5a3f3e:gpu-t4-1",
    output_dir="/shared/setup",
    mount_root="/mnt/batch",
    command_line="pip install -r requirements.txt",
    environment={"STAGE": "dev"},
    secrets_file="/var/lib/bai/spool/clusters/u/setup-secrets.env",
    ssh_public_key="ssh-ed25519 AAAA alice@laptop",
)
LIB = SimpleNamespace(NICE_OFFSET=0x80000000, JOB_SHARED_NONE=0, KILL_JOB_BATCH=1)


def test_a_setup_job_takes_its_whole_node_inside_the_nodes_reservation() -> None:
    assert setup_options(JOB) == SlurmOptions(
        job_name="bai-setup",
        partition="c-1",
        nodelist="gpu-t4-1",
        reservation="bai-setup-0b5a3f3e-gpu-t4-1",
        nodes=1,
        exclusive=True,
        comment="bai-setup:0b5a3f3e:gpu-t4-1",
        output="/dev/null",  # the script writes stdout-<node>.txt and stderr-<node>.txt itself
    )


@pytest.mark.parametrize(
    "job", [JOB, replace(JOB, output_dir=None, command_line=None, ssh_public_key=None)]
)
def test_the_setup_script_carries_its_options_as_its_sbatch_lines(job: SetupJob) -> None:
    options, script = render_setup(job)

    assert options == setup_options(job)
    check_script(options, script)  # what both backends require before submitting
    assert script_directives(script) == [
        "#SBATCH --job-name=bai-setup",
        "#SBATCH --partition=c-1",
        "#SBATCH --nodelist=gpu-t4-1",
        "#SBATCH --reservation=bai-setup-0b5a3f3e-gpu-t4-1",
        "#SBATCH --nodes=1",
        "#SBATCH --exclusive",
        "#SBATCH --comment=bai-setup:0b5a3f3e:gpu-t4-1",
        "#SBATCH --output=/dev/null",
    ]


def test_a_setup_script_carrying_other_options_is_refused() -> None:
    options, script = render_setup(JOB)

    with pytest.raises(BackendError):
        check_script(replace(options, reservation=None), script)


def test_the_in_process_path_fills_the_node_and_the_reservation_from_the_value() -> None:
    assert job_desc_fields(setup_options(JOB), LIB) == {
        "name": "bai-setup",
        "partition": "c-1",
        "req_nodes": "gpu-t4-1",
        "reservation": "bai-setup-0b5a3f3e-gpu-t4-1",
        "comment": "bai-setup:0b5a3f3e:gpu-t4-1",
        "std_out": "/dev/null",
        "min_nodes": 1,
        "max_nodes": 1,
        "shared": 0,
    }


async def test_the_service_submits_each_preparing_nodes_setup_options(tmp_path: Path) -> None:
    backend = FakeBackend()
    svc = service(tmp_path, backend)
    c = cluster(scale=manual(2), setup=True)
    svc.store.put_cluster(c)

    await svc.converge_all(snap())

    rows = stored(svc, c.uid).nodes
    assert {n: r.setup_job for n, r in rows.items()} == {"n1": 101, "n2": 102}
    sent = {options.nodelist: (options, user) for options, _, user in backend.submitted}
    for name in ("n1", "n2"):
        options, user = sent[name]
        assert user == "alice"  # the cluster's admin user
        assert options == SlurmOptions(
            job_name="bai-setup",
            partition=c.partition,
            nodelist=name,
            reservation=reservation_name(c, name),
            nodes=1,
            exclusive=True,
            comment=f"{SETUP_COMMENT}:{c.uid}:{name}",
            output="/dev/null",
        )
