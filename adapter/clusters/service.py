"""Clusters: validation, capacity, and carrying out `plan_cluster` against Slurm and the store."""

from __future__ import annotations

import asyncio
import copy
import pwd
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from adapter.accounts import system_account
from adapter.auth import Principal
from adapter.backends.base import PartitionSpec, SlurmBackend
from adapter.backends.runner import LocalRunner, SpoolFiles
from adapter.clock import Clock, now
from adapter.clusters import quotas
from adapter.clusters.inventory import NodeType, resolve_vm_size
from adapter.clusters.plan import (
    SETUP_COMMENT,
    ClusterPlan,
    World,
    plan_cluster,
    reservation_name,
    scale_of,
)
from adapter.errors import (
    BackendError,
    Conflict,
    InsufficientCapacity,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
)
from adapter.jobs.volumes import resolve_volumes
from adapter.models.clusters import ClusterCreateParameters, ScaleSettings
from adapter.records import AllocationState, Cluster, Operation
from adapter.scripts.setup_task import SetupJob, render_setup, setup_output_suffix
from adapter.scripts.shell import expand_path, export
from adapter.settings import QuotaSettings, Settings
from adapter.snapshot import Snapshot
from adapter.store import Store
from adapter.tenancy import missing_cluster, slurm_groups
from adapter.unix import groups_of, primary_group

log = structlog.get_logger(__name__)

SSH_KEY = re.compile(
    r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-\S+) [A-Za-z0-9+/=]+( [^\n\r]*)?$"
)
# Errors bai reports for a cluster that come from node setup, by node.
SETUP_FAILED = "SetupTaskFailed"


@dataclass(frozen=True)
class ClusterKey:
    sub: str
    rg: str
    ws: str
    name: str

    def __str__(self) -> str:
        return f"{self.rg}/{self.ws}/{self.name}"


def partition_name(name: str, uid: str) -> str:
    """A readable, unique Slurm partition name for a cluster (`<name>-<6 hex>`)."""
    ascii_name = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:40].strip("-_") or "cluster"
    return f"{ascii_name}-{uid[:6]}"


