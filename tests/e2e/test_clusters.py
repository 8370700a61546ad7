"""Clusters on the real dev cluster through the real service: scaling, priorities, capacity."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from adapter.backends import CliBackend, LocalRunner, SlurmJob
from adapter.backends.slurm_options import SlurmOptions
from tests.cluster import sh
from tests.e2e.service import Api, CloudError, Service, counts

pytestmark = pytest.mark.slurm

ADMIN = {"adminUserName": "alice"}


def manual(n: int, option: str = "requeue") -> dict[str, Any]:
    return {"manual": {"targetNodeCount": n, "nodeDeallocationOption": option}}


def partition_of(api: Api, ws: str, name: str) -> str:
    """The Slurm partition behind a cluster (from Slurm, by the nodes bai reports)."""
    include = Path("/etc/slurm/bai/partitions.conf").read_text()
    found = [
        line.split()[0].split("=", 1)[1]
        for line in include.splitlines()
        if line.startswith(f"PartitionName={name}-")
    ]
    assert len(found) == 1, include
    return found[0]


def slurm_nodes_of(partition: str) -> list[str]:
    out = sh("sinfo", "-h", "-N", "-p", partition, "-o", "%N").stdout.split()
    return sorted(set(out))


def submit(partition: str, body: str, *, user: str = "alice", **given: Any) -> int:
    """A job as bai submits one: its options as data, and a script carrying them."""
    options = SlurmOptions(partition=partition, output="/dev/null", **given)
    script = "\n".join(["#!/bin/bash", *options.directives(), body, ""])
    return asyncio.run(CliBackend(LocalRunner()).submit_job(options, script, user=user))


def job(job_id: int) -> SlurmJob:
    jobs = asyncio.run(
        CliBackend(LocalRunner()).jobs(
            [
                line.split("=", 1)[1].split()[0]
                for line in Path("/etc/slurm/bai/partitions.conf").read_text().splitlines()
                if line.startswith("PartitionName=")
            ]
        )
    )
    return next(j for j in jobs if j.job_id == job_id)


def wait_job(job_id: int, cond: Any, timeout: float = 90) -> SlurmJob:
    import time

    deadline = time.monotonic() + timeout
    while True:
        j = job(job_id)
        if cond(j):
            return j
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} never reached the state: {j}")
        time.sleep(0.5)


TRAPPED_SLEEP = "trap 'echo notice' USR1\nsleep {secs} &\nwhile ! wait; do :; done"


@pytest.mark.ssh_subset
def test_dedicated_cluster_create_resize_delete_with_the_sdk(
    admin: Api, workspace: str, service: Any
) -> None:
    from azure.core.credentials import AccessToken
    from azure.mgmt.batchai import BatchAI, models

    class Token:
        def get_token(self, *scopes: str, **kw: Any) -> AccessToken:
            return AccessToken(service.token("root", admin=True), 2**31)

    assert admin.free_dedicated("a100x2") >= 2, "the test needs 2 free a100x2 nodes"
    client = BatchAI(
        Token(),
        admin.sub,
        base_url=service.url,
        connection_verify=service.ca,
        polling_interval=0.2,
        retry_total=0,
    )
    params = models.ClusterCreateParameters(
        vm_size="a100x2",
        scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=1)),
        user_account_settings=models.UserAccountSettings(admin_user_name="alice"),
    )
    # Any: the SDK types the fields only the server sets (provisioning_state, ...) as None.
    created: Any = client.clusters.begin_create(admin.rg, workspace, "ded", params).result()
    assert created.provisioning_state == "succeeded" and created.vm_priority == "dedicated"
    assert created.current_node_count == 1
    part = partition_of(admin, workspace, "ded")
    assert len(slurm_nodes_of(part)) == 1
    assert sh("scontrol", "show", "partition", part, "-o").stdout.count("PriorityTier=10") == 1

    client.clusters.update(
        admin.rg,
        workspace,
        "ded",
        models.ClusterUpdateParameters(
            scale_settings=models.ScaleSettings(
                manual=models.ManualScaleSettings(target_node_count=2)
            )
        ),
    )
    got: Any = client.clusters.get(admin.rg, workspace, "ded")  # Any: as `created`
    assert got.current_node_count == 2 and got.node_state_counts.idle_node_count == 2
    assert got.allocation_state == "steady"
    nodes = slurm_nodes_of(part)
    assert len(nodes) == 2 and all(n.startswith("gpu-a100-") for n in nodes)
    # The SDK says the listing yields ClusterListResult pages; it yields the clusters.
    listed: list[Any] = [*client.clusters.list_by_workspace(admin.rg, workspace)]
    assert [c.name for c in listed] == ["ded"]

    client.clusters.begin_delete(admin.rg, workspace, "ded").result()
    assert "ded-" not in Path("/etc/slurm/bai/partitions.conf").read_text()
    assert part not in sh("scontrol", "show", "partition", "-o").stdout
    with pytest.raises(Exception, match="ResourceNotFound|does not exist"):
        client.clusters.get(admin.rg, workspace, "ded")


def test_capacity_errors_create_nothing(admin: Api, workspace: str) -> None:
    free = admin.free_dedicated("a100x2")
    assert free >= 1
    before = Path("/etc/slurm/bai/partitions.conf").read_text()
    with pytest.raises(CloudError) as err:
        admin.cluster(
            workspace,
            "big",
            {"vmSize": "a100x2", "scaleSettings": manual(free + 1), "userAccountSettings": ADMIN},
        )
    assert err.value.status == 409 and err.value.error["code"] == "InsufficientCapacity"
    assert "lowpriority" in err.value.error["message"]
    assert err.value.error["target"] == "properties.scaleSettings.manual.targetNodeCount"
    with pytest.raises(CloudError) as missing:
        admin.get_cluster(workspace, "big")
    assert missing.value.status == 404
    assert Path("/etc/slurm/bai/partitions.conf").read_text() == before

    admin.cluster(
        workspace,
        "all",
        {"vmSize": "a100x2", "scaleSettings": manual(free), "userAccountSettings": ADMIN},
    )
    with pytest.raises(CloudError) as second:
        admin.cluster(
            workspace,
            "more",
            {"vmSize": "a100x2", "scaleSettings": manual(1), "userAccountSettings": ADMIN},
        )
    assert second.value.error["code"] == "InsufficientCapacity"
    with pytest.raises(CloudError) as grow:
        admin.scale(workspace, "all", manual(free + 1))
    assert grow.value.status == 409
    assert admin.get_cluster(workspace, "all")["properties"]["currentNodeCount"] == free

    auto = admin.cluster(
        workspace,
        "auto",
        {
            "vmSize": "a100x2",
            "userAccountSettings": ADMIN,
            "scaleSettings": {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 2}},
        },
    )
    assert [e["code"] for e in auto["properties"]["errors"]] == ["AutoScaleCapped"]
    assert auto["properties"]["currentNodeCount"] == 0
    # Low priority shares nodes with dedicated clusters: no capacity error.
    low = admin.cluster(
        workspace,
        "low",
        {
            "vmSize": "a100x2",
            "vmPriority": "lowpriority",
            "scaleSettings": manual(2),
            "userAccountSettings": ADMIN,
        },
    )
    assert low["properties"]["currentNodeCount"] == 2


@pytest.mark.parametrize(
    ("properties", "target", "says"),
    [
        (
            {"vmSize": "STANDARD_ND40", "scaleSettings": manual(1)},
            "properties.vmSize",
            "Known node types: a100x2",
        ),
        (
            {
                "vmSize": "t4x1",
                "scaleSettings": {"autoScale": {"minimumNodeCount": 3, "maximumNodeCount": 1}},
            },
            "properties.scaleSettings.autoScale",
            "make min <= max",
        ),
        (
            {
                "vmSize": "t4x1",
                "scaleSettings": {
                    **manual(1),
                    "autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 1},
                },
            },
            "properties.scaleSettings",
            "exactly one of manual",
        ),
        (
            {"vmSize": "t4x1", "scaleSettings": {"manual": {"targetNodeCount": "three"}}},
            "properties.scaleSettings.manual.targetNodeCount",
            "valid integer",
        ),
        (
            {"vmSize": "t4x1", "scaleSettings": manual(1), "vmPriorty": "lowpriority"},
            "properties.vmPriorty",
            "check its spelling",
        ),
        (
            {"vmSize": "t4x1", "scaleSettings": manual(1), "vmPriority": "cheap"},
            "properties.vmPriority",
            "dedicated",
        ),
        (
            {"vmSize": "t4x1", "scaleSettings": manual(-1)},
            "properties.scaleSettings.manual.targetNodeCount",
            "greater than or equal to 0",
        ),
        (
            {
                "vmSize": "t4x1",
                "scaleSettings": manual(1),
                "userAccountSettings": {"adminUserName": "nosuchuser"},
            },
            "properties.userAccountSettings.adminUserName",
            "not a Unix user",
        ),
        (
            {
                "vmSize": "t4x1",
                "scaleSettings": manual(1),
                "nodeSetup": {
                    "setupTask": {"commandLine": "true", "stdOutErrPathPrefix": "$(reboot)/x"}
                },
            },
            "properties.nodeSetup.setupTask.stdOutErrPathPrefix",
            "not a plain path",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    admin: Api, workspace: str, properties: dict[str, Any], target: str, says: str
) -> None:
    properties.setdefault("userAccountSettings", ADMIN)
    before = Path("/etc/slurm/bai/partitions.conf").read_text()
    with pytest.raises(CloudError) as err:
        admin.cluster(workspace, "bad", properties)
    assert err.value.status == 400, err.value.error
    assert err.value.error["target"] == target
    assert says in err.value.error["message"]
    with pytest.raises(CloudError) as missing:
        admin.get_cluster(workspace, "bad")
    assert missing.value.status == 404
    assert Path("/etc/slurm/bai/partitions.conf").read_text() == before


@pytest.mark.parametrize("name", ["has space", "x" * 65, "semi;colon"])
def test_bad_names_are_refused(admin: Api, workspace: str, name: str) -> None:
    with pytest.raises(CloudError) as err:
        admin.cluster(
            workspace,
            name,
            {"vmSize": "t4x1", "scaleSettings": manual(1), "userAccountSettings": ADMIN},
        )
    assert err.value.status == 400 and err.value.error["target"] == "clusterName"


def test_each_request_has_an_id_in_its_answer_and_its_log_line_and_no_token(
    service: Service, admin: Api, workspace: str
) -> None:
    path = admin.path("workspaces", workspace, "clusters", "missing")
    given = admin.http.get(
        path, params={"api-version": "2018-05-01"}, headers={"x-ms-client-request-id": "req-7"}
    )
    assert given.status_code == 404 and given.headers["x-ms-request-id"] == "req-7"
    fresh = admin.http.get(path, params={"api-version": "2018-05-01"})
    made = fresh.headers["x-ms-request-id"]
    assert made and made != "req-7"
    text = service.log.read_text()
    requests = [
        json.loads(line)
        for line in text.splitlines()
        if line.startswith("{") and '"event": "request"' in line
    ]
    for request_id in ("req-7", made):
        (line,) = [r for r in requests if r["request_id"] == request_id]
        assert line["path"] == path and line["status"] == 404 and line["method"] == "GET"
    token = admin.http.headers["Authorization"].removeprefix("Bearer ")
    assert token not in text


def test_non_admin_cannot_name_another_admin_user(alice: Api, workspace: str) -> None:
    with pytest.raises(CloudError) as err:
        alice.cluster(
            workspace,
            "c",
            {
                "vmSize": "t4x1",
                "scaleSettings": manual(1),
                "userAccountSettings": {"adminUserName": "bob"},
            },
        )
    assert err.value.status == 403


def test_low_priority_job_is_preempted_by_dedicated_work_on_a_shared_node(
    admin: Api, workspace: str
) -> None:
    low = admin.cluster(
        workspace,
        "low",
        {
            "vmSize": "t4x1",
            "vmPriority": "lowpriority",
            "scaleSettings": manual(2),
            "userAccountSettings": ADMIN,
        },
    )
    assert low["properties"]["currentNodeCount"] == 2
    ded = admin.cluster(
        workspace,
        "ded",
        {"vmSize": "t4x1", "scaleSettings": manual(1), "userAccountSettings": ADMIN},
    )
    assert ded["properties"]["currentNodeCount"] == 1
    low_part, ded_part = (
        partition_of(admin, workspace, "low"),
        partition_of(admin, workspace, "ded"),
    )
    (shared,) = slurm_nodes_of(ded_part)
    assert shared in slurm_nodes_of(low_part)
    low_part_line = sh("scontrol", "show", "partition", low_part, "-o").stdout
    assert "PreemptMode=REQUEUE" in low_part_line and "MaxTime=1-00:00:00" in low_part_line

    victim = submit(
        low_part,
        TRAPPED_SLEEP.format(secs=600),
        nodelist=shared,
        requeue=True,
        signal="USR1",
        signal_seconds=60,
    )
    wait_job(victim, lambda j: j.state == "RUNNING")
    # root's: the dedicated cluster is the admin's, in alice's workspace (bob may not use it).
    winner = submit(ded_part, "sleep 3", user="root")

    wait_job(winner, lambda j: j.state in {"RUNNING", "COMPLETED"} and j.nodes == (shared,))
    preempted = job(victim)
    assert preempted.restart_count == 1 and preempted.state in {"PENDING", "REQUEUED"}
    admin.wait_cluster(
        workspace, "ded", lambda p: counts(p)["running"] == 1 or job(winner).state == "COMPLETED"
    )


@pytest.mark.parametrize("option", ["requeue", "terminate", "waitforjobcompletion"])
def test_shrinking_honours_the_deallocation_option(admin: Api, workspace: str, option: str) -> None:
    assert admin.free_dedicated("a100x2") >= 2
    admin.cluster(
        workspace,
        "c",
        {"vmSize": "a100x2", "scaleSettings": manual(2, option), "userAccountSettings": ADMIN},
    )
    part = partition_of(admin, workspace, "c")
    secs = 8 if option == "waitforjobcompletion" else 600
    jobs = [submit(part, TRAPPED_SLEEP.format(secs=secs), exclusive=True) for _ in range(2)]
    placed = {j: wait_job(j, lambda x: x.state == "RUNNING").nodes for j in jobs}

    after = admin.scale(workspace, "c", manual(1, option))["properties"]

    (kept,) = slurm_nodes_of(part)
    (stays,) = [j for j in jobs if placed[j] == (kept,)]
    (moved,) = [j for j in jobs if j != stays]
    if option == "waitforjobcompletion":
        assert counts(after)["leaving"] == 1 and after["allocationState"] == "resizing"
        assert after["currentNodeCount"] == 2  # no new work goes to the leaving node
        assert job(moved).state == "RUNNING"
        done = admin.wait_cluster(workspace, "c", lambda p: p["allocationState"] == "steady")
        assert done["properties"]["currentNodeCount"] == 1
        assert all(wait_job(j, lambda x: x.finished).state == "COMPLETED" for j in jobs)
        return
    assert after["currentNodeCount"] == 1
    if option == "requeue":
        requeued = wait_job(moved, lambda x: x.restart_count == 1 and x.state != "COMPLETING")
        assert requeued.state in {"PENDING", "REQUEUED"}
    else:
        assert wait_job(moved, lambda x: x.finished).state == "CANCELLED"
    assert job(stays).state == "RUNNING" and job(stays).restart_count == 0


def test_autoscale_grows_while_jobs_wait_and_shrinks_back_to_zero(
    admin: Api, workspace: str
) -> None:
    created = admin.cluster(
        workspace,
        "auto",
        {
            "vmSize": "t4x1",
            "userAccountSettings": ADMIN,
            "scaleSettings": {
                "autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 2, "initialNodeCount": 1}
            },
        },
    )
    assert created["properties"]["currentNodeCount"] == 1
    part = partition_of(admin, workspace, "auto")
    jobs = [submit(part, "sleep 4", exclusive=True) for _ in range(2)]

    admin.wait_cluster(workspace, "auto", lambda p: p["currentNodeCount"] == 2)
    for j in jobs:
        assert wait_job(j, lambda x: x.finished).state == "COMPLETED"

    empty = admin.wait_cluster(workspace, "auto", lambda p: p["currentNodeCount"] == 0)
    assert empty["properties"]["allocationState"] == "steady"
    assert slurm_nodes_of(part) == []


@pytest.mark.ssh_subset
def test_setup_task_success_and_failure(
    admin: Api, workspace: str, shared_dir: Path, service: Any
) -> None:
    ok = admin.cluster(
        workspace,
        "ok",
        {
            "vmSize": "t4x1",
            "scaleSettings": manual(1),
            "userAccountSettings": ADMIN,
            "nodeSetup": {
                "setupTask": {
                    "commandLine": 'echo "hello $GREETING from $(id -un) at '
                    '$AZ_BATCHAI_MOUNT_ROOT"; test "$PASSWORD" = s3cret-value',
                    "environmentVariables": [{"name": "GREETING", "value": "it's me"}],
                    "secrets": [{"name": "PASSWORD", "value": "s3cret-value"}],
                    "stdOutErrPathPrefix": str(shared_dir),
                }
            },
        },
    )
    props = ok["properties"]
    assert props["nodeSetup"]["setupTask"]["secrets"] == [{"name": "PASSWORD", "value": None}]
    suffix = props["nodeSetup"]["setupTask"]["stdOutErrPathSuffix"]
    assert suffix.endswith(f"/workspaces/{workspace}/clusters/ok/" + suffix.rsplit("/", 1)[1])
    ready = admin.wait_cluster(workspace, "ok", lambda p: counts(p)["idle"] == 1)
    assert ready["properties"]["errors"] == []
    (node,) = slurm_nodes_of(partition_of(admin, workspace, "ok"))
    out = (shared_dir / suffix / f"stdout-{node}.txt").read_text()
    assert out == "hello it's me from alice at /mnt/batch/tasks/shared/LS_root/mounts\n"
    assert "s3cret-value" not in service.log.read_text()

    bad = admin.cluster(
        workspace,
        "bad",
        {
            "vmSize": "t4x1",
            "scaleSettings": manual(1),
            "userAccountSettings": ADMIN,
            "nodeSetup": {
                "setupTask": {
                    "commandLine": "echo broken >&2; exit 3",
                    "stdOutErrPathPrefix": str(shared_dir),
                }
            },
        },
    )
    failed = admin.wait_cluster(workspace, "bad", lambda p: counts(p)["unusable"] == 1)
    (error,) = failed["properties"]["errors"]
    assert error["code"] == "SetupTaskFailed"
    bad_node = error["details"][0]["value"]
    reason = sh("sinfo", "-h", "-n", bad_node, "-o", "%E").stdout.strip()
    assert reason.startswith("bai: setup task failed on cluster")
    suffix = bad["properties"]["nodeSetup"]["setupTask"]["stdOutErrPathSuffix"]
    assert (shared_dir / suffix / f"stderr-{bad_node}.txt").read_text() == "broken\n"

    admin.delete_cluster(workspace, "bad")
    assert sh("sinfo", "-h", "-n", bad_node, "-o", "%E").stdout.strip() in {"none", ""}


@pytest.mark.ssh_subset
def test_reconciler_restores_a_partition_slurm_lost(admin: Api, workspace: str) -> None:
    admin.cluster(
        workspace,
        "keep",
        {"vmSize": "t4x1", "scaleSettings": manual(1), "userAccountSettings": ADMIN},
    )
    part = partition_of(admin, workspace, "keep")
    nodes = slurm_nodes_of(part)
    include = Path("/etc/slurm/bai/partitions.conf")
    sh("/usr/local/sbin/bai-daemonctl", "stop", "slurmctld")
    # A site's config management rewrote the include file while slurmctld was down.
    include.write_text(
        "".join(
            line + "\n"
            for line in include.read_text().splitlines()
            if not line.startswith(f"PartitionName={part} ")
        )
    )
    assert sh("/usr/local/sbin/bai-daemonctl", "start", "slurmctld").returncode == 0
    assert part not in sh("scontrol", "show", "partition", "-o").stdout

    import time

    deadline = time.monotonic() + 30
    while slurm_nodes_of(part) != nodes:
        assert time.monotonic() < deadline, "the reconciler did not restore the partition"
        time.sleep(0.5)
    assert f"PartitionName={part} " in include.read_text()
    admin.wait_cluster(workspace, "keep", lambda p: counts(p)["idle"] == 1)
