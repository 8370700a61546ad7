"""Mount volumes resolved through the site's storage accounts (DESIGN.md section 5): pure but for
one look-up of the user's groups, made only for a restricted account that does not name the user.

Who may use an account: `storage_accounts.<name>.users` and `.groups` (adapter.settings); the
volumes are checked for the Unix user they are mounted for. A job mounts its cluster's volumes
as the job's user, so a job is checked as its owner against both its own and its cluster's
volumes; a cluster is checked at creation as its owner, the creating token's user.

Names: shares and containers follow Azure's rules, mount paths and file server directories are
plain names joined by '/' (adapter.models.mounts), so nothing joined to a path can leave it.

Mount options: the operator's are the floor, nfs and cifs always get nosuid,nodev, and a request
may add only allow-listed ones (adapter.jobs.mount_options, DESIGN.md section 8).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

from adapter.errors import InvalidRequest
from adapter.jobs.mount_options import kernel_options, rclone_options
from adapter.models.mounts import (
    account_name_problem,
    azure_name_problem,
    directory_problem,
    relative_path_problem,
)
from adapter.settings import StorageAccount
from adapter.unix import groups_of

_FILE_URL = re.compile(r"^https?://(?P<account>[^./]+)\.file\.[^/]+/(?P<share>[^/?#]+)/?$")
ROOT_KINDS = frozenset({"nfs", "cifs", "unmanaged"})  # mounted by the root Prolog


@dataclass(frozen=True)
class Volume:
    """One volume to mount for a job, fully resolved."""

    label: str  # e.g. mountVolumes.azureFileShares[0] (logs): named in errors
    kind: str  # local | rclone | nfs | cifs | unmanaged
    source: str  # local path, rclone remote:path, server:/export, //server/share, or command
    options: str
    mountpoint: str
    adapter_path: str | None  # where the bai host sees the volume's files, if it does
    remote: Mapping[str, str] | None = None  # rclone backend section
    remote_name: str = ""

    def plan(self) -> dict[str, Any]:
        """The node helper's view (slurm/bai-node-helper); never carries secrets."""
        return {
            "label": self.label,
            "kind": self.kind,
            "source": self.source,
            "options": self.options,
            "mountpoint": self.mountpoint,
        }


class _Access:
    """Whether one user may use storage accounts; their groups are looked up once, if needed."""

    def __init__(self, user: str) -> None:
        self.user = user
        self._groups: frozenset[str] | None = None

    def allows(self, account: StorageAccount) -> bool:
        if not account.restricted or self.user in account.users:
            return True
        if self._groups is None:
            self._groups = groups_of(self.user)
        return not self._groups.isdisjoint(account.groups)


@dataclass(frozen=True)
class _Site:
    """What the volumes of one `resolve_volumes` call resolve against, and for whom."""

    root: str
    accounts: Mapping[str, StorageAccount]
    dev_root: str | None
    access: _Access


@dataclass(frozen=True)
class _Named:
    """A storage account a request names, and the field it is named in."""

    name: str
    field: str


def resolve_volumes(
    mount_volumes: Mapping[str, Any] | None,
    *,
    field: str,
    root: str,
    accounts: Mapping[str, StorageAccount],
    dev_root: str | None,
    unmanaged_allowed: Sequence[str],
    user: str,
) -> list[Volume]:
    """Every volume of a `mountVolumes` object, mounted under `root` for the Unix user `user`.
    Refuses, naming the field, a bad name and an account `user` may not use."""
    if not mount_volumes:
        return []
    site = _Site(root, accounts, dev_root, _Access(user))
    volumes: list[Volume] = []
    for i, share in enumerate(mount_volumes.get("azureFileShares") or []):
        label = f"{field}.azureFileShares[{i}]"
        url = f"{label}.azureFileUrl"
        m = _FILE_URL.match(share.get("azureFileUrl", ""))
        if not m:
            raise InvalidRequest(
                f"{url} {share.get('azureFileUrl')!r} is not "
                "https://<account>.file.core.windows.net/<share>",
                target=url,
            )
        named = share.get("accountName")
        account = _Named(named, f"{label}.accountName") if named else _Named(m["account"], url)
        name = _checked(m["share"], url, "share", azure_name_problem)
        volumes.append(_storage(label, account, name, share, site))
    for i, blob in enumerate(mount_volumes.get("azureBlobFileSystems") or []):
        label = f"{field}.azureBlobFileSystems[{i}]"
        account = _Named(blob["accountName"], f"{label}.accountName")
        target = f"{label}.containerName"
        name = _checked(blob["containerName"], target, "container", azure_name_problem)
        volumes.append(_storage(label, account, name, blob, site))
    for i, ref in enumerate(mount_volumes.get("fileServers") or []):
        label = f"{field}.fileServers[{i}]"
        server = ref["fileServer"]["id"].rstrip("/").rsplit("/", 1)[-1]
        account = _Named(server, f"{label}.fileServer.id")
        target = f"{label}.sourceDirectory"
        directory = _checked(
            ref.get("sourceDirectory") or "", target, "directory", directory_problem
        )
        # A file server is always the operator's: never a dev storage directory.
        volumes.append(
            _storage(label, account, directory.strip("/"), ref, replace(site, dev_root=None))
        )
    for i, ref in enumerate(mount_volumes.get("unmanagedFileSystems") or []):
        label = f"{field}.unmanagedFileSystems[{i}]"
        command = ref["mountCommand"].strip()
        if command not in unmanaged_allowed:
            raise InvalidRequest(
                f"{label}.mountCommand {command!r} is not one this site's operator approved; "
                "ask them to add it to jobs.unmanaged_mounts",
                target=f"{label}.mountCommand",
            )
        volumes.append(
            Volume(
                f"{label} ({ref['relativeMountPath']})",
                "unmanaged",
                command,
                "",
                _mountpoint(root, ref["relativeMountPath"], label),
                None,
            )
        )
    points = [v.mountpoint for v in volumes]
    if len(points) != len(set(points)):
        raise InvalidRequest(f"{field}: two volumes share a relativeMountPath", target=field)
    return volumes