def split_secrets(properties: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Properties without secret values (as stored and returned), and the secrets bai needs
    later: only the setup task's. The admin password (bai makes no accounts) and cluster
    volume account keys (the operator's storage accounts hold credentials) are dropped."""
    props = copy.deepcopy(properties)
    secrets: dict[str, Any] = {}
    account = props.get("userAccountSettings") or {}
    if account.get("adminUserPassword") is not None:
        account["adminUserPassword"] = None
    task = (props.get("nodeSetup") or {}).get("setupTask") or {}
    for item in task.get("secrets") or []:
        secrets.setdefault("setupTask", {})[item["name"]] = item.get("value")
        item["value"] = None
    volumes = (props.get("nodeSetup") or {}).get("mountVolumes") or {}
    for kind in ("azureFileShares", "azureBlobFileSystems"):
        for volume in volumes.get(kind) or []:
            creds = volume.get("credentials") or {}
            if creds.get("accountKey") is not None:
                creds["accountKey"] = None
    return props, secrets


class ClusterService:
    """Everything that changes clusters. One lock: capacity checks and changes never interleave."""

    def __init__(
        self,
        store: Store,
        backend: SlurmBackend,
        settings: Settings,
        snapshot: Callable[[], Snapshot | None],
        refresh: Callable[[], Awaitable[Snapshot]],
        held_demand: Callable[[Cluster], int] = lambda _c: 0,
        clock: Clock = now,
        spool_files: SpoolFiles | None = None,
    ) -> None:
        self.store = store
        # The spool is on the filesystem this host shares with the nodes, whichever runner
        # reaches Slurm (the ssh runner's files are the controller host's own).
        self.spool_files: SpoolFiles = spool_files or LocalRunner()
        self.backend = backend
        self.settings = settings
        self.snapshot = snapshot
        self.refresh = refresh
        self.held_demand = held_demand
        self.clock = clock
        self.lock = asyncio.Lock()
        # Partition specs applied by this process; a spec is re-applied when it differs.
        self._applied: dict[str, PartitionSpec] = {}
        # Clusters whose setup-secrets.env this process has removed since it last wrote one.
        self._secrets_removed: set[str] = set()

    # -- reads ---------------------------------------------------------------------------------

    def get(self, key: ClusterKey) -> Cluster:
        cluster = self.store.cluster(key.sub, key.rg, key.ws, key.name)
        if cluster is None:
            raise missing_cluster(key.rg, key.ws, key.name)
        return cluster

    async def fresh_snapshot(self) -> Snapshot:
        """Slurm as it is now: writes decide on it (capacity, which jobs a shrink touches)."""
        return await self.refresh()

    # -- writes --------------------------------------------------------------------------------

    async def create(
        self, key: ClusterKey, body: ClusterCreateParameters, principal: Principal
    ) -> Cluster:
        if self.store.workspace(key.sub, key.rg, key.ws) is None:
            raise NotFound(
                f"workspace {key.rg}/{key.ws} does not exist; create it first",
                target="workspaceName",
            )
        props = body.properties
        wire = body.wire()["properties"]
        async with self.lock:
            existing = self.store.cluster(key.sub, key.rg, key.ws, key.name)
            if existing is not None:
                if existing.provisioning_state != "deleting" and (
                    split_secrets(wire)[0] == existing.properties
                ):
                    return existing  # the same PUT again: nothing to do
                raise Conflict(
                    f"cluster {key} already exists with other settings; change its scale with "
                    "PATCH (bai cluster resize/auto-scale) or delete it first",
                    target="clusterName",
                )
            snap = await self.fresh_snapshot()
            node_type = resolve_vm_size(props.vm_size, snap.types, self.settings.vm_size_aliases)
            admin = props.user_account_settings.admin_user_name
            self._check_admin(admin, props.user_account_settings.admin_user_ssh_public_key)
            principal.require_user(admin, "properties.userAccountSettings.adminUserName")
            if props.node_setup and props.node_setup.setup_task:
                expand_path(
                    props.node_setup.setup_task.std_out_err_path_prefix,
                    {"AZ_BATCHAI_MOUNT_ROOT": self.settings.clusters.mount_root},
                    field="properties.nodeSetup.setupTask.stdOutErrPathPrefix",
                )
            # Checked as the cluster's owner; each job mounts them again as its own user, and
            # is checked so (adapter/jobs/volumes.py).
            resolve_volumes(
                (wire.get("nodeSetup") or {}).get("mountVolumes"),
                field="properties.nodeSetup.mountVolumes",
                root=self.settings.clusters.mount_root,
                accounts=self.settings.storage_accounts,
                dev_root=str(dev) if (dev := self.settings.dev_storage_root) else None,
                unmanaged_allowed=self.settings.jobs.unmanaged_mounts,
                user=principal.user,
            )
            uid = str(uuid.uuid4())
            self._check_quota(
                principal.user, props.vm_priority, node_type, props.scale_settings, snap, None
            )
            notes = self._check_capacity(
                props.vm_priority, node_type, props.scale_settings, snap, exclude=None, current=0
            )
            stored, secrets = split_secrets(wire)
            initial = 0
            if props.scale_settings.auto_scale is not None:
                # initialNodeCount applies once, at creation: as demand for that many nodes.
                initial = props.scale_settings.auto_scale.initial_node_count
            t = self.clock()
            cluster = Cluster(
                uid=uid,
                sub=key.sub,
                rg=key.rg,
                ws=key.ws,
                name=key.name,
                partition=partition_name(key.name, uid),
                node_type=node_type.name,
                priority=props.vm_priority,
                properties=stored,
                secrets=secrets,
                owner=principal.user,
                created=t,
                provisioning_state="creating",
                provisioning_changed=t,
                allocation_state="resizing",
                allocation_changed=t,
                errors=notes,
            )
            self.store.put_cluster(cluster)
            log.info(
                "cluster created",
                cluster=str(key),
                partition=cluster.partition,
                node_type=node_type.name,
                priority=props.vm_priority,
            )
            return await self._converge_locked(cluster, snap, extra_demand=initial)

    async def update(self, key: ClusterKey, scale: ScaleSettings) -> Cluster:
        async with self.lock:
            cluster = self.get(key)
            if cluster.provisioning_state == "deleting":
                raise Conflict(f"cluster {key} is being deleted", target="clusterName")
            snap = await self.fresh_snapshot()
            node_type = snap.types.get(cluster.node_type)
            if node_type is None:
                raise InvalidRequest(f"node type {cluster.node_type} is gone from Slurm")
            active = sum(1 for r in cluster.nodes.values() if r.state != "leaving")
            self._check_quota(cluster.owner, cluster.priority, node_type, scale, snap, cluster)
            notes = self._check_capacity(
                cluster.priority, node_type, scale, snap, exclude=cluster.uid, current=active
            )
            cluster.properties["scaleSettings"] = scale.wire()
            cluster.errors = [e for e in cluster.errors if e.get("code") == SETUP_FAILED] + notes
            self.store.put_cluster(cluster)
            log.info("cluster scale changed", cluster=str(key), scale=scale.wire())
            return await self._converge_locked(cluster, snap)

    async def delete(self, key: ClusterKey, owner: str) -> Operation:
        async with self.lock:
            cluster = self.get(key)
            op = self.store.begin_operation("delete-cluster", cluster.uid, owner)[0]
            if cluster.provisioning_state != "deleting":
                t = self.clock()
                cluster.provisioning_state, cluster.provisioning_changed = "deleting", t
                self.store.put_cluster(cluster)
                log.info("cluster deletion started", cluster=str(key))
            try:
                await self._converge_locked(cluster, await self.fresh_snapshot())
            except BackendError as exc:  # the reconciler carries on with the deletion
                log.warning("cluster deletion waits for Slurm", error=str(exc))
            return op

    # -- validation ----------------------------------------------------------------------------

    def _check_admin(self, user: str, ssh_key: str | None) -> None:
        field = "properties.userAccountSettings"
        try:
            account = pwd.getpwnam(user)
        except KeyError:
            raise InvalidRequest(
                f"{field}.adminUserName {user!r} is not a Unix user on the cluster; bai does not "
                "create accounts: use an existing user (yours) or ask the operator to add it",
                target=f"{field}.adminUserName",
            ) from None
        # The setup task and the SSH account run as this user: an admin token must not make
        # them root's unless the operator says so (docs/security.md, "Tokens").
        reason = system_account(account)
        if reason and user not in self.settings.auth.allow_system_run_as:
            raise InvalidRequest(
                f"{field}.adminUserName {user!r} is a system account ({reason}); the cluster's "
                "setup task and SSH account run as it, so bai refuses it unless the operator "
                "lists it in the setting auth.allow_system_run_as; use a person's user",
                target=f"{field}.adminUserName",
            )
        if ssh_key is not None and not SSH_KEY.match(ssh_key.strip()):
            raise InvalidRequest(
                f"{field}.adminUserSshPublicKey is not an OpenSSH public key line "
                "(e.g. 'ssh-ed25519 AAAA... comment')",
                target=f"{field}.adminUserSshPublicKey",
            )

    def _check_capacity(
        self,
        priority: str,
        node_type: NodeType,
        scale: ScaleSettings,
        snap: Snapshot,
        *,
        exclude: str | None,
        current: int,
    ) -> list[dict[str, str]]:
        """Refuse what cannot fit now; return notes for what is capped (autoscale max)."""
        if scale.manual is not None:
            needed, most = scale.manual.target_node_count, scale.manual.target_node_count
            target = "properties.scaleSettings.manual.targetNodeCount"
        else:
            auto = scale.auto_scale
            assert auto is not None
            needed = max(
                auto.minimum_node_count, min(auto.initial_node_count, auto.maximum_node_count)
            )
            most = auto.maximum_node_count
            target = "properties.scaleSettings.autoScale"
        usable = [n for n in node_type.nodes if (nd := snap.nodes.get(n)) is not None and nd.usable]
        if priority == "lowpriority":
            free = usable
            why = f"the node type has {len(node_type.nodes)} node(s), {len(usable)} usable"
        else:
            owned = self._dedicated_owned(exclude)
            mine = self._members(exclude)
            free = [n for n in usable if n not in owned or n in mine]
            why = (
                f"{len(free)} of its {len(node_type.nodes)} node(s) are free or already this "
                f"cluster's; the others are owned by dedicated clusters or unusable"
            )
        if needed > len(free) and needed > current:
            raise InsufficientCapacity(
                f"the cluster needs {needed} {node_type.name} node(s) but {why}. Ask for fewer "
                "nodes, use autoScale with a lower minimum, or vmPriority lowpriority",
                target=target,
            )
        if most > len(free):
            return [
                {
                    "code": "AutoScaleCapped" if scale.auto_scale else "InsufficientCapacity",
                    "message": f"{most} {node_type.name} node(s) asked for but only {len(free)} "
                    "free now; the cluster holds at most what is free",
                }
            ]
        return []

    def _check_quota(
        self,
        owner: str,
        priority: str,
        node_type: NodeType,
        scale: ScaleSettings,
        snap: Snapshot,
        cluster: Cluster | None,
    ) -> None:
        """Refuse a cluster (`cluster` None) or a new scale of `cluster` that would take its
        owner past a GPU quota. What counts: a manual target; an autoscale minimum, or at
        creation the initial count if more. A scale that claims no more nodes than the cluster
        already counts passes, so a quota lowered since never blocks a shrink."""
        if scale.manual is not None:
            nodes = scale.manual.target_node_count
            target = "properties.scaleSettings.manual.targetNodeCount"
        else:
            auto = scale.auto_scale
            assert auto is not None
            nodes, target = auto.minimum_node_count, "properties.scaleSettings.autoScale"
            if cluster is None and min(auto.initial_node_count, auto.maximum_node_count) > nodes:
                nodes = min(auto.initial_node_count, auto.maximum_node_count)
                target += ".initialNodeCount"
            else:
                target += ".minimumNodeCount"
        if cluster is not None and nodes <= quotas.held_nodes(cluster):
            return
        others = [c for c in self.store.clusters() if cluster is None or c.uid != cluster.uid]
        view = self._quota_view(owner, others, snap)
        why = quotas.over_quota(owner, priority, nodes, node_type, *view)
        if why is not None:
            raise QuotaExceeded(why, target=target)

    def _quota_view(
        self,
        owner: str,
        others: list[Cluster],
        snap: Snapshot,
        groups: quotas.Groups | None = None,
    ) -> tuple[list[quotas.Holding], quotas.Groups, QuotaSettings]:
        """What the quota arithmetic needs for `owner`: the other clusters' holdings and the
        groups of everyone involved (`groups`, the pass's, or looked up now: a membership change
        counts at once)."""
        cfg = self.settings.quotas
        if not quotas.configured(cfg):
            return [], {}, cfg
        held = quotas.holdings(others, snap.types)
        if groups is None:
            groups = self._memberships([owner, *(c.owner for c in others)])
        return held, groups, cfg

    def _memberships(self, users: Iterable[str]) -> quotas.Groups:
        return quotas.memberships(users, self.settings.quotas, groups_of)

    def _quota_room(
        self,
        cluster: Cluster,
        others: list[Cluster],
        snap: Snapshot,
        groups: quotas.Groups | None,
    ) -> quotas.Room | None:
        """The binding quota of a cluster's owner, with what the other clusters count."""
        node_type = snap.types.get(cluster.node_type)
        if node_type is None or node_type.gpus == 0 or not quotas.configured(self.settings.quotas):
            return None
        held, groups, cfg = self._quota_view(cluster.owner, others, snap, groups)
        return next(iter(quotas.rooms(cluster.owner, cluster.priority, held, groups, cfg)), None)

    def _dedicated_owned(self, exclude: str | None) -> set[str]:
        return {
            node
            for c in self.store.clusters()
            if c.priority == "dedicated" and c.uid != exclude
            for node in c.nodes
        }

    def _members(self, uid: str | None) -> set[str]:
        if uid is None:
            return set()
        return {n for c in self.store.clusters() if c.uid == uid for n in c.nodes}

    # -- converging ----------------------------------------------------------------------------

    async def converge_all(self, snap: Snapshot) -> None:
        """One reconciler pass over every cluster."""
        async with self.lock:
            configured = set(await self.backend.configured_partitions())
            clusters = self.store.clusters()
            # Every owner's groups once a pass, not once per cluster and owner.
            groups = self._memberships(c.owner for c in clusters)
            for cluster in clusters:
                if cluster.partition not in configured:
                    self._applied.pop(cluster.partition, None)  # the file lost it: re-apply
                try:
                    await self._converge_locked(cluster, snap, groups=groups)
                except BackendError as exc:
                    log.warning("cluster converge failed", cluster=cluster.name, error=str(exc))
            # The include file is bai's: a partition no cluster owns (its store was lost, or a
            # second bai wrote it, which is not supported) goes once it has no unfinished jobs.
            orphans = configured - {c.partition for c in clusters}
            for name in sorted(orphans):
                if any(j.partition == name and not j.finished for j in snap.jobs):
                    continue
                try:
                    await self.backend.remove_partition(name)
                    log.warning("removed a partition no cluster owns", partition=name)
                except BackendError as exc:
                    log.warning("orphan partition stays", partition=name, error=str(exc))

    async def _converge_locked(
        self,
        cluster: Cluster,
        snap: Snapshot,
        extra_demand: int = 0,
        groups: quotas.Groups | None = None,
    ) -> Cluster:
        world = self._world(cluster, snap, extra_demand, groups)
        plan = plan_cluster(cluster, world, self.settings.clusters)
        await self._execute(cluster, plan, snap)
        return cluster

    def _world(
        self,
        cluster: Cluster,
        snap: Snapshot,
        extra_demand: int,
        groups: quotas.Groups | None = None,
    ) -> World:
        others = [c for c in self.store.clusters() if c.uid != cluster.uid]
        low_shared: dict[str, int] = {}
        for c in others:
            if c.priority == "lowpriority":
                for n in c.nodes:
                    low_shared[n] = low_shared.get(n, 0) + 1
        node_type = snap.types.get(cluster.node_type)
        room = self._quota_room(cluster, others, snap, groups)
        return World(
            nodes=snap.nodes,
            jobs=snap.jobs,
            type_nodes=node_type.nodes if node_type else (),
            dedicated_owned=frozenset(
                n for c in others if c.priority == "dedicated" for n in c.nodes
            ),
            low_shared=low_shared,
            held_demand=self.held_demand(cluster) + extra_demand,
            now=self.clock(),
            allow_groups=self._allow_groups(cluster),
            quota_nodes=None
            if room is None or node_type is None
            else max(0, room.gpus) // node_type.gpus,
            quota=quotas.room_text(room) if room else "",
        )

    def _allow_groups(self, cluster: Cluster) -> tuple[str, ...]:
        """Slurm holds the line bai holds: only users who see the cluster's workspace (and its
        admin user, whose setup tasks run there) may run in its partition, plain sbatch too."""
        ws = self.store.workspace(cluster.sub, cluster.rg, cluster.ws)
        if ws is None:  # a workspace being deleted last: its owner's group stays enough
            return tuple(g for g in (primary_group(cluster.owner),) if g)
        admin = cluster.properties.get("userAccountSettings", {}).get("adminUserName")
        return slurm_groups(ws, [admin] if admin else [])

    async def _execute(self, cluster: Cluster, plan: ClusterPlan, snap: Snapshot) -> None:
        b = self.backend
        if plan.remove_partition:
            await b.remove_partition(cluster.partition)
            self._applied.pop(cluster.partition, None)
            await self._undo_nodes(cluster, plan)
            # Removed before the row goes: a crash in between removes it again next pass.
            await self._remove_spool_path(self._cluster_spool(cluster))
            self._secrets_removed.discard(cluster.uid)
            self.store.delete_cluster(cluster.uid)
            self.store.succeed_operations(cluster.uid)
            log.info("cluster deleted", cluster=cluster.name, partition=cluster.partition)
            return
        live = {n for n, node in snap.nodes.items() if cluster.partition in node.partitions}
        if self._applied.get(cluster.partition) != plan.partition or live != set(
            plan.partition.nodes
        ):
            await b.apply_partition(plan.partition)
            self._applied[cluster.partition] = plan.partition
        # From here on the partition matches the plan: record the new membership.
        cluster.nodes = plan.nodes
        for job_id in plan.requeue:
            await b.requeue(job_id)
        for job_id in plan.cancel:
            await b.cancel(job_id)
        await self._undo_nodes(cluster, plan)
        for node, reason in plan.drain:
            await b.drain_node(node, reason)
        await self._start_setups(cluster)
        await self._drop_setup_secrets(cluster, snap)
        self._record_state(cluster, plan)
        self.store.put_cluster(cluster)

    async def _undo_nodes(self, cluster: Cluster, plan: ClusterPlan) -> None:
        for node in plan.release:
            await self.backend.release_reservation(reservation_name(cluster, node))
        for node in plan.resume:
            await self.backend.resume_node(node)

    async def _start_setups(self, cluster: Cluster) -> None:
        """Reserve each node being prepared and submit its setup job (or retry doing so)."""
        waiting = [
            r for r in cluster.nodes.values() if r.state == "preparing" and r.setup_job is None
        ]
        if not waiting:
            return
        admin = cluster.properties["userAccountSettings"]["adminUserName"]
        secrets_file = await self._write_setup_secrets(cluster, admin)
        for row in waiting:
            resv = reservation_name(cluster, row.node)
            await self.backend.reserve_node(resv, row.node, admin)
            options, script = render_setup(self._setup_job(cluster, row.node, resv, secrets_file))
            row.setup_job = await self.backend.submit_job(options, script, user=admin)
            log.info("node setup submitted", cluster=cluster.name, node=row.node, job=row.setup_job)

    def _setup_job(
        self, cluster: Cluster, node: str, resv: str, secrets_file: str | None
    ) -> SetupJob:
        props = cluster.properties
        task = (props.get("nodeSetup") or {}).get("setupTask") or {}
        mount_root = self.settings.clusters.mount_root
        prefix = task.get("stdOutErrPathPrefix")
        suffix = setup_output_suffix(cluster.sub, cluster.rg, cluster.ws, cluster.name, cluster.uid)
        output_dir = None
        if prefix:
            variables = {"AZ_BATCHAI_MOUNT_ROOT": mount_root}
            output_dir = expand_path(prefix, variables, field="stdOutErrPathPrefix") + "/" + suffix
        return SetupJob(
            partition=cluster.partition,
            node=node,
            reservation=resv,
            comment=f"{SETUP_COMMENT}:{cluster.uid}:{node}",
            output_dir=output_dir,
            mount_root=mount_root,
            command_line=task.get("commandLine"),
            environment={e["name"]: e["value"] for e in task.get("environmentVariables") or []},
            secrets_file=secrets_file,
            ssh_public_key=props["userAccountSettings"].get("adminUserSshPublicKey"),
        )

    def _cluster_spool(self, cluster: Cluster) -> str:
        return f"{self.settings.clusters.spool_dir}/clusters/{cluster.uid}"

    def _setup_secrets_path(self, cluster: Cluster) -> str:
        return f"{self._cluster_spool(cluster)}/setup-secrets.env"

    async def _write_setup_secrets(self, cluster: Cluster, admin: str) -> str | None:
        values: dict[str, str] = cluster.secrets.get("setupTask") or {}
        if not values:
            return None
        path = self._setup_secrets_path(cluster)
        text = "".join(f"{export(name, value)}\n" for name, value in values.items())
        self._secrets_removed.discard(cluster.uid)
        await self.spool_files.write_text(path, text, mode=0o600, owner=admin)
        return path

    async def _drop_setup_secrets(self, cluster: Cluster, snap: Snapshot) -> None:
        """Remove setup-secrets.env once no setup job of the cluster can still read it.

        A setup job sources the file when it starts (again, if Slurm requeues it). So it is
        needed while a node is `preparing`: its job is not submitted yet, or not seen finished
        (`_follow_setup` moves a node on only then). And while Slurm still shows an unfinished
        setup job of the cluster: one cancelled this pass, or on a node that has left. Checked
        on the plan just carried out, before it is stored, so a crash in between removes it
        again; then once per process until the next write (a node joining writes it anew).
        """
        if not cluster.secrets.get("setupTask") or cluster.uid in self._secrets_removed:
            return
        if any(row.state == "preparing" for row in cluster.nodes.values()):
            return
        mine = f"{SETUP_COMMENT}:{cluster.uid}:"
        if any(j.comment.startswith(mine) and not j.finished for j in snap.jobs):
            return
        if await self._remove_spool_path(self._setup_secrets_path(cluster)):
            self._secrets_removed.add(cluster.uid)
            log.info("setup secrets removed", cluster=cluster.name)

    async def _remove_spool_path(self, path: str) -> bool:
        """Remove a file or directory of the cluster's spool; False if it could not be."""
        try:
            await self.spool_files.remove(path)
        except OSError as exc:  # left for the next pass; the cluster's converging goes on
            log.warning("cannot remove from the spool", path=path, error=str(exc))
            return False
        return True

    def _record_state(self, cluster: Cluster, plan: ClusterPlan) -> None:
        t = self.clock()
        if cluster.provisioning_state == "creating":
            cluster.provisioning_state, cluster.provisioning_changed = "succeeded", t
        resizing = any(r.state in {"preparing", "leaving"} for r in cluster.nodes.values())
        scale = scale_of(cluster)
        if scale.manual is not None:
            active = sum(1 for r in cluster.nodes.values() if r.state != "leaving")
            resizing = resizing or active != scale.manual.target_node_count
        state: AllocationState = "resizing" if resizing else "steady"
        if state != cluster.allocation_state:
            cluster.allocation_state, cluster.allocation_changed = state, t
        failed = [n for n, r in cluster.nodes.items() if r.state == "failed"]
        # A QuotaExceeded entry stays only while the planner still finds growth held back.
        kept = [
            e for e in cluster.errors if e.get("code") not in {SETUP_FAILED, QuotaExceeded.code}
        ]
        if plan.notes:
            kept = [e for e in kept if e.get("code") not in {n["code"] for n in plan.notes}]
            kept += plan.notes
        cluster.errors = kept + [
            {
                "code": SETUP_FAILED,
                "message": f"the setup task failed on node {n}; the node is drained. See "
                f"stderr-{n}.txt in the setup task's output directory",
                "details": [{"name": "nodeId", "value": n}],
            }
            for n in failed
        ]
