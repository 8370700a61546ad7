"""A job.json, its cluster and the site's settings, translated into what runs (pure).

`translate` checks what only the cluster and the site can say (node count, container runtime,
path variables, storage accounts) and lays the job out: its directories, its volumes, its
toolkit's launch and its sbatch script. It reads no store, runs nothing and writes nothing, so
it is unit-tested on its own (tests/unit/jobs/test_translate.py); JobService records the plan.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from adapter.backends.slurm_options import SlurmOptions
from adapter.clusters.inventory import NodeType
from adapter.errors import InvalidRequest
from adapter.jobs.launch import Launch, Runtime, launch_for
from adapter.jobs.layout import JobLayout, build_layout, job_segment
from adapter.jobs.script import JobScript, render_job
from adapter.jobs.volumes import ROOT_KINDS, Volume, resolve_volumes
from adapter.models.jobs import TOOLKITS, JobProperties
from adapter.records import Cluster
from adapter.settings import Settings

# The toolkits whose processCount Batch AI filled in with nodeCount when a job left it out.
PROCESS_COUNT_DEFAULTED = frozenset(
    {"cntkSettings", "pyTorchSettings", "chainerSettings", "customMpiSettings", "horovodSettings"}
)


@dataclass(frozen=True)
class JobKey:
    sub: str
    rg: str
    ws: str
    exp: str
    name: str

    def __str__(self) -> str:
        return f"{self.rg}/{self.ws}/{self.exp}/{self.name}"


@dataclass(frozen=True)
class NodeFacts:
    """What the last pass saw of a cluster's nodes: their type and their addresses."""

    node_type: NodeType | None = None
    addresses: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobPlan:
    """What a job.json becomes: its place on the nodes, what it mounts, how it starts, and the
    script that does all of it."""

    uid: str
    tool: str  # toolType: custom, custommpi, horovod, ...
    segment: str
    layout: JobLayout
    volumes: Sequence[Volume]
    launch: Launch
    job_script: JobScript
    options: SlurmOptions  # what in-process submission gives Slurm
    script: str  # job_script rendered, its #SBATCH lines the options: what sbatch runs
    capped: bool  # the low-priority cap shortened the requested wall clock time
    limit: timedelta
    cap: timedelta


def max_nodes(cluster: Cluster) -> int:
    """The most nodes the cluster may ever have (a manual cluster may be above its target
    while it shrinks)."""
    scale = cluster.properties["scaleSettings"]
    if scale.get("manual") is not None:
        return max(int(scale["manual"]["targetNodeCount"]), len(cluster.nodes))
    return int(scale["autoScale"]["maximumNodeCount"])


def runtime_of(settings: Settings, node_type: NodeType | None) -> Runtime:
    jobs = settings.jobs
    return Runtime(
        srun_mpi=jobs.srun_mpi,
        mpirun=tuple(jobs.mpirun),
        mpirun_toolkits=frozenset(jobs.mpirun_toolkits),
        python=jobs.python,
        cpus=node_type.cpus if node_type else 0,
    )


def translate(
    key: JobKey,
    props: JobProperties,
    wire: Mapping[str, Any],
    cluster: Cluster,
    facts: NodeFacts,
    settings: Settings,
    *,
    uid: str,
    user: str,
    share_group: str | None,
) -> JobPlan:
    """The plan of job `key` (`props` and its wire form `wire`) on `cluster`, run as `user`;
    `share_group` may read its outputs (a shared workspace's), else only `user`. Raises
    InvalidRequest naming the field for what this cluster or site cannot run."""
    most = max_nodes(cluster)
    if props.node_count > most:
        raise InvalidRequest(
            f"properties.nodeCount {props.node_count} is more than cluster {cluster.name} can "
            f"ever have ({most}); lower nodeCount or scale the cluster",
            target="properties.nodeCount",
        )
    containers = settings.containers
    container = props.container_settings
    image = container.image_source_registry.image if container else None
    if image and containers.runtime == "none":
        raise InvalidRequest(
            "properties.containerSettings: this site has no container runtime configured; "
            "remove containerSettings to run on the nodes directly, or ask the operator to "
            "set containers.runtime",
            target="properties.containerSettings",
        )
    wrapped = bool(image and containers.runtime == "template")
    segment = job_segment(key.sub, key.rg, key.ws, key.exp, key.name, uid)
    job_root = settings.jobs.job_root
    layout = build_layout(
        segment=segment,
        uid=uid,
        job_root=job_root,
        spool_root=settings.clusters.spool_dir,
        cluster_mount_root=f"{job_root}/{uid}/cluster-mounts",
        std_out_err_prefix=props.std_out_err_path_prefix,
        outputs=[d.wire() for d in props.output_directories],
        inputs=[d.wire() for d in props.input_directories],
    )
    resolve = functools.partial(
        resolve_volumes,
        accounts=settings.storage_accounts,
        dev_root=str(settings.dev_storage_root) if settings.dev_storage_root else None,
        unmanaged_allowed=settings.jobs.unmanaged_mounts,
        user=user,  # the job's owner mounts the cluster's volumes too
    )
    volumes = resolve(
        (cluster.properties.get("nodeSetup") or {}).get("mountVolumes"),
        field="cluster nodeSetup.mountVolumes",
        root=layout.mount_root,
    ) + resolve(
        wire.get("mountVolumes"), field="properties.mountVolumes", root=layout.job_mount_root
    )
    low = cluster.priority == "lowpriority"
    requested = props.constraints.max_wall_clock_time
    cap = timedelta(minutes=settings.clusters.lowpriority_max_time_minutes)
    capped = low and requested > cap
    limit = cap if capped else requested
    node_type = facts.node_type
    gpus = node_type.gpus if node_type else 0
    toolkit_key = props.toolkit_key
    tool = TOOLKITS[toolkit_key]
    launch = launch_for(
        tool,
        wire[toolkit_key],
        nodes=props.node_count,
        gpus=gpus,
        variables=layout.variables(),
        runtime=runtime_of(settings, node_type),
        container=wrapped,
        image=bool(image),
        field=f"properties.{toolkit_key}",
    )
    job_script = JobScript(
        title=str(key),
        uid=uid,
        name=key.name,
        partition=cluster.partition,
        nodes=props.node_count,
        gpu_type=node_type.gpu_type if node_type else None,
        gpus_per_node=gpus,
        time_limit_minutes=math.ceil(limit.total_seconds() / 60),
        capped=capped,
        priority=props.scheduling_priority,
        low_priority=low,
        grace_seconds=settings.clusters.lowpriority_grace_time_seconds,
        layout=layout,
        environment=[(e.name, e.value) for e in props.environment_variables],
        secrets_file=f"{layout.spool}/secrets.env" if props.secrets else None,
        plan_file=f"{layout.spool}/plan.json",
        node_addresses=facts.addresses,
        launch=launch,
        job_preparation=props.job_preparation.command_line if props.job_preparation else None,
        container_prefix=[w.replace("{image}", image) for w in containers.command]
        if image and wrapped
        else [],
        image_not_used=image if containers.runtime == "host" else None,
        host_path=containers.host_path,
        share_group=share_group,
        user_volumes=any(v.kind not in ROOT_KINDS for v in volumes),
    )
    options, script = render_job(job_script)
    return JobPlan(
        uid=uid,
        tool=tool,
        segment=segment,
        layout=layout,
        volumes=volumes,
        launch=launch,
        job_script=job_script,
        options=options,
        script=script,
        capped=capped,
        limit=limit,
        cap=cap,
    )
