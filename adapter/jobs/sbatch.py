"""`bai sbatch` on the service side: a plain sbatch submission that is also a bai job.

The client (adapter.sbatch.client) reads the script and options with sbatch's rules and sends
them; this module checks each option against the table again, resolves `-p` to one of the
user's clusters, records the job (owned by the caller, in experiment `sbatch` unless another
is named), lays out its spool and root plan, and answers with the wrapper script and the
options for sbatch's command line. The client runs the real sbatch as its user, in its own
working directory and environment, and tells the service the job id sbatch printed, which
becomes the job's name; the reconciler adopts a job whose client stopped before saying so.
"""

from __future__ import annotations

import asyncio
import shlex
import uuid
from dataclasses import dataclass
from typing import Any

import structlog

from adapter.auth import Principal
from adapter.errors import InvalidRequest, NotFound
from adapter.jobs.layout import JobLayout, job_segment
from adapter.jobs.sbatch_script import SCRIPT_NAME, SbatchWrapper, render_sbatch_wrapper
from adapter.jobs.service import JobService, job_labels, layout_info, volume_info
from adapter.jobs.volumes import ROOT_KINDS, resolve_volumes
from adapter.models.common import NAME
from adapter.models.sbatch import SbatchConfirm, SbatchSubmit
from adapter.records import Cluster, Experiment, Job
from adapter.sbatch.options import BY_NAME, Option, SbatchError
from adapter.sbatch.values import parse_array, parse_nodes, parse_time
from adapter.workspaces import WorkspaceService

log = structlog.get_logger(__name__)

DEFAULT_EXPERIMENT = "sbatch"
# Options the client acts on itself; they never reach sbatch's command line from here.
CLIENT_ONLY = frozenset(
    {
        "partition",
        "experiment",
        "parsable",
        "wait",
        "quiet",
        "help",
        "usage",
        "version",
        "wrap",
        "ignore-pbs",
    }
)
# The options bai rewrites or adds after the user's (sbatch takes the last of each).
OWN = frozenset({"comment", "time"})


def error(*lines: str, target: str = "options") -> InvalidRequest:
    """A refusal the client prints as sbatch would: each line `sbatch: error: ...`."""
    return InvalidRequest("\n".join(f"sbatch: error: {line}" for line in lines), target=target)


@dataclass(frozen=True)
class Given:
    option: Option
    value: str | None
    source: str


@dataclass(frozen=True)
class Translation:
    """The user's options as sbatch's command line, with what bai learnt from them."""

    argv: list[str]
    nodes: int
    limit_minutes: int | None
    capped: bool
    array: str | None
    workdir: str
    output: str | None
    error: str | None
    job_name: str | None
    comment: str | None


def checked(body: SbatchSubmit) -> list[Given]:
    """Every option is one of sbatch's and not one bai refuses, with the argument it takes."""
    out = []
    for item in body.options:
        option = BY_NAME.get(item.name)
        if option is None:
            raise error(f"unrecognized option '--{item.name}'")
        if option.treatment == "refused":
            raise error(f"bai sbatch does not support --{option.name}: {option.note}")
        if option.arg == "none" and item.value is not None:
            raise error(f"option '--{option.name}' doesn't allow an argument")
        if option.arg == "required" and item.value is None:
            raise error(f"option '--{option.name}' requires an argument")
        if item.value is not None and ("\n" in item.value or "\0" in item.value):
            raise error(f"--{option.name}: the value has a line break or a NUL in it")
        out.append(Given(option, item.value, item.source))
    return out


def last(given: list[Given], name: str) -> str | None:
    found = [g for g in given if g.option.name == name]
    return found[-1].value if found else None


def _sbatch_value(parse: Any, text: str) -> Any:
    try:
        return parse(text)
    except SbatchError as exc:
        raise InvalidRequest("\n".join(exc.lines), target="options") from None


def translate(
    given: list[Given],
    *,
    uid: str,
    partition: str,
    low_priority: bool,
    cap_minutes: int,
    grace_seconds: int,
    workdir: str,
    default_name: str | None,
) -> Translation:
    """sbatch's command line for the job: the user's options in their order, then bai's own
    (the partition, the comment that names the job, the low-priority cap and notice)."""
    argv = []
    if last(given, "job-name") is None and default_name is not None:
        argv.append(f"--job-name={default_name}")  # the name sbatch gives: the script's
    for g in given:
        if g.option.name in CLIENT_ONLY or g.option.name in OWN:
            continue
        argv.append(f"--{g.option.name}" + ("" if g.value is None else f"={g.value}"))
    time_text = last(given, "time")
    minutes = _sbatch_value(parse_time, time_text) if time_text is not None else None
    capped = low_priority and (minutes is None or minutes > cap_minutes)
    if capped:
        minutes = cap_minutes
    argv.append(f"--partition={partition}")
    comment = last(given, "comment")
    argv.append(f"--comment=bai:{uid}" + (f" {comment}" if comment else ""))
    if minutes is not None:
        argv.append(f"--time={minutes}")
    if low_priority and last(given, "signal") is None:
        # As for every low-priority bai job: the batch shell hears of a preemption (USR1).
        argv.append(f"--signal=B:USR1@{grace_seconds}")
    nodes_text = last(given, "nodes")
    nodes = _sbatch_value(parse_nodes, nodes_text)[0] if nodes_text else 1
    array = last(given, "array")
    if array is not None:
        _sbatch_value(parse_array, array)
    chdir = last(given, "chdir")
    if chdir:
        workdir = chdir if chdir.startswith("/") else f"{workdir.rstrip('/')}/{chdir}"
    return Translation(
        argv=argv,
        nodes=nodes,
        limit_minutes=minutes,
        capped=capped,
        array=array,
        workdir=workdir,
        output=last(given, "output"),
        error=last(given, "error"),
        job_name=last(given, "job-name") or default_name or "sbatch",
        comment=comment,
    )


