"""GPU quotas through the official SDK (7.0.0), as bob, whose dev quota is 2 dedicated and 2
low-priority GPUs (ansible/inventories/dev/group_vars/all.yml, bai_quota_users)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapter.backends import CliBackend, LocalRunner
from adapter.backends.slurm_options import SlurmOptions
from tests.cluster import sh
from tests.e2e.service import Api, Service, bai_ok, sdk

pytestmark = pytest.mark.slurm

INCLUDE = Path("/etc/slurm/bai/partitions.conf")


@pytest.fixture
def bob(service: Service, admin: Api) -> Iterator[Api]:
    """bob in the admin fixture's resource group (cleaned up with it), with his own workspace."""
    api = Api(service, service.token("bob"), rg=admin.rg)
    api.workspace("quota")
    yield api
    api.close()


def usage_of(client: Any) -> dict[str, tuple[int, int]]:
    return {u.name.value: (u.current_value, u.limit) for u in client.usages.list("onprem")}


def params(vm_size: str, priority: str, scale: Any) -> Any:
    from azure.mgmt.batchai import models

    return models.ClusterCreateParameters(
        vm_size=vm_size,
        vm_priority=priority,
        scale_settings=scale,
        user_account_settings=models.UserAccountSettings(admin_user_name="bob"),
    )


def manual(n: int) -> Any:
    from azure.mgmt.batchai import models

    return models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=n))


def test_usages_show_bobs_use_and_limit_and_clusters_past_the_quota_fail(
    service: Service, bob: Api
) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.batchai import models

    client = sdk(service, "bob")
    before = usage_of(client)
    assert before.get("user bob's dedicated GPU quota") == (0, 2), (
        f"bob has no dedicated GPU quota of 2 in /etc/bai/bai.toml (dev group_vars): {before}"
    )
    assert before["a100x2 dedicated GPUs"] == (0, 2)  # the quota binds, not the 6 GPUs there are
    assert before["t4x1 low-priority GPUs"] == (0, 2)
    assert before["Total low-priority GPUs"] == (0, 2)
    assert before["a100x2 usable nodes"][1] == 3  # node counts are there as before

    with pytest.raises(HttpResponseError) as err:
        client.clusters.begin_create(
            bob.rg, "quota", "big", params("a100x2", "dedicated", manual(2))
        ).result()
    error = err.value.error
    assert error is not None and error.message is not None, err.value
    assert err.value.status_code == 409 and error.code == "QuotaExceeded"
    assert error.message.startswith("user bob's dedicated GPU quota is 2 GPU(s);")
    assert "would bring bob to 4" in error.message
    assert error.target == "properties.scaleSettings.manual.targetNodeCount"
    assert "big-" not in INCLUDE.read_text()  # nothing was made

    low = client.clusters.begin_create(
        bob.rg, "quota", "low", params("t4x1", "lowpriority", manual(1))
    ).result()
    assert low.current_node_count == 1
    after = usage_of(client)
    assert after["t4x1 low-priority GPUs"] == (1, 2)
    assert after["user bob's low-priority GPU quota"] == (1, 2)
    assert after["a100x2 low-priority GPUs"] == (0, 1)  # what the quota leaves
    table = bai_ok(service, service.token("bob"), bob.rg, "usage")
    (row,) = [line for line in table.splitlines() if "user bob's low-priority GPU quota" in line]
    assert [cell.strip() for cell in row.split("│")[2:4]] == ["1", "2"], table

    grow = models.ClusterUpdateParameters(scale_settings=manual(3))
    with pytest.raises(HttpResponseError) as resize:
        client.clusters.update(bob.rg, "quota", "low", grow)
    refused = resize.value.error
    assert refused is not None and refused.message is not None, resize.value
    assert resize.value.status_code == 409 and refused.code == "QuotaExceeded"
    assert "user bob's low-priority GPU quota is 2" in refused.message
    assert "would bring bob to 3" in refused.message
    assert client.clusters.get(bob.rg, "quota", "low").current_node_count == 1


def test_autoscale_growth_stops_at_the_quota_with_an_error_naming_it(
    service: Service, bob: Api
) -> None:
    from azure.mgmt.batchai import models

    client = sdk(service, "bob")
    name = f"auto{uuid.uuid4().hex[:4]}"
    scale = models.ScaleSettings(
        auto_scale=models.AutoScaleSettings(minimum_node_count=1, maximum_node_count=2)
    )
    created = client.clusters.begin_create(
        bob.rg, "quota", name, params("a100x2", "lowpriority", scale)
    ).result()
    assert created.current_node_count == 1 and created.errors == []
    (partition,) = [
        line.split()[0].split("=", 1)[1]
        for line in INCLUDE.read_text().splitlines()
        if line.startswith(f"PartitionName={name}-")
    ]
    # Two one-node jobs: one runs, the other waits for a second node, which is 2 more GPUs.
    jobs = [submit(partition) for _ in range(2)]
    try:
        capped = wait_for(client, bob.rg, name, lambda c: codes(c) == ["QuotaExceeded"])
        (entry,) = capped.errors
        assert "user bob's low-priority GPU quota is 2 GPU(s)" in entry.message
        assert "holds at most 1" in entry.message
        assert capped.current_node_count == 1

        sh("scancel", str(jobs[1]), check=True)  # no more demand: the entry goes
        cleared = wait_for(client, bob.rg, name, lambda c: codes(c) == [])
        assert cleared.current_node_count == 1
    finally:
        sh("scancel", *map(str, jobs))


def codes(cluster: Any) -> list[str]:
    return [e.code for e in cluster.errors or []]


def wait_for(client: Any, rg: str, name: str, cond: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        cluster = client.clusters.get(rg, "quota", name)
        if cond(cluster):
            return cluster
        assert time.monotonic() < deadline, f"cluster {name} never got there: {cluster.errors}"
        time.sleep(0.5)


def submit(partition: str) -> int:
    options = SlurmOptions(partition=partition, output="/dev/null", exclusive=True)
    script = "\n".join(["#!/bin/bash", *options.directives(), "sleep 120", ""])
    return asyncio.run(CliBackend(LocalRunner()).submit_job(options, script, user="bob"))
