"""JSON Schemas of the response bodies, as `resources.py` and the routes render them.

They say what a client may rely on: the keys bai always sends, their types and enum values,
and that secret values come back as null. They leave room for what the request echoed (the
stored properties carry whatever the create body held), so a valid answer never fails them.
"""

from __future__ import annotations

from typing import Any

from adapter.clusters.inventory import NODE_STATES
from adapter.models.jobs import TOOLKITS

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
COUNT: Schema = {"type": "integer", "minimum": 0}
TIME: Schema = {"type": "string", "format": "date-time"}
NULL: Schema = {"type": "null"}
LIST: Schema = {"type": "array"}
# iso_duration() in resources.py: days, then hours/minutes/seconds (P7D, PT2H, P1DT30M).
DURATION: Schema = {"type": "string", "pattern": r"^P(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, NULL]}


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object with these keys; other keys are allowed (echoed request fields, new fields)."""
    schema: Schema = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:
        schema["required"] = list(required)
    return schema


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def page(item: str) -> Schema:
    """ARM paging (paging.py): one page of `value`, and a nextLink while more remain."""
    return obj({"value": array(ref(item))}, {"nextLink": STR})


PROVISIONING = enum("creating", "succeeded", "failed", "deleting")
ID = obj({"id": STR})
STATE_TIMES = {
    "creationTime": TIME,
    "provisioningState": PROVISIONING,
    "provisioningStateTransitionTime": TIME,
}
# Secrets are stored and shown without their values (clusters/service.py split_secrets,
# jobs/service.py _without_secrets): the schema holds every answer to that.
SECRETS = array(obj({"name": STR}, {"value": NULL, "valueSecretReference": nullable(ID)}))
ENV = array(obj({"name": STR, "value": STR}))
CREDENTIALS = obj({}, {"accountKey": NULL})
MOUNTS = obj(
    {},
    {
        "azureFileShares": array(obj({}, {"credentials": nullable(CREDENTIALS)})),
        "azureBlobFileSystems": array(obj({}, {"credentials": nullable(CREDENTIALS)})),
        "fileServers": LIST,
        "unmanagedFileSystems": LIST,
    },
)

SETUP_TASK = obj(
    {"commandLine": STR, "stdOutErrPathPrefix": STR, "stdOutErrPathSuffix": STR},
    {"environmentVariables": ENV, "secrets": SECRETS},
)
SCALE = obj(
    {},
    {
        "manual": nullable(
            obj(
                {"targetNodeCount": COUNT},
                {"nodeDeallocationOption": enum("requeue", "terminate", "waitforjobcompletion")},
            )
        ),
        "autoScale": nullable(
            obj(
                {"minimumNodeCount": COUNT, "maximumNodeCount": COUNT},
                {"initialNodeCount": COUNT},
            )
        ),
    },
)
CLUSTER_PROPERTIES = obj(
    {
        "vmSize": STR,
        "vmPriority": enum("dedicated", "lowpriority"),
        "scaleSettings": SCALE,
        "userAccountSettings": obj({"adminUserName": STR}, {"adminUserPassword": NULL}),
        **STATE_TIMES,
        "allocationState": enum("steady", "resizing"),
        "allocationStateTransitionTime": TIME,
        "errors": array(ref("BatchAIError")),
        "currentNodeCount": COUNT,
        "nodeStateCounts": obj({f"{state}NodeCount": COUNT for state in NODE_STATES}),
    },
    {
        "virtualMachineConfiguration": obj({}, {"imageReference": nullable(obj({}))}),
        "nodeSetup": obj(
            {},
            {
                "setupTask": nullable(SETUP_TASK),
                "mountVolumes": nullable(MOUNTS),
                "performanceCountersSettings": nullable(obj({"appInsightsReference": obj({})})),
            },
        ),
        "subnet": nullable(ID),
    },
)
REGISTRY = obj(
    {"image": STR},
    {"serverUrl": nullable(STR), "credentials": nullable(obj({}, {"password": NULL}))},
)
JOB_PROPERTIES = obj(
    {
        "schedulingPriority": enum("low", "normal", "high"),
        "cluster": ID,
        "nodeCount": {"type": "integer", "minimum": 1},
        "toolType": enum(*sorted(set(TOOLKITS.values()))),
        "jobOutputDirectoryPathSegment": STR,
        "stdOutErrPathPrefix": STR,
        **STATE_TIMES,
        "executionState": enum("queued", "running", "terminating", "succeeded", "failed"),
        "executionStateTransitionTime": TIME,
        "executionInfo": obj(
            {"startTime": nullable(TIME), "preemptionCount": COUNT},
            {
                "endTime": nullable(TIME),
                "exitCode": nullable({"type": "integer"}),
                "errors": nullable(array(ref("BatchAIError"))),
            },
        ),
    },
    {
        **{key: obj({}) for key in TOOLKITS},
        "mountVolumes": nullable(MOUNTS),
        "containerSettings": nullable(obj({"imageSourceRegistry": REGISTRY})),
        "jobPreparation": nullable(obj({"commandLine": STR})),
        "inputDirectories": array(obj({"id": STR, "path": STR})),
        "outputDirectories": array(obj({"id": STR, "pathPrefix": STR})),
        "environmentVariables": ENV,
        "secrets": SECRETS,
        # Absent only for a `bai sbatch` job that has no time limit.
        "constraints": obj({"maxWallClockTime": DURATION}),
        # bai's own, for `bai sbatch` jobs: the Slurm job, and each task of an array.
        "sbatch": obj(
            {"slurmJobId": nullable(COUNT)},
            {
                "options": array(array({})),
                "arguments": array(STR),
                "array": STR,
                "tasks": array(
                    obj(
                        {
                            "index": COUNT,
                            "state": enum("queued", "running", "succeeded", "failed"),
                            "exitCode": nullable({"type": "integer"}),
                            "slurmJobId": nullable(COUNT),
                        }
                    )
                ),
            },
        ),
    },
)


def _resource(kind: str, properties: Schema, **more: Schema) -> Schema:
    return obj(
        {
            "id": STR,
            "name": STR,
            "type": {"type": "string", "const": f"Microsoft.BatchAI/{kind}"},
            **more,
            "properties": properties,
        }
    )


CLOUD_ERROR_BODY = obj(
    {"code": STR, "message": STR},
    {"target": STR, "details": array(ref("CloudErrorBody"))},
)

RESPONSE_SCHEMAS: dict[str, Schema] = {
    "CloudError": obj({"error": ref("CloudErrorBody")}),
    "CloudErrorBody": CLOUD_ERROR_BODY,
    "BatchAIError": obj(
        {"code": STR, "message": STR},
        {"details": nullable(array(obj({"name": STR, "value": STR})))},
    ),
    "Workspace": _resource(
        "workspaces",
        obj(STATE_TIMES),
        location=STR,
        tags={"type": "object", "additionalProperties": STR},
    ),
    "Experiment": _resource("workspaces/experiments", obj(STATE_TIMES)),
    "Cluster": _resource("workspaces/clusters", CLUSTER_PROPERTIES),
    "Job": _resource("workspaces/experiments/jobs", JOB_PROPERTIES),
    "SbatchPlan": obj(
        {
            "uid": STR,
            "user": STR,
            "job": ref("Job"),
            "arguments": array(STR),
            "script": STR,
        }
    ),
    "RemoteLoginInformation": obj(
        {
            "nodeId": STR,
            "ipAddress": STR,
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        }
    ),
    "File": obj(
        {
            "name": STR,
            "fileType": enum("file", "directory"),
            "properties": obj({"lastModified": TIME}, {"contentLength": COUNT}),
        },
        {"downloadUrl": STR},  # files only: a signed GET-able URL
    ),
    "Usage": obj(
        {
            "unit": {"type": "string", "const": "Count"},
            "currentValue": COUNT,
            "limit": COUNT,
            "name": obj({"value": STR, "localizedValue": STR}),
        }
    ),
    "Operation": obj(
        {
            "name": STR,
            "origin": STR,
            "display": obj(
                {"provider": STR, "resource": STR, "operation": STR, "description": STR}
            ),
        }
    ),
    "OperationStatus": obj(
        {"id": STR, "name": STR, "status": enum("InProgress", "Succeeded", "Failed", "Canceled")},
        {"error": obj({})},
    ),
    **{
        f"{item}ListResult": page(item)
        for item in (
            "Workspace",
            "Experiment",
            "Cluster",
            "Job",
            "RemoteLoginInformation",
            "File",
            "Usage",
            "Operation",
        )
    },
}
