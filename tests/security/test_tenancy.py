"""Tenancy on the real service and cluster: bob against alice's workspace on every route of the
app, alice sharing with her team (ml-team: alice and carol) through the SDK and the CLI, and
Slurm holding the same line for plain sbatch into bai's partitions."""

from __future__ import annotations

import grp
import pwd
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from adapter.api.app import build_services, create_app
from adapter.backends import CliBackend, LocalRunner
from adapter.settings import Settings
from tests.cluster import sh
from tests.e2e.conftest import storage_dir
from tests.e2e.service import Api, CloudError, Service, bai, sdk
from tests.e2e.test_clusters import partition_of
from tests.security.conftest import as_user, spec

OTHER_SUB = "11111111-2222-3333-4444-555555555555"  # nobody's: its names are all missing
SHARE = "bai-groups"
# Routes that name no resource of a user's, and why each is safe without the owner check.
UNSCOPED = {
    "/providers/Microsoft.BatchAI/operations": "the static list of operation names",
    "/subscriptions/{sub}/providers/Microsoft.BatchAI/locations/{location}/usages": (
        "the caller's own use and limits"
    ),
    "/bai/files/{path:path}": "a signed URL: the signature is the permission (test_job_files)",
    "/metrics": "operator metrics behind their own token",
    "/bai/sbatch": (
        "-p is looked up among the caller's own clusters: another's is an invalid partition, "
        "word for word (test_sbatch.py in tests/e2e)"
    ),
    "/bai/sbatch/{uid}": "a prepared job answers its owner alone, else a 404 (test_sbatch.py)",
}


@dataclass
class Estate:
    """alice's workspace with an experiment, a cluster, a finished job and an operation."""

    rg: str
    ws: str
    exp: str
    cluster: str
    job: str
    op_id: str
    cluster_id: str
    partition: str
    out: Path


@pytest.fixture(scope="module")
def estate(service: Service) -> Iterator[Estate]:
    admin = Api(service, service.token("root", admin=True))
    alice = Api(service, service.token("alice"), rg=admin.rg)
    outs = storage_dir()
    out = next(outs)
    ws = "w-tenancy"
    alice.workspace(ws)
    alice.cluster(
        ws,
        "tenancy",
        {
            "vmSize": "t4x1",
            "vmPriority": "lowpriority",
            "scaleSettings": {"manual": {"targetNodeCount": 1}},
            "userAccountSettings": {"adminUserName": "alice"},
        },
    )
    alice.experiment(ws, "exp")
    cluster_id = alice.path("workspaces", ws, "clusters", "tenancy")
    alice.job(ws, "exp", "j1", spec(cluster_id, "echo hello-from-alice", out))
    alice.wait_job(ws, "exp", "j1")
    alice.experiment(ws, "gone")
    deleted = alice.call("DELETE", alice.path("workspaces", ws, "experiments", "gone"))
    op_id = deleted.headers["location"].split("/operationresults/")[1].split("?")[0]
    partition = partition_of(admin, ws, "tenancy")
    yield Estate(admin.rg, ws, "exp", "tenancy", "j1", op_id, cluster_id, partition, out)
    admin.delete_workspace(ws)
    for api in (admin, alice):
        api.close()
    outs.close()


@dataclass(frozen=True)
class Route:
    path: str
    methods: frozenset[str]


def route_table() -> list[Route]:
    """The app's real routes, those of included routers too (a route added later is walked)."""
    settings = Settings(state_dir=Path(f"/tmp/bai-routes-{uuid.uuid4().hex[:8]}"))
    app = create_app(build_services(settings, CliBackend(LocalRunner())), run_reconciler=False)
    try:
        found = []
        for route in app.routes:
            # FastAPI keeps an included router as one entry with its routes inside (private
            # route contexts, hence Any).
            inner = getattr(route, "effective_route_contexts", None)
            entries: list[Any] = [*inner()] if inner else [route]
            for r in entries:
                if isinstance(getattr(r, "original_route", r), APIRoute):
                    found.append(Route(r.path, frozenset(r.methods)))
        return found
    finally:
        sh("rm", "-rf", str(settings.state_dir))


def fill(template: str, e: Estate, sub: str, op_id: str) -> str:
    """A route's path with alice's names (under `sub`); any parameter not known here fails."""
    values = {"sub": sub, "rg": e.rg, "ws": e.ws, "exp": e.exp, "op_id": op_id}
    if "/jobs/{name}" in template:
        values["name"] = e.job
    elif "/clusters/{name}" in template:
        values["name"] = e.cluster
    elif "/experiments/{name}" in template:
        values["name"] = e.exp
    path = template
    for param in re.findall(r"{(\w+)}", template):
        assert param in values, f"route {template}: the isolation walk does not know {{{param}}}"
        path = path.replace("{" + param + "}", values[param])
    return path


