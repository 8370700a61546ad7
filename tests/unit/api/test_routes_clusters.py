"""The cluster routes over the real services and FakeSlurm: create, read, resize, SSH
coordinates and delete change the cluster's partition; another user's cluster is a missing one;
a bad body is a 400 that names its field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapter.backends.base import SlurmPartition
from tests.unit.api.apps import error_of
from tests.unit.services.api_site import ApiSite, api_site, path
from tests.unit.services.site import A100, cluster_properties, job_properties

CLUSTER = path("workspaces", "ws", "clusters", "c1")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiSite]:
    """alice's workspace `ws` with experiment `exp`, no cluster yet."""
    async with api_site(tmp_path) as api:
        await api.alice.ok("PUT", path("workspaces", "ws"), {"location": "eastus"})
        await api.alice.ok("PUT", path("workspaces", "ws", "experiments", "exp"))
        yield api


async def partitions(api: ApiSite) -> dict[str, SlurmPartition]:
    return {p.name: p for p in await api.site.slurm.partitions()}


def counts(cluster: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in cluster["properties"]["nodeStateCounts"].items() if v}


async def test_a_cluster_made_resized_and_deleted_through_the_api(api: ApiSite) -> None:
    alice, site = api.alice, api.site
    made = await alice.ok("PUT", CLUSTER, {"properties": cluster_properties("alice", nodes=2)})
    props = made["properties"]
    assert (props["provisioningState"], props["allocationState"]) == ("succeeded", "steady")
    assert (props["currentNodeCount"], counts(made)) == (2, {"idleNodeCount": 2})
    (partition,) = (await partitions(api)).values()
    assert partition.nodes == A100[:2]

    # A job runs on one node: the other is idle.
    job = {"properties": job_properties(made["id"], site.root)}
    await alice.ok("PUT", path("workspaces", "ws", "experiments", "exp", "jobs", "j1"), job)
    site.slurm.schedule()
    await site.reconcile()
    assert counts(await alice.ok("GET", CLUSTER)) == {"idleNodeCount": 1, "runningNodeCount": 1}

    logins = await alice.ok("POST", CLUSTER + "/listRemoteLoginInformation")
    assert logins["value"] == [
        {"nodeId": "gpu-a100-1", "ipAddress": "127.0.1.1", "port": 22},
        {"nodeId": "gpu-a100-2", "ipAddress": "127.0.1.2", "port": 22},
    ]

    scale = {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 3}}}}
    grown = await alice.ok("PATCH", CLUSTER, scale)
    assert grown["properties"]["currentNodeCount"] == 3
    assert (await partitions(api))[partition.name].nodes == A100

    deleted = await alice.call("DELETE", CLUSTER)
    assert deleted.status_code == 202, deleted.text
    assert (await partitions(api))[partition.name].state == "DRAIN"
    await site.reconcile()
    assert (await alice.call("GET", CLUSTER)).status_code == 404
    assert await partitions(api) == {}
    status = await alice.ok("GET", deleted.headers["azure-asyncoperation"])
    assert status["status"] == "Succeeded"
    listed = await alice.ok("GET", path("workspaces", "ws", "clusters"))
    assert listed["value"] == []


async def test_another_users_cluster_answers_exactly_as_a_missing_one(api: ApiSite) -> None:
    await api.alice.ok("PUT", CLUSTER, {"properties": cluster_properties("alice")})
    before = await partitions(api)
    missing = CLUSTER.replace("/workspaces/ws/", "/workspaces/nows/")
    scale = {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 0}}}}
    for method, suffix, body in [
        ("GET", "", None),
        ("PATCH", "", scale),
        ("POST", "/listRemoteLoginInformation", None),
        ("DELETE", "", None),
    ]:
        hidden = await api.bob.call(method, CLUSTER + suffix, body)
        absent = await api.bob.call(method, missing + suffix, body)
        assert hidden.status_code == absent.status_code == 404, (method, hidden.text)
        assert hidden.text == absent.text.replace("nows", "ws"), method
    assert await partitions(api) == before  # nothing of alice's changed


@pytest.mark.parametrize(
    ("properties", "status", "field", "says"),
    [
        ({"vmSize": "STANDARD_NC6"}, 400, "properties.vmSize", "Known node types: a100x2"),
        ({"scaleSettings": {}}, 400, "properties.scaleSettings", "exactly one of manual"),
        ({"vmPriority": "spot"}, 400, "properties.vmPriority", "properties.vmPriority"),
        (
            {"userAccountSettings": {"adminUserName": "bob"}},
            403,  # only an admin may name another user
            "properties.userAccountSettings.adminUserName",
            "'bob'",
        ),
        (
            {"scaleSettings": {"manual": {"targetNodeCount": 4}}},
            409,  # InsufficientCapacity: the body is fine, the site too small
            "properties.scaleSettings.manual.targetNodeCount",
            "needs 4 a100x2 node(s)",
        ),
    ],
)
async def test_a_bad_body_is_refused_naming_the_field(
    api: ApiSite, properties: dict[str, Any], status: int, field: str, says: str
) -> None:
    body = {"properties": {**cluster_properties("alice"), **properties}}
    answer = await api.alice.call("PUT", CLUSTER, body)
    assert answer.status_code == status, answer.text
    error = error_of(answer)
    assert error["target"] == field and says in error["message"], error
    assert await partitions(api) == {}
    assert (await api.alice.call("GET", CLUSTER)).status_code == 404