def _checked(value: str, target: str, what: str, problem: Callable[[str], str | None]) -> str:
    reason = problem(value)
    if reason is not None:
        raise InvalidRequest(f"{target}: {what} {value!r} {reason}", target=target)
    return value


def _mountpoint(root: str, relative: str, label: str) -> str:
    # The root Prolog creates, chowns and mounts this path: it must stay under `root`.
    reason = relative_path_problem(relative)
    if reason is not None:
        raise InvalidRequest(
            f"{label}.relativeMountPath {relative!r} {reason}", target=f"{label}.relativeMountPath"
        )
    return str(PurePosixPath(root) / relative)


def _storage(label: str, named: _Named, share: str, ref: Mapping[str, Any], site: _Site) -> Volume:
    field = label  # e.g. properties.mountVolumes.fileServers[0]: the error target
    relative = ref["relativeMountPath"]
    mountpoint = _mountpoint(site.root, relative, label)
    label = f"{label} ({relative})"
    account = named.name
    acct = site.accounts.get(account)
    if acct is None and site.dev_root:
        reason = account_name_problem(account)
        if reason is not None:
            raise InvalidRequest(
                f"{named.field}: storage account {account!r} is not configured on this site, "
                f"and it is not a name for a dev storage directory either: it {reason}",
                target=named.field,
            )
        acct = StorageAccount(kind="local", path=f"{site.dev_root}/{account}")
    if acct is None:
        raise InvalidRequest(
            f"{label}: storage account {account!r} is not configured on this site; ask the "
            f"operator to add storage_accounts.{account}",
            target=field,
        )
    if not site.access.allows(acct):
        raise InvalidRequest(
            f"{named.field}: user {site.access.user!r} may not use storage account "
            f"{account!r}; ask the operator to add you to storage_accounts.{account}.users "
            "or .groups",
            target=named.field,
        )
    if acct.kind == "local":  # a symlink: mountOptions mean nothing there and are ignored
        path = f"{acct.path}/{share}" if share else str(acct.path)
        return Volume(label, "local", path, "", mountpoint, path)
    requested = ref.get("mountOptions") or ""
    where = {"label": label, "target": f"{field}.mountOptions", "account": account}
    if not isinstance(requested, str):
        raise InvalidRequest(f"{label}: mountOptions must be a string", target=where["target"])
    adapter = f"{acct.adapter_path}/{share}" if acct.adapter_path else None
    if acct.kind == "rclone":
        name = f"bai-{re.sub(r'[^A-Za-z0-9_-]', '_', account)}"
        return Volume(
            label,
            "rclone",
            f"{name}:{share}",
            rclone_options(requested, **where),
            mountpoint,
            adapter,
            remote=dict(acct.remote),
            remote_name=name,
        )
    if acct.kind == "nfs":
        export = "/".join(p for p in (acct.export.rstrip("/"), share) if p) or "/"
        options = kernel_options("nfs", acct.options, requested, **where)
        return Volume(label, "nfs", f"{acct.server}:{export}", options, mountpoint, adapter)
    return Volume(
        label,
        "cifs",
        f"//{acct.server}/" + "/".join(p for p in (acct.export.strip("/"), share) if p),
        kernel_options("cifs", acct.options, requested, **where),
        mountpoint,
        adapter,
    )


def adapter_view(path: str, volumes: Sequence[Volume]) -> str | None:
    """Where the bai host sees a node path: through the volume it lies on, or as is."""
    target = PurePosixPath(path)
    for volume in volumes:
        point = PurePosixPath(volume.mountpoint)
        if target == point or point in target.parents:
            if volume.adapter_path is None:
                return None
            return str(PurePosixPath(volume.adapter_path) / target.relative_to(point))
    return path