def body_for(template: str, method: str, e: Estate, sub: str) -> Any:
    """What alice would send: if the check were missing, bob's request would act."""
    if method == "PUT" and template.endswith("/jobs/{name}"):
        cluster = e.cluster_id.replace("/00000000-0000-0000-0000-000000000000/", f"/{sub}/")
        return {"properties": spec(cluster, "id", e.out)}
    if method == "PUT" and template.endswith("/clusters/{name}"):
        return {
            "properties": {
                "vmSize": "t4x1",
                "scaleSettings": {"manual": {"targetNodeCount": 0}},
                "userAccountSettings": {"adminUserName": "bob"},
            }
        }
    if method == "PATCH" and template.endswith("/clusters/{name}"):
        return {"properties": {"scaleSettings": {"manual": {"targetNodeCount": 0}}}}
    if method in {"PUT", "PATCH"} and template.endswith("/workspaces/{ws}"):
        return {"location": "x", "tags": {SHARE: "bob"}}
    return None


def test_every_route_answers_for_another_users_resource_exactly_as_for_a_missing_one(
    service: Service, estate: Estate
) -> None:
    bob = Api(service, service.token("bob"), rg=estate.rg)
    missing_op = str(uuid.uuid4())
    walked = []
    routes = sorted(route_table(), key=lambda r: "DELETE" in r.methods)  # deletions last
    for route in routes:
        if route.path in UNSCOPED:
            continue
        assert route.path.startswith("/subscriptions/{sub}/"), (
            f"route {route.path} is neither scoped by subscription nor listed in UNSCOPED"
        )
        for method in sorted(route.methods):
            answers = []
            # A workspace PUT under the missing name would create it: asked as bob's only.
            ws_put = method == "PUT" and route.path.endswith("/workspaces/{ws}")
            asks = [(bob.sub, estate.op_id)] + ([] if ws_put else [(OTHER_SUB, missing_op)])
            for sub, op_id in asks:
                path = fill(route.path, estate, sub, op_id)
                r = bob.http.request(
                    method,
                    path,
                    json=body_for(route.path, method, estate, sub),
                    params={"api-version": "2018-05-01", "outputdirectoryid": "stdouterr"},
                )
                text = r.text.replace(OTHER_SUB, bob.sub).replace(missing_op, estate.op_id)
                answers.append((r.status_code, text))
            hidden, missing = answers[0], answers[-1]
            walked.append(f"{method} {route.path}")
            if ws_put:
                # The one verb that can tell a taken name: workspace names are site-wide per
                # resource group. It says nothing of the holder.
                assert hidden[0] == 409 and "alice" not in hidden[1], hidden
                continue
            if route.path.endswith("/workspaces") and method == "GET":
                # A list: bob's own workspaces may be in it, alice's never.
                assert hidden[0] == 200 and f"/workspaces/{estate.ws}" not in hidden[1]
                continue
            assert hidden == missing, f"{method} {route.path}: {hidden} != {missing}"
            assert hidden[0] in {400, 404}, f"{method} {route.path}: {hidden}"
    bob.close()
    print(f"\nisolation walk: {len(walked)} route/verb pairs")
    assert len(walked) >= 25, walked

    # Nothing of alice's changed: her job and workspace are as they were, unshared.
    alice = Api(service, service.token("alice"), rg=estate.rg)
    got = alice.call("GET", alice.path("workspaces", estate.ws)).json()
    assert SHARE not in (got.get("tags") or {})
    assert alice.get_job(estate.ws, estate.exp, estate.job)["properties"]["executionState"] == (
        "succeeded"
    )
    alice.close()


def test_a_jobs_output_directory_and_temp_are_its_users_alone(estate: Estate) -> None:
    job = next(estate.out.glob(f"*/*/workspaces/{estate.ws}/experiments/exp/jobs/j1/*"))
    st = job.stat()
    assert (st.st_mode & 0o7777, st.st_uid) == (0o700, pwd.getpwnam("alice").pw_uid)
    stdout = str(job / "stdouterr" / "stdout.txt")
    assert as_user("alice", "cat", stdout).stdout == "hello-from-alice\n"
    said = as_user("bob", "cat", stdout, check=False)
    assert said.returncode != 0 and "Permission denied" in said.stderr


