"""Store records rendered as ARM resources (the JSON the SDK reads)."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from adapter.clusters.view import node_state_counts
from adapter.records import Cluster, Experiment, Job, Workspace
from adapter.scripts.setup_task import setup_output_suffix
from adapter.snapshot import Snapshot

PROVIDER = "Microsoft.BatchAI"


def iso(value: datetime | None) -> str | None:
    """ISO-8601 with a Z, as msrest's deserialize_iso reads it."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def workspace_id(sub: str, rg: str, ws: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{PROVIDER}/workspaces/{ws}"


def workspace_resource(ws: Workspace) -> dict[str, Any]:
    return {
        "id": workspace_id(ws.sub, ws.rg, ws.name),
        "name": ws.name,
        "type": f"{PROVIDER}/workspaces",
        "location": ws.location,
        "tags": ws.tags,
        "properties": {
            "creationTime": iso(ws.created),
            "provisioningState": ws.state,
            "provisioningStateTransitionTime": iso(ws.state_changed),
        },
    }


def experiment_resource(ex: Experiment) -> dict[str, Any]:
    return {
        "id": f"{workspace_id(ex.sub, ex.rg, ex.ws)}/experiments/{ex.name}",
        "name": ex.name,
        "type": f"{PROVIDER}/workspaces/experiments",
        "properties": {
            "creationTime": iso(ex.created),
            "provisioningState": ex.state,
            "provisioningStateTransitionTime": iso(ex.state_changed),
        },
    }


def cluster_id(c: Cluster) -> str:
    return f"{workspace_id(c.sub, c.rg, c.ws)}/clusters/{c.name}"


def cluster_resource(c: Cluster, snapshot: Snapshot | None) -> dict[str, Any]:
    props: dict[str, Any] = copy.deepcopy(c.properties)
    task = (props.get("nodeSetup") or {}).get("setupTask")
    if task is not None:
        task["stdOutErrPathSuffix"] = setup_output_suffix(c.sub, c.rg, c.ws, c.name, c.uid)
    props.update(
        {
            "creationTime": iso(c.created),
            "provisioningState": c.provisioning_state,
            "provisioningStateTransitionTime": iso(c.provisioning_changed),
            "allocationState": c.allocation_state,
            "allocationStateTransitionTime": iso(c.allocation_changed),
            "errors": c.errors,
            "currentNodeCount": len(c.nodes),
            "nodeStateCounts": node_state_counts(c, snapshot),
        }
    )
    return {
        "id": cluster_id(c),
        "name": c.name,
        "type": f"{PROVIDER}/workspaces/clusters",
        "properties": props,
    }


def iso_duration(seconds: int) -> str:
    """ISO-8601 duration as Batch AI answered (P7D, PT2H, P1DT30M)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if v)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "" if days else "T0S")


def job_id(j: Job) -> str:
    return f"{workspace_id(j.sub, j.rg, j.ws)}/experiments/{j.exp}/jobs/{j.name}"


def job_resource(j: Job) -> dict[str, Any]:
    props: dict[str, Any] = copy.deepcopy(j.properties)
    info: dict[str, Any] = {"startTime": iso(j.start_time), "preemptionCount": j.restarts}
    if j.final:
        info.update(endTime=iso(j.end_time), exitCode=j.exit_code, errors=j.errors)
    props.update(
        {
            "toolType": j.info["toolType"],
            "jobOutputDirectoryPathSegment": j.info["segment"],
            "creationTime": iso(j.created),
            "provisioningState": j.provisioning_state,
            "provisioningStateTransitionTime": iso(j.provisioning_changed),
            "executionState": j.execution_state,
            "executionStateTransitionTime": iso(j.execution_changed),
            "executionInfo": info,
        }
    )
    if j.info["limitSeconds"] is not None:  # None: a `bai sbatch` job with no time limit
        # The effective limit: on a low-priority cluster, capped at the low-priority cap.
        props["constraints"] = {"maxWallClockTime": iso_duration(j.info["limitSeconds"])}
    sb = j.info.get("sbatch")
    if sb is not None:  # bai's own: the Slurm job, and each task of a job array
        props["sbatch"] = {**props.get("sbatch", {}), "slurmJobId": j.slurm_id}
        if sb.get("array"):
            props["sbatch"]["array"] = sb["array"]
            props["sbatch"]["tasks"] = [
                {
                    "index": int(index),
                    "state": task.get("state", "queued"),
                    "exitCode": task.get("exitCode"),
                    "slurmJobId": task.get("jobId"),
                }
                for index, task in sorted(sb["tasks"].items(), key=lambda kv: int(kv[0]))
            ]
    return {
        "id": job_id(j),
        "name": j.name,
        "type": f"{PROVIDER}/workspaces/experiments/jobs",
        "properties": props,
    }
