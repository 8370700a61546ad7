"""One pass of a Batch AI user's life through bai with the old SDK, azure-mgmt-batchai 2.0.0.

2.0.0 (msrest, msrestazure) cannot share site-packages with the 7.0.0 of the venv, so `make venv`
puts it in `.venv/sdk2` and this script runs in its own process with that directory first:

    . .dev/env && BAI_RESOURCE_GROUP=t-sdk2-$USER \\
        PYTHONPATH=.venv/sdk2 .venv/bin/python tests/e2e/sdk2_flow.py

It reads the bai CLI's variables (BAI_URL, BAI_CA, BAI_TOKEN, BAI_RESOURCE_GROUP, and
BAI_SUBSCRIPTION if set), prints one JSON line of what it saw, and on any failure exits non-zero
with the traceback. It leaves nothing behind when it succeeds; after a failure the caller removes
the resource group's workspaces (tests/e2e/test_sdk2.py does, through its `admin` fixture).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

# mypy sees the venv's 7.0.0 SDK, which has neither msrestazure nor 2.0.0's client and version.
import azure.mgmt.batchai
import msrest
import msrestazure  # type: ignore[import-not-found]
import requests
from azure.mgmt.batchai import BatchAIManagementClient, models  # type: ignore[attr-defined]
from azure.mgmt.batchai.version import VERSION  # type: ignore[import-not-found]
from msrest.authentication import BasicTokenAuthentication
from msrestazure.azure_exceptions import CloudError  # type: ignore[import-not-found]

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
SHARE = "https://jobs.file.core.windows.net/logs"
COMMAND = 'echo "$GREETING"; echo result > "$OUT/result.txt"; echo more > "$OUT/more.txt"'


def client_for(url: str, ca: str, token: str, sub: str, wire: list[str]) -> Any:
    client = BatchAIManagementClient(BasicTokenAuthentication({"access_token": token}), sub, url)
    client.config.connection.verify = ca
    client.config.retry_policy.retries = 0
    # Used only when a 202 carries no Retry-After; bai always sends one.
    client.config.long_running_operation_timeout = 1

    def record(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        parts = urlsplit(response.request.url or "")
        path = parts.path.split("/providers/Microsoft.BatchAI/", 1)[-1]
        wire.append(f"{response.request.method} {path}?{parts.query} {response.status_code}")

    client.config.hooks.append(record)
    return client


def file_pages(client: Any, rg: str, ws: str, exp: str, job: str, out: str) -> list[list[str]]:
    """listOutputFiles one file per page: 2.0.0 POSTs every nextLink."""
    options = models.JobsListOutputFilesOptions(outputdirectoryid=out, max_results=1)
    paged = client.jobs.list_output_files(rg, ws, exp, job, options)
    pages = []
    while True:
        try:
            pages.append([f.name for f in paged.advance_page()])
        except StopIteration:
            return pages


def download(client: Any, rg: str, ws: str, exp: str, job: str, out: str, name: str) -> str:
    options = models.JobsListOutputFilesOptions(outputdirectoryid=out, linkexpiryinminutes=5)
    files = {f.name: f for f in client.jobs.list_output_files(rg, ws, exp, job, options)}
    response = requests.get(files[name].download_url, verify=client.config.connection.verify)
    response.raise_for_status()
    return response.text


def missing(get: Any) -> dict[str, Any]:
    """The CloudError of a GET that must find nothing."""
    try:
        get()
    except CloudError as err:
        return {"status": err.status_code, "code": err.error.error}
    raise AssertionError("the resource is still there")


def logins(paged: Any) -> list[dict[str, Any]]:
    return [{"nodeId": r.node_id, "ipAddress": r.ip_address, "port": r.port} for r in paged]


def flow(client: Any, rg: str, user: str, wire: list[str]) -> dict[str, Any]:
    seen: dict[str, Any] = {
        "sdk": {
            "batchai": VERSION,
            "batchaiFile": azure.mgmt.batchai.__file__,
            "msrest": msrest.__version__,
            "msrestazure": msrestazure.__version__,
        }
    }
    ws, exp, cl, job = "ws2", "exp2", "low2", "job2"

    created = client.workspaces.create(rg, ws, "onprem", tags={"sdk": "2.0.0"}).result()
    updated = client.workspaces.update(rg, ws, tags={"sdk": "2.0.0", "step": "updated"})
    got = client.workspaces.get(rg, ws)
    seen["workspace"] = {
        "name": got.name,
        "location": got.location,
        "state": got.provisioning_state,
        "createdTags": created.tags,
        "tags": updated.tags,
    }
    seen["workspaces"] = [w.name for w in client.workspaces.list_by_resource_group(rg)]

    client.experiments.create(rg, ws, exp).result()
    seen["experiment"] = {"state": client.experiments.get(rg, ws, exp).provisioning_state}
    seen["experiments"] = [e.name for e in client.experiments.list_by_workspace(rg, ws)]

    # Low priority shares the dev cluster's nodes with dedicated clusters, so it starves no one.
    params = models.ClusterCreateParameters(
        vm_size="t4x1",
        vm_priority="lowpriority",
        scale_settings=models.ScaleSettings(manual=models.ManualScaleSettings(target_node_count=1)),
        user_account_settings=models.UserAccountSettings(admin_user_name=user),
    )
    client.clusters.create(rg, ws, cl, params).result()
    cluster = client.clusters.get(rg, ws, cl)
    seen["cluster"] = {
        "name": cluster.name,
        "vmSize": cluster.vm_size,
        "vmPriority": cluster.vm_priority,
        "state": cluster.provisioning_state,
        "allocationState": cluster.allocation_state,
        "currentNodeCount": cluster.current_node_count,
    }
    seen["clusters"] = [c.name for c in client.clusters.list_by_workspace(rg, ws)]
    seen["clusterLogins"] = logins(client.clusters.list_remote_login_information(rg, ws, cl))

    share = models.AzureFileShareReference(
        account_name="jobs",
        azure_file_url=SHARE,
        # 2.0.0 requires credentials; the dev storage account is a local directory.
        credentials=models.AzureStorageCredentialsInfo(account_key="not-used-by-dev-storage"),
        relative_mount_path="logs",
    )
    job_params = models.JobCreateParameters(
        cluster=models.ResourceId(id=cluster.id),
        node_count=1,
        mount_volumes=models.MountVolumes(azure_file_shares=[share]),
        std_out_err_path_prefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        output_directories=[
            models.OutputDirectory(id="OUT", path_prefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/logs")
        ],
        environment_variables=[models.EnvironmentVariable(name="GREETING", value="hello 2.0.0")],
        custom_toolkit_settings=models.CustomToolkitSettings(
            command_line=COMMAND.replace("$OUT", "$AZ_BATCHAI_OUTPUT_OUT")
        ),
        constraints=models.JobBasePropertiesConstraints(max_wall_clock_time=timedelta(minutes=10)),
    )
    submitted = client.jobs.create(rg, ws, exp, job, job_params).result()
    done = wait_job(client, rg, ws, exp, job, timeout=180)
    info = done.execution_info
    seen["job"] = {
        "name": done.name,
        "submittedState": submitted.provisioning_state,
        "state": done.provisioning_state,
        "executionState": done.execution_state,
        "toolType": done.tool_type,
        "exitCode": info.exit_code,
        "errors": [e.code for e in info.errors or []],
        "maxWallClockSeconds": done.constraints.max_wall_clock_time.total_seconds(),
        "cluster": done.cluster.id == cluster.id,
    }
    seen["jobs"] = [j.name for j in client.jobs.list_by_experiment(rg, ws, exp)]
    seen["jobLogins"] = logins(client.jobs.list_remote_login_information(rg, ws, exp, job))
    seen["stdouterrPages"] = file_pages(client, rg, ws, exp, job, "stdouterr")
    seen["outputPages"] = file_pages(client, rg, ws, exp, job, "OUT")
    seen["stdout"] = download(client, rg, ws, exp, job, "stdouterr", "stdout.txt")
    seen["result"] = download(client, rg, ws, exp, job, "OUT", "result.txt")

    client.jobs.delete(rg, ws, exp, job).result()
    seen["jobAfterDelete"] = missing(lambda: client.jobs.get(rg, ws, exp, job))
    client.clusters.delete(rg, ws, cl).result()
    seen["clusterAfterDelete"] = missing(lambda: client.clusters.get(rg, ws, cl))
    client.experiments.delete(rg, ws, exp).result()
    seen["experimentAfterDelete"] = missing(lambda: client.experiments.get(rg, ws, exp))
    client.workspaces.delete(rg, ws).result()
    seen["workspaceAfterDelete"] = missing(lambda: client.workspaces.get(rg, ws))
    seen["workspacesAfter"] = [w.name for w in client.workspaces.list_by_resource_group(rg)]
    seen["requests"] = wire
    return seen


def wait_job(client: Any, rg: str, ws: str, exp: str, job: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = client.jobs.get(rg, ws, exp, job)
        if got.execution_state in {"succeeded", "failed"}:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job} still {got.execution_state} after {timeout} s")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-user", default="alice", help="the cluster's adminUserName")
    args = parser.parse_args()
    env = os.environ
    wire: list[str] = []
    sub = env.get("BAI_SUBSCRIPTION", SUBSCRIPTION)
    client = client_for(env["BAI_URL"], env["BAI_CA"], env["BAI_TOKEN"], sub, wire)
    print(json.dumps(flow(client, env["BAI_RESOURCE_GROUP"], args.admin_user, wire)))


if __name__ == "__main__":
    main()