def test_a_job_cannot_target_a_cluster_its_user_may_not_use(
    service: Service, estate: Estate
) -> None:
    bob = Api(service, service.token("bob"), rg=estate.rg)
    bob.workspace("bobs")
    bob.experiment("bobs", "e")
    answers: list[tuple[int, str]] = []
    for cluster in (estate.cluster_id, estate.cluster_id.replace(bob.sub, OTHER_SUB)):
        with pytest.raises(CloudError) as err:
            bob.job("bobs", "e", f"steal-{len(answers)}", spec(cluster, "id", estate.out))
        answers.append((err.value.status, err.value.error["message"].replace(OTHER_SUB, bob.sub)))
    assert answers[0] == answers[1] and answers[0][0] == 400, answers
    bob.delete_workspace("bobs")
    bob.close()


def plain_sbatch(user: str, partition: str) -> tuple[int, str]:
    r = as_user(user, "sbatch", "-p", partition, "-o", "/dev/null", "--wrap", "true", check=False)
    return r.returncode, r.stdout + r.stderr


def test_slurm_refuses_plain_sbatch_into_a_partition_its_user_may_not_use(
    estate: Estate,
) -> None:
    assert plain_sbatch("alice", estate.partition)[0] == 0
    code, said = plain_sbatch("bob", estate.partition)
    assert code == 1 and "not permitted to use this partition" in said, said
    code, said = plain_sbatch("carol", estate.partition)  # not shared with ml-team yet
    assert code == 1 and "not permitted" in said, said


