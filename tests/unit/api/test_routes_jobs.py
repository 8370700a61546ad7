"""The job routes over the real services and FakeSlurm: a workspace, a cluster and a job made,
read, listed, terminated and deleted through the API; another user's job is a missing one;
a bad body is a 400 that names its field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.api.apps import error_of
from tests.unit.services.api_site import ApiSite, Caller, api_site, path
from tests.unit.services.site import cluster_properties, job_properties

JOB = path("workspaces", "ws", "experiments", "exp", "jobs", "j1")
CLUSTER_ID = path("workspaces", "ws", "clusters", "c1")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiSite]:
    """alice's workspace `ws` with experiment `exp` and a one-node a100x2 cluster `c1`."""
    async with api_site(tmp_path) as api:
        alice = api.alice
        await alice.ok("PUT", path("workspaces", "ws"), {"location": "eastus"})
        await alice.ok("PUT", path("workspaces", "ws", "experiments", "exp"))
        body = {"properties": cluster_properties("alice")}
        await alice.ok("PUT", path("workspaces", "ws", "clusters", "c1"), body)
        yield api


def job_body(api: ApiSite, **extra: Any) -> dict[str, Any]:
    return {"properties": job_properties(CLUSTER_ID, api.site.root, **extra)}


async def job_state(caller: Caller) -> tuple[str, dict[str, Any]]:
    props = (await caller.ok("GET", JOB))["properties"]
    return props["executionState"], props["executionInfo"]


async def test_a_job_made_read_and_listed_follows_slurm(api: ApiSite) -> None:
    alice, slurm = api.alice, api.site.slurm
    made = await alice.ok("PUT", JOB, job_body(api))
    assert (made["name"], made["properties"]["executionState"]) == ("j1", "queued")
    assert made["properties"]["toolType"] == "custom"
    assert made["properties"]["cluster"]["id"] == CLUSTER_ID
    (sent,) = slurm.submitted
    assert sent.user == "alice"

    listed = await alice.ok("GET", path("workspaces", "ws", "experiments", "exp", "jobs"))
    assert [j["name"] for j in listed["value"]] == ["j1"]

    slurm.start(sent.job_id)
    await api.site.reconcile()
    state, info = await job_state(alice)
    assert state == "running" and info["startTime"] is not None

    api.site.write_log(api.site.stored("j1"), {"event": "start"}, {"event": "end", "exit": 0})
    slurm.finish(sent.job_id, 0)
    await api.site.reconcile()
    state, info = await job_state(alice)
    assert (state, info["exitCode"], info["errors"], info["preemptionCount"]) == (
        "succeeded",
        0,
        [],
        0,
    )


async def operation_status(caller: Caller, location: str) -> str:
    status = await caller.ok("GET", location)
    return str(status["status"])


async def test_terminate_then_delete(api: ApiSite) -> None:
    alice, slurm = api.alice, api.site.slurm
    await alice.ok("PUT", JOB, job_body(api))
    (sent,) = slurm.submitted
    slurm.start(sent.job_id)
    await api.site.reconcile()

    answer = await alice.call("POST", JOB + "/terminate")
    assert answer.status_code == 202, answer.text
    status_url = answer.headers["azure-asyncoperation"]
    assert await operation_status(alice, status_url) == "InProgress"
    assert (await job_state(alice))[0] == "terminating"
    assert slurm.cancelled == [sent.job_id]

    await api.site.reconcile()
    state, info = await job_state(alice)
    assert (state, [e["code"] for e in info["errors"]]) == ("failed", ["JobTerminated"])
    assert await operation_status(alice, status_url) == "Succeeded"
    assert (await alice.call("POST", JOB + "/terminate")).status_code == 200  # nothing to do

    deleted = await alice.call("DELETE", JOB)
    assert deleted.status_code in {200, 202}, deleted.text
    gone = await alice.call("GET", JOB)
    assert gone.status_code == 404
    assert error_of(gone) == {
        "code": "ResourceNotFound",
        "message": "job rg/ws/exp/j1 does not exist",
        "target": "jobName",
    }
    if deleted.status_code == 202:
        assert await operation_status(alice, deleted.headers["azure-asyncoperation"]) == (
            "Succeeded"
        )


async def test_another_users_job_answers_exactly_as_a_missing_one(api: ApiSite) -> None:
    await api.alice.ok("PUT", JOB, job_body(api))
    (sent,) = api.site.slurm.submitted
    missing = JOB.replace("/workspaces/ws/", "/workspaces/nows/")
    for method, suffix in [("GET", ""), ("POST", "/terminate"), ("DELETE", "")]:
        hidden = await api.bob.call(method, JOB + suffix)
        absent = await api.bob.call(method, missing + suffix)
        assert hidden.status_code == absent.status_code == 404, (method, hidden.text)
        assert hidden.text == absent.text.replace("nows", "ws"), method
    listing = await api.bob.call("GET", path("workspaces", "ws", "experiments", "exp", "jobs"))
    assert listing.status_code == 404
    # bob's attempts changed nothing of alice's.
    assert api.site.slurm.cancelled == [] and api.site.slurm.job(sent.job_id).state == "PENDING"
    assert (await job_state(api.alice))[0] == "queued"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"nodeCount": "many"}, "properties.nodeCount"),
        ({"nodeCount": 0}, "properties.nodeCount"),
        ({"cluster": None}, "properties.cluster"),
        ({"cluster": {"id": "c1"}}, "properties.cluster.id"),
        ({"constraints": {"maxWallClockTime": "a week"}}, "properties.constraints"),
        ({"nodeCount": 2}, "properties.nodeCount"),  # more than the cluster can ever have
    ],
)
async def test_a_bad_body_is_a_400_that_names_the_field(
    api: ApiSite, change: dict[str, Any], field: str
) -> None:
    body = job_body(api)
    body["properties"].update(change)
    answer = await api.alice.call("PUT", JOB, body)
    assert answer.status_code == 400, answer.text
    error = error_of(answer)
    assert error["target"].startswith(field), error
    assert field in error["message"], error
    assert api.site.slurm.submitted == []
    assert (await api.alice.call("GET", JOB)).status_code == 404


async def test_every_request_needs_the_api_version_and_a_token(api: ApiSite) -> None:
    http = api.alice.http
    unversioned = await http.get(JOB, headers={"Authorization": f"Bearer {api.alice.token}"})
    assert unversioned.status_code == 400
    assert error_of(unversioned)["target"] == "api-version"
    anonymous = await http.get(JOB, params={"api-version": "2018-05-01"})
    assert anonymous.status_code == 401
