"""Every list, dict and string of a request body is bounded; at the bound it passes, past it
the 400 names the field and the bound."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from adapter.api.errors import validation_error
from adapter.models.clusters import ClusterCreateParameters
from adapter.models.jobs import JobCreateParameters
from adapter.models.workspaces import WorkspaceCreateParameters, WorkspaceUpdateParameters

JOB: dict[str, Any] = {
    "properties": {
        "cluster": {"id": "/subscriptions/s/resourceGroups/rg/workspaces/w/clusters/c"},
        "nodeCount": 1,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "customToolkitSettings": {"commandLine": "python train.py"},
    }
}
CLUSTER: dict[str, Any] = {
    "properties": {
        "vmSize": "STANDARD_NC6",
        "scaleSettings": {"manual": {"targetNodeCount": 1}},
        "userAccountSettings": {"adminUserName": "alice"},
    }
}


def job(**props: Any) -> dict[str, Any]:
    body = copy.deepcopy(JOB)
    body["properties"].update(props)
    return body


def variables(count: int, value: str = "v") -> list[dict[str, str]]:
    return [{"name": f"V{i}", "value": value} for i in range(count)]


def directories(count: int, key: str) -> list[dict[str, str]]:
    return [{"id": f"D{i}", key: "$AZ_BATCHAI_JOB_MOUNT_ROOT/x"} for i in range(count)]


def too_long(count: int) -> str:
    return f"String should have at most {count} characters"


def too_many(count: int, actual: int, kind: str = "List") -> str:
    return f"{kind} should have at most {count} items after validation, not {actual}"


CASES: list[tuple[type[BaseModel], dict[str, Any], str, str]] = [
    # (model, body, field in the error, what is wrong); "" for a body at the bound, which passes
    (JobCreateParameters, job(environmentVariables=variables(1000)), "", ""),
    (
        JobCreateParameters,
        job(environmentVariables=variables(1001)),
        "properties.environmentVariables",
        too_many(1000, 1001),
    ),
    (JobCreateParameters, job(secrets=variables(1000)), "", ""),
    (JobCreateParameters, job(secrets=variables(1001)), "properties.secrets", too_many(1000, 1001)),
    (JobCreateParameters, job(environmentVariables=variables(1, "x" * 32768)), "", ""),
    (
        JobCreateParameters,
        job(environmentVariables=variables(1, "x" * 32769)),
        "properties.environmentVariables[0].value",
        too_long(32768),
    ),
    (
        JobCreateParameters,
        job(environmentVariables=[{"name": "N" * 257, "value": "v"}]),
        "properties.environmentVariables[0].name",
        too_long(256),
    ),
    (JobCreateParameters, job(inputDirectories=directories(100, "path")), "", ""),
    (
        JobCreateParameters,
        job(inputDirectories=directories(101, "path")),
        "properties.inputDirectories",
        too_many(100, 101),
    ),
    (
        JobCreateParameters,
        job(outputDirectories=directories(101, "pathPrefix")),
        "properties.outputDirectories",
        too_many(100, 101),
    ),
    (
        JobCreateParameters,
        job(inputDirectories=[{"id": "D", "path": "/" + "p" * 4096}]),
        "properties.inputDirectories[0].path",
        too_long(4096),
    ),
    (
        JobCreateParameters,
        job(stdOutErrPathPrefix="/" + "p" * 4096),
        "properties.stdOutErrPathPrefix",
        too_long(4096),
    ),
    (
        JobCreateParameters,
        job(customToolkitSettings={"commandLine": "x" * 32769}),
        "properties.customToolkitSettings.commandLine",
        too_long(32768),
    ),
    (
        JobCreateParameters,
        job(
            customToolkitSettings=None,
            tensorFlowSettings={
                "pythonScriptFilePath": "a.py",
                "workerCommandLineArgs": "--x " * 8193,
            },
        ),
        "properties.tensorFlowSettings.workerCommandLineArgs",
        too_long(32768),
    ),
    (
        JobCreateParameters,
        job(customToolkitSettings=None, horovodSettings={"pythonScriptFilePath": "a" * 4097}),
        "properties.horovodSettings.pythonScriptFilePath",
        too_long(4096),
    ),
    (
        JobCreateParameters,
        job(customMpiSettings={"commandLine": "x", "processCount": 102401}),
        "properties.customMpiSettings.processCount",
        "Input should be less than or equal to 102400",
    ),
    (
        JobCreateParameters,
        job(containerSettings={"imageSourceRegistry": {"image": "i" * 1025}}),
        "properties.containerSettings.imageSourceRegistry.image",
        too_long(1024),
    ),
    (
        JobCreateParameters,
        job(constraints={"maxWallClockTime": "P99999999999D"}),
        "properties.constraints.maxWallClockTime",
        "'P99999999999D' is too long a duration; Batch AI jobs run 7 days at most (P7D)",
    ),
    (
        JobCreateParameters,  # a string with no tighter bound, in a mount (models/mounts.py)
        job(
            mountVolumes={
                "azureFileShares": [{"azureFileUrl": "u" * 32769, "relativeMountPath": "m"}]
            }
        ),
        "properties.mountVolumes.azureFileShares[0].azureFileUrl",
        too_long(32768),
    ),
    (WorkspaceCreateParameters, {"location": "l" * 256}, "", ""),
    (WorkspaceCreateParameters, {"location": "l" * 257}, "location", too_long(256)),
    (
        WorkspaceCreateParameters,
        {"location": "eastus", "tags": {"k" * 512: "v" * 256, **{f"t{i}": "" for i in range(49)}}},
        "",
        "",
    ),
    (
        WorkspaceUpdateParameters,
        {"tags": {f"t{i}": "" for i in range(51)}},
        "tags",
        "has 51 tags; ARM allows at most 50",
    ),
    (
        WorkspaceUpdateParameters,
        {"tags": {"k" * 10_000: "v"}},
        "tags",
        "a tag name is 10000 characters; use 1 to 512 (ARM's limit)",
    ),
    (
        WorkspaceUpdateParameters,
        {"tags": {"": "v"}},
        "tags",
        "a tag name is 0 characters; use 1 to 512 (ARM's limit)",
    ),
    (
        WorkspaceUpdateParameters,
        {"tags": {"owner\n": "v" * 257}},
        "tags",
        "tag 'owner\\n' has a value of 257 characters; ARM allows at most 256",
    ),
    (
        ClusterCreateParameters,
        {"properties": {**CLUSTER["properties"], "vmSize": "S" * 257}},
        "properties.vmSize",
        too_long(256),
    ),
    (
        ClusterCreateParameters,
        {
            "properties": {
                **CLUSTER["properties"],
                "nodeSetup": {
                    "setupTask": {
                        "commandLine": "true",
                        "stdOutErrPathPrefix": "/logs",
                        "environmentVariables": variables(1001),
                    }
                },
            }
        },
        "properties.nodeSetup.setupTask.environmentVariables",
        too_many(1000, 1001),
    ),
    (
        ClusterCreateParameters,
        {
            "properties": {
                **CLUSTER["properties"],
                "virtualMachineConfiguration": {
                    "imageReference": {"publisher": "p" * 257, "offer": "o", "sku": "s"}
                },
            }
        },
        "properties.virtualMachineConfiguration.imageReference.publisher",
        too_long(256),
    ),
]


@pytest.mark.parametrize(("model", "body", "field", "problem"), CASES)
def test_bounds(model: type[BaseModel], body: dict[str, Any], field: str, problem: str) -> None:
    if not field:
        model.model_validate(body)
        return
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    error = validation_error(info.value)
    assert (error.status, error.target) == (400, field)
    assert error.message == f"The request is not valid: {field}: {problem}"
    assert len(error.message) < 300  # an overlong value is never echoed