def wait_allow_groups(partition: str, group: str, present: bool, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        line = sh("scontrol", "show", "partition", partition, "-o").stdout
        groups = re.search(r"AllowGroups=(\S+)", line)
        if groups and (group in groups[1].split(",")) == present:
            return
        assert time.monotonic() < deadline, (
            f"AllowGroups never {'had' if present else 'lost'} {group}: {line}"
        )
        time.sleep(0.5)


def test_a_workspace_shared_with_a_group_lets_members_see_and_submit_but_change_only_their_own(
    service: Service, estate: Estate
) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.batchai import models

    rg, ws = estate.rg, estate.ws
    carol = Api(service, service.token("carol"), rg=rg)
    with pytest.raises(CloudError) as err:
        carol.get_job(ws, estate.exp, estate.job)
    assert err.value.status == 404

    # alice shares with a group she is not in: refused, naming the tag.
    alice = sdk(service, "alice")
    with pytest.raises(HttpResponseError) as bad:
        alice.workspaces.update(rg, ws, models.WorkspaceUpdateParameters(tags={SHARE: "bob"}))
    assert bad.value.status_code == 400 and f"tags.{SHARE}" in str(bad.value.message)
    # Shared through the official SDK: a workspace tag.
    shared = alice.workspaces.update(
        rg, ws, models.WorkspaceUpdateParameters(tags={SHARE: "ml-team"})
    )
    assert shared.tags == {SHARE: "ml-team"}
    wait_allow_groups(estate.partition, "ml-team", present=True)

    try:
        # carol sees the workspace, alice's job and its files, and submits to alice's cluster.
        listed = carol.call("GET", carol.path("workspaces")).json()["value"]
        assert [w["name"] for w in listed] == [ws]
        assert carol.get_job(ws, estate.exp, estate.job)["properties"]["executionState"] == (
            "succeeded"
        )
        files = carol.files(ws, estate.exp, estate.job, "stdouterr")
        assert "stdout.txt" in files
        # Under alice's prefix: the levels above a job's own directory are every user's.
        mine = estate.out
        carol.job(ws, estate.exp, "carols", spec(estate.cluster_id, "echo by-carol", mine))
        done = carol.wait_job(ws, estate.exp, "carols")
        assert done["properties"]["executionInfo"]["exitCode"] == 0
        # On disk: her job's directory is the team's to read (alice's group too), not bob's.
        own = mine / done["properties"]["jobOutputDirectoryPathSegment"]
        st = own.stat()
        assert (st.st_mode & 0o7777, grp.getgrgid(st.st_gid).gr_name) == (0o2750, "ml-team")
        stdout = str(own / "stdouterr" / "stdout.txt")
        assert as_user("alice", "cat", stdout).stdout == "by-carol\n"
        assert as_user("bob", "cat", stdout, check=False).returncode != 0
        assert plain_sbatch("carol", estate.partition)[0] == 0  # Slurm agrees
        assert plain_sbatch("bob", estate.partition)[0] == 1

        # ...but changes only her own: not alice's job, cluster, experiment or workspace.
        for method, path, body in (
            ("DELETE", carol.job_path(ws, estate.exp, estate.job), None),
            ("POST", carol.job_path(ws, estate.exp, estate.job, "terminate"), None),
            ("DELETE", carol.path("workspaces", ws, "clusters", estate.cluster), None),
            ("DELETE", carol.path("workspaces", ws, "experiments", estate.exp), None),
            ("PATCH", carol.path("workspaces", ws), {"tags": {}}),
            ("DELETE", carol.path("workspaces", ws), None),
        ):
            with pytest.raises(CloudError) as refused:
                carol.call(method, path, body)
            assert refused.value.status == 403, (method, path, refused.value.error)
        carol.call("DELETE", carol.job_path(ws, estate.exp, "carols"))

        # bob, outside the group, still sees nothing.
        bob = Api(service, service.token("bob"), rg=rg)
        with pytest.raises(CloudError) as hidden:
            bob.get_job(ws, estate.exp, estate.job)
        assert hidden.value.status == 404
        bob.close()
    finally:
        # Unshared from the CLI: carol loses the workspace and the partition at once.
        r = bai(
            service, service.token("alice"), rg, "workspace", "update", "-n", ws, "--share-with", ""
        )
        assert r.returncode == 0, r.stderr
    wait_allow_groups(estate.partition, "ml-team", present=False)
    with pytest.raises(CloudError) as gone:
        carol.get_job(ws, estate.exp, estate.job)
    assert gone.value.status == 404
    assert plain_sbatch("carol", estate.partition)[0] == 1
    carol.close()


def test_the_cli_creates_a_shared_workspace(service: Service, estate: Estate) -> None:
    token = service.token("alice")
    r = bai(
        service, token, estate.rg, "workspace", "create", "-n", "team", "--share-with", "ml-team"
    )
    assert r.returncode == 0, r.stderr
    assert "ml-team" in r.stdout
    carol = Api(service, service.token("carol"), rg=estate.rg)
    assert carol.call("GET", carol.path("workspaces", "team")).json()["tags"] == {SHARE: "ml-team"}
    carol.close()
    r = bai(service, token, estate.rg, "workspace", "delete", "-n", "team", "--yes")
    assert r.returncode == 0, r.stderr


def test_a_storage_account_is_refused_to_users_the_operator_did_not_give_it_to(
    service: Service, estate: Estate
) -> None:
    """The dev account `alicesonly` is alice's alone (storage_accounts.alicesonly.users)."""
    volumes = {
        "azureFileShares": [
            {
                "azureFileUrl": "https://alicesonly.file.core.windows.net/share1",
                "relativeMountPath": "data",
            }
        ]
    }
    carol = Api(service, service.token("carol"), rg=estate.rg)
    carol.workspace("carols")
    carol.experiment("carols", "e")
    # A cluster's own volumes are checked for its creator when it is made.
    with pytest.raises(CloudError) as made:
        carol.cluster(
            "carols",
            "bad",
            {
                "vmSize": "t4x1",
                "scaleSettings": {"manual": {"targetNodeCount": 0}},
                "userAccountSettings": {"adminUserName": "carol"},
                "nodeSetup": {"mountVolumes": volumes},
            },
        )
    assert made.value.status == 400 and "'alicesonly'" in made.value.error["message"]
    assert made.value.error["target"] == (
        "properties.nodeSetup.mountVolumes.azureFileShares[0].azureFileUrl"
    )
    carol.cluster(
        "carols",
        "c",
        {
            "vmSize": "t4x1",
            "vmPriority": "lowpriority",
            "scaleSettings": {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 1}},
            "userAccountSettings": {"adminUserName": "carol"},
        },
    )
    cluster = carol.path("workspaces", "carols", "clusters", "c")
    with pytest.raises(CloudError) as err:
        carol.job("carols", "e", "j", spec(cluster, "ls", estate.out, mountVolumes=volumes))
    assert err.value.status == 400
    assert "'alicesonly'" in err.value.error["message"]
    assert err.value.error["target"].endswith("azureFileShares[0].azureFileUrl")
    carol.delete_workspace("carols")
    carol.close()

    alice = Api(service, service.token("alice"), rg=estate.rg)
    job = alice.job(
        estate.ws, "exp", "sa", spec(estate.cluster_id, "ls", estate.out, mountVolumes=volumes)
    )
    assert job["properties"]["provisioningState"] == "succeeded"
    alice.close()