class SbatchJobs:
    """Records, prepares and confirms the jobs `bai sbatch` submits."""

    def __init__(self, jobs: JobService, workspaces: WorkspaceService) -> None:
        self.jobs = jobs
        self.workspaces = workspaces

    def cluster(self, principal: Principal, text: str | None) -> Cluster:
        """The cluster `-p` names: `workspace/cluster`, its Slurm partition, or its name when
        only one of the user's clusters has it."""
        mine = [
            c
            for c in self.jobs.store.clusters()
            if c.provisioning_state != "deleting" and self.jobs.tenancy.may_use(principal, c)
        ]
        if not text:
            raise error(
                "bai sbatch needs -p/--partition naming one of your bai clusters "
                "(its name, workspace/cluster, or its partition)",
                *_known(mine),
                target="partition",
            )
        ws, _, name = text.rpartition("/")
        found = [c for c in mine if c.partition == text]
        found = found or [c for c in mine if c.name == name and (not ws or c.ws == ws)]
        if len(found) > 1:
            raise error(
                f"partition {text!r} names several of your clusters; give workspace/cluster: "
                + ", ".join(sorted(f"{c.ws}/{c.name}" for c in found)),
                target="partition",
            )
        if not found:
            raise error(f"invalid partition specified: {text}", *_known(mine), target="partition")
        return found[0]

    def _experiment(self, principal: Principal, cluster: Cluster, name: str | None) -> Experiment:
        exp = name or DEFAULT_EXPERIMENT
        if not NAME.fullmatch(exp):
            raise error(
                f"experiment {exp!r} is not a valid name (letters, digits, '-' and '_', at "
                "most 64); set --experiment or BAI_EXPERIMENT to another",
                target="experiment",
            )
        ws = self.jobs.tenancy.workspace(principal, cluster.sub, cluster.rg, cluster.ws)
        existing = self.jobs.store.experiment(cluster.sub, cluster.rg, cluster.ws, exp)
        if existing is not None and existing.state == "deleting":
            raise error(f"experiment {exp} is being deleted; name another", target="experiment")
        return existing or self.workspaces.create_experiment(ws, exp, principal.user)

    async def submit(self, body: SbatchSubmit, principal: Principal) -> tuple[Job, list[str], str]:
        """Record the job and lay out its spool; the wrapper and options for the client."""
        given = checked(body)
        cluster = self.cluster(principal, body.partition)
        svc = self.jobs
        cfg = svc.settings
        uid = str(uuid.uuid4())
        low = cluster.priority == "lowpriority"
        cap = cfg.clusters.lowpriority_max_time_minutes
        tr = translate(
            given,
            uid=uid,
            partition=cluster.partition,
            low_priority=low,
            cap_minutes=cap,
            grace_seconds=cfg.clusters.lowpriority_grace_time_seconds,
            workdir=body.workdir,
            default_name=(
                body.script_name.rsplit("/", 1)[-1]
                if body.script_name
                else ("wrap" if any(g.option.name == "wrap" for g in given) else None)
            ),
        )
        exp = self._experiment(principal, cluster, body.experiment)
        name = f"sbatch-{uid[:8]}"  # until sbatch says the job's id
        segment = job_segment(cluster.sub, cluster.rg, cluster.ws, exp.name, name, uid)
        layout = sbatch_layout(segment, uid, cfg.jobs.job_root, cfg.clusters.spool_dir)
        dev_root = str(cfg.dev_storage_root) if cfg.dev_storage_root else None
        volumes = resolve_volumes(
            (cluster.properties.get("nodeSetup") or {}).get("mountVolumes"),
            field="cluster nodeSetup.mountVolumes",
            root=layout.mount_root,
            accounts=cfg.storage_accounts,
            dev_root=dev_root,
            unmanaged_allowed=cfg.jobs.unmanaged_mounts,
            user=principal.user,
        )
        facts = svc.node_facts(cluster)
        wrapper = render_sbatch_wrapper(
            SbatchWrapper(
                title=f"{cluster.rg}/{cluster.ws}/{exp.name}",
                uid=uid,
                layout=layout,
                array=tr.array is not None,
                time_limit_seconds=tr.limit_minutes * 60 if tr.limit_minutes else None,
                capped=tr.capped,
                gpus_per_node=facts.node_type.gpus if facts.node_type else 0,
                node_addresses=facts.addresses,
                args=body.args,
                user_volumes=any(v.kind not in ROOT_KINDS for v in volumes),
                # USR1 is bai's preemption notice only where bai asked for it (above).
                forward_usr1=not (low and last(given, "signal") is None),
            )
        )
        command = shlex.join([body.script_name or "(standard input)", *body.args])
        t = svc.clock()
        job = Job(
            uid=uid,
            sub=cluster.sub,
            rg=cluster.rg,
            ws=cluster.ws,
            exp=exp.name,
            name=name,
            cluster_uid=cluster.uid,
            owner=principal.user,
            properties={
                "cluster": {"id": _cluster_id(cluster)},
                "nodeCount": tr.nodes,
                "schedulingPriority": "normal",
                "customToolkitSettings": {"commandLine": command},
                "stdOutErrPathPrefix": tr.workdir,
                "sbatch": {
                    "options": [[g.option.name, g.value] for g in given],
                    "arguments": tr.argv,
                },
            },
            secrets={},
            script=wrapper,
            info={
                "kind": "sbatch",
                "toolType": "custom",
                "segment": segment,
                "layout": layout_info(layout),
                "capped": tr.capped,
                "limitSeconds": tr.limit_minutes * 60 if tr.limit_minutes else None,
                "capSeconds": cap * 60,
                "labels": job_labels(cluster),
                "volumes": [volume_info(v) for v in volumes],
                "sbatch": {
                    "workdir": tr.workdir,
                    "output": tr.output,
                    "error": tr.error,
                    "array": tr.array,
                    "jobName": tr.job_name,
                    "tasks": {},
                },
            },
            created=t,
            provisioning_state="succeeded",
            provisioning_changed=t,
            execution_state="queued",
            execution_changed=t,
        )
        async with svc.lock:
            svc.store.put_job(job)
        files = {SCRIPT_NAME: body.script}
        await svc.write_spool(job, files)
        log.info("sbatch job recorded", uid=uid, cluster=cluster.name, user=principal.user)
        return job, tr.argv, wrapper

    async def confirm(self, uid: str, body: SbatchConfirm, principal: Principal) -> Job:
        """The client ran sbatch: the job is named after the id it printed, or forgotten if
        sbatch refused it (as a failed sbatch leaves nothing behind)."""
        svc = self.jobs
        job = svc.store.job_by_uid(uid)
        if job is None or job.info.get("kind") != "sbatch" or job.owner != principal.user:
            raise NotFound(f"bai sbatch job {uid} does not exist", target="uid")
        if body.slurm_job_id is None:
            async with svc.lock:
                if job.slurm_id is None:
                    await asyncio.to_thread(svc.spool.remove, job)
                    svc.store.delete_job(uid)
                    log.info("sbatch job forgotten: sbatch refused it", uid=uid)
            return job
        cluster = svc.store.cluster_by_uid(job.cluster_uid)
        partitions = [cluster.partition] if cluster else []
        seen = [
            j
            for j in await svc.backend.jobs(partitions)
            if body.slurm_job_id in (j.job_id, j.array_job_id)
        ]
        if not any(
            j.comment.split(" ", 1)[0] == f"bai:{uid}" and j.user == job.owner for j in seen
        ):
            raise InvalidRequest(
                f"Slurm job {body.slurm_job_id} is not the one bai sbatch prepared ({uid})",
                target="slurmJobId",
            )
        async with svc.lock:
            fresh = svc.store.job_by_uid(uid)
            if fresh is not None and fresh.slurm_id is None:
                await svc.adopt(fresh, body.slurm_job_id)
                job = fresh
        return svc.store.job_by_uid(uid) or job


def sbatch_layout(segment: str, uid: str, job_root: str, spool_root: str) -> JobLayout:
    """The paths of a `bai sbatch` job: those of every bai job, but no stdouterr or output
    directories of bai's (sbatch's own -o/-e files are the job's output)."""
    job_temp = f"{job_root}/{uid}"
    spool = f"{spool_root}/jobs/{uid}"
    return JobLayout(
        segment=segment,
        job_temp=job_temp,
        job_temp_dir=job_root,
        job_mount_root=f"{job_temp}/mounts",
        mount_root=f"{job_temp}/cluster-mounts",
        spool=spool,
        shared_temp=f"{spool}/shared",
        stdouterr="",
        outputs={},
        inputs={},
    )


def _cluster_id(c: Cluster) -> str:
    return (
        f"/subscriptions/{c.sub}/resourceGroups/{c.rg}/providers/Microsoft.BatchAI/"
        f"workspaces/{c.ws}/clusters/{c.name}"
    )


def _known(clusters: list[Cluster]) -> list[str]:
    if not clusters:
        return ["you have no bai clusters; create one with `bai cluster create`"]
    names = ", ".join(sorted(f"{c.ws}/{c.name}" for c in clusters))
    return [f"your clusters: {names}"]
