"""What each route reads and answers, per method and path: the table /openapi.json is built
from (openapi.py). The routes parse their bodies by hand and return plain dicts, so FastAPI
sees neither the bodies nor the replies; this says them, with every status a route answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from adapter.api.deps import API_VERSION
from adapter.api.response_schemas import STR, Schema
from adapter.models.clusters import ClusterCreateParameters, ClusterUpdateParameters
from adapter.models.common import NAME, RESOURCE_GROUP, SUBSCRIPTION
from adapter.models.jobs import JobCreateParameters
from adapter.models.sbatch import SbatchConfirm, SbatchSubmit
from adapter.models.workspaces import WorkspaceCreateParameters, WorkspaceUpdateParameters


@dataclass(frozen=True)
class Reply:
    """One answer: its description, body (a component name; None: no body) and headers."""

    description: str
    schema: str | None = None
    headers: tuple[str, ...] = ()
    binary: bool = False  # the body is a file's bytes


@dataclass(frozen=True)
class Op:
    """What one method on one path reads and answers."""

    id: str  # operationId: the SDK's operation group and name
    summary: str
    ok: dict[int, Reply]
    errors: tuple[int, ...]  # answered with a CloudError body
    body: type[BaseModel] | None = None
    query: tuple[str, ...] = ("api-version",)
    public: bool = False  # no bearer token: the signature in the URL is the permission


def _name(description: str) -> Schema:
    return {"description": description, "type": "string", "pattern": f"^{NAME.pattern}$"}


PATH_PARAMS: dict[str, Schema] = {
    "sub": {
        "description": "subscriptionId: a GUID or a site's plain name",
        "type": "string",
        "pattern": f"^{SUBSCRIPTION.pattern}$",
    },
    "rg": {
        "description": "resourceGroupName",
        "type": "string",
        "pattern": f"^{RESOURCE_GROUP.pattern}$",
    },
    "ws": _name("workspaceName"),
    "exp": _name("experimentName"),
    "name": _name("experimentName, clusterName or jobName, as the path says"),
    "op_id": {"description": "the id in a Location or Azure-AsyncOperation URL", **STR},
    "location": {"description": "location: bai has one, any name answers the same", **STR},
    "path": {"description": "the path part of a downloadUrl from listOutputFiles", **STR},
    "uid": {"description": "the uid POST /bai/sbatch answered", **STR},
}
QUERY: dict[str, dict[str, Any]] = {
    "api-version": {"required": True, "schema": {"type": "string", "enum": [API_VERSION]}},
    "maxresults": {
        "description": "page size",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1000},
    },
    "$skiptoken": {
        "description": "where the page starts, as nextLink carries it",
        "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"},  # paging.py: an offset
    },
    "outputdirectoryid": {
        "required": True,
        "description": "stdouterr, or the id of one of the job's outputDirectories",
        "schema": {"type": "string", "minLength": 1},
    },
    "directory": {
        "description": "a directory inside the output directory",
        "schema": {"type": "string", "default": "."},
    },
    "linkexpiryinminutes": {
        "description": "how long each downloadUrl stays valid",
        "schema": {"type": "integer", "minimum": 5, "maximum": 600, "default": 60},
    },
    "se": {"description": "expiry of the link (Unix time)", "schema": {"type": "integer"}},
    "sig": {"description": "signature of the link", "schema": STR},
}
HEADERS: dict[str, Schema] = {
    "Location": {"description": "poll with GET: 202 while running, then 204", "schema": STR},
    "Azure-AsyncOperation": {"description": "the operation's status document", "schema": STR},
    "Retry-After": {"description": "seconds to wait before asking again", "schema": STR},
    "WWW-Authenticate": {"description": "Bearer", "schema": STR},
    "Content-Range": {"description": "the bytes sent (206), or the size (416)", "schema": STR},
}
ERRORS = {
    400: "the request is not valid: the message and target name the field and the fix",
    401: "no bearer token, or one that is not valid",
    403: "the token's user may not change this resource",
    404: "the resource does not exist (or is not the caller's to see)",
    409: "the request contradicts the resource's current state",
    413: "the request body is larger than the service accepts",
    415: "the request body is not sent as JSON in UTF-8",
    502: "Slurm refused the change",
    503: "Slurm cannot be reached right now",
}

PAGED = ("api-version", "maxresults", "$skiptoken")
# 400 and 413 everywhere: BodyLimit checks every request's Content-Length and size.
LISTS = (400, 401, 413)
READ = (400, 401, 404, 413)
WRITE = (400, 401, 403, 404, 409, 413)
BODY = (*WRITE, 415)
SLURM = (*WRITE, 502, 503)
LRO = {
    200: Reply("done already (lro.py: the operation had nothing left to do)"),
    202: Reply(
        "accepted: poll Location", headers=("Location", "Azure-AsyncOperation", "Retry-After")
    ),
}


def ok(schema: str) -> dict[int, Reply]:
    return {200: Reply("OK", schema)}


def _paged_post(op_id: str, item: str, query: tuple[str, ...] = PAGED) -> dict[str, Op]:
    """A POST list and its GET twin: the 7.0.0 SDK follows nextLink with GET, 2.0.0 with POST."""
    result = ok(f"{item}ListResult")
    return {
        "POST": Op(op_id, f"list {item}", result, READ, query=query),
        "GET": Op(f"{op_id}Get", f"list {item}, by GET (nextLink)", result, READ, query=query),
    }


BAI = "/providers/Microsoft.BatchAI"
SUB = "/subscriptions/{sub}"
WS = SUB + "/resourceGroups/{rg}" + BAI + "/workspaces/{ws}"
CLUSTER = WS + "/clusters/{name}"
JOB = WS + "/experiments/{exp}/jobs/{name}"
FILES_QUERY = (*PAGED, "outputdirectoryid", "directory", "linkexpiryinminutes")

TABLE: dict[str, dict[str, Op]] = {
    BAI + "/operations": {
        "GET": Op(
            "Operations_List", "what bai offers", ok("OperationListResult"), LISTS, query=PAGED
        )
    },
    SUB + BAI + "/locations/{location}/usages": {
        "GET": Op("Usages_List", "nodes per node type", ok("UsageListResult"), LISTS, query=PAGED)
    },
    SUB + BAI + "/operationresults/{op_id}": {
        "GET": Op(
            "OperationResults_Get",
            "a long-running operation, as Location polling reads it",
            {
                202: Reply("in progress", headers=("Retry-After",)),
                204: Reply("succeeded"),
                500: Reply("failed: the operation's error", "CloudError"),
            },
            READ,
        )
    },
    SUB + BAI + "/operationstatuses/{op_id}": {
        "GET": Op("OperationStatuses_Get", "a long-running operation", ok("OperationStatus"), READ)
    },
    SUB + BAI + "/workspaces": {
        "GET": Op("Workspaces_List", "workspaces", ok("WorkspaceListResult"), LISTS, query=PAGED)
    },
    SUB + "/resourceGroups/{rg}" + BAI + "/workspaces": {
        "GET": Op(
            "Workspaces_ListByResourceGroup",
            "workspaces of a resource group",
            ok("WorkspaceListResult"),
            LISTS,
            query=PAGED,
        )
    },
    WS: {
        "PUT": Op("Workspaces_Create", "create", ok("Workspace"), BODY, WorkspaceCreateParameters),
        "PATCH": Op("Workspaces_Update", "tags", ok("Workspace"), BODY, WorkspaceUpdateParameters),
        "GET": Op("Workspaces_Get", "a workspace", ok("Workspace"), READ),
        "DELETE": Op("Workspaces_Delete", "with all it holds", LRO, SLURM),
    },
    WS + "/experiments": {
        "GET": Op(
            "Experiments_ListByWorkspace",
            "experiments",
            ok("ExperimentListResult"),
            READ,
            query=PAGED,
        )
    },
    WS + "/experiments/{name}": {
        "PUT": Op("Experiments_Create", "create (no body)", ok("Experiment"), WRITE),
        "GET": Op("Experiments_Get", "an experiment", ok("Experiment"), READ),
        "DELETE": Op("Experiments_Delete", "with its jobs", LRO, SLURM),
    },
    WS + "/clusters": {
        "GET": Op(
            "Clusters_ListByWorkspace", "clusters", ok("ClusterListResult"), READ, query=PAGED
        )
    },
    CLUSTER: {
        "PUT": Op(
            "Clusters_Create", "create", ok("Cluster"), (*BODY, 502, 503), ClusterCreateParameters
        ),
        "PATCH": Op(
            "Clusters_Update", "scale", ok("Cluster"), (*BODY, 502, 503), ClusterUpdateParameters
        ),
        "GET": Op("Clusters_Get", "a cluster", ok("Cluster"), READ),
        "DELETE": Op("Clusters_Delete", "release its nodes", LRO, SLURM),
    },
    CLUSTER + "/listRemoteLoginInformation": _paged_post(
        "Clusters_ListRemoteLoginInformation", "RemoteLoginInformation"
    ),
    WS + "/experiments/{exp}/jobs": {
        "GET": Op("Jobs_ListByExperiment", "jobs", ok("JobListResult"), READ, query=PAGED)
    },
    JOB: {
        "PUT": Op("Jobs_Create", "submit", ok("Job"), (*BODY, 502, 503), JobCreateParameters),
        "GET": Op("Jobs_Get", "a job", ok("Job"), READ),
        "DELETE": Op("Jobs_Delete", "cancel it and forget it", LRO, SLURM),
    },
    JOB + "/terminate": {
        "POST": Op("Jobs_Terminate", "cancel it (200: it had finished)", LRO, SLURM),
    },
    JOB + "/listRemoteLoginInformation": _paged_post(
        "Jobs_ListRemoteLoginInformation", "RemoteLoginInformation"
    ),
    JOB + "/listOutputFiles": _paged_post("Jobs_ListOutputFiles", "File", FILES_QUERY),
    "/bai/sbatch": {
        "POST": Op(
            "Sbatch_Submit",
            "bai sbatch: record a job, answer its wrapper script and sbatch options",
            ok("SbatchPlan"),
            (*BODY, 502, 503),
            SbatchSubmit,
            query=(),
        )
    },
    "/bai/sbatch/{uid}": {
        "POST": Op(
            "Sbatch_Confirm",
            "bai sbatch: the job id sbatch printed (the job's name from now on), or its error",
            ok("Job"),
            (*BODY, 502, 503),
            SbatchConfirm,
            query=(),
        )
    },
    "/bai/files/{path}": {
        "GET": Op(
            "Files_Download",
            "a file behind a signed downloadUrl (Range: one bytes= range)",
            {
                200: Reply("the file", binary=True),
                206: Reply("the range asked for", headers=("Content-Range",), binary=True),
                416: Reply("the range starts past the end", headers=("Content-Range",)),
            },
            (400, 401, 404, 413),
            query=("se", "sig"),
            public=True,
        )
    },
}
