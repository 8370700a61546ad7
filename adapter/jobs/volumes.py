"""Mount volumes resolved through the site's storage accounts (pure; DESIGN.md section 5).

Mount options: the operator's are the floor, nfs and cifs always get nosuid,nodev, and a request
may add only allow-listed ones (adapter.jobs.mount_options, DESIGN.md section 8).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from adapter.errors import InvalidRequest
from adapter.jobs.mount_options import kernel_options, rclone_options
from adapter.settings import StorageAccount

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


def resolve_volumes(
    mount_volumes: Mapping[str, Any] | None,
    *,
    field: str,
    root: str,
    accounts: Mapping[str, StorageAccount],
    dev_root: str | None,
    unmanaged_allowed: Sequence[str],
) -> list[Volume]:
    """Every volume of a `mountVolumes` object, mounted under `root`."""
    if not mount_volumes:
        return []
    volumes: list[Volume] = []
    for i, share in enumerate(mount_volumes.get("azureFileShares") or []):
        label = f"{field}.azureFileShares[{i}]"
        m = _FILE_URL.match(share.get("azureFileUrl", ""))
        if not m:
            raise InvalidRequest(
                f"{label}.azureFileUrl {share.get('azureFileUrl')!r} is not "
                "https://<account>.file.core.windows.net/<share>",
                target=f"{label}.azureFileUrl",
            )
        account = share.get("accountName") or m.group("account")
        volumes.append(_storage(label, account, m.group("share"), share, root, accounts, dev_root))
    for i, blob in enumerate(mount_volumes.get("azureBlobFileSystems") or []):
        label = f"{field}.azureBlobFileSystems[{i}]"
        volumes.append(
            _storage(
                label, blob["accountName"], blob["containerName"], blob, root, accounts, dev_root
            )
        )
    for i, ref in enumerate(mount_volumes.get("fileServers") or []):
        label = f"{field}.fileServers[{i}]"
        server = ref["fileServer"]["id"].rstrip("/").rsplit("/", 1)[-1]
        share = (ref.get("sourceDirectory") or "").strip("/")
        volumes.append(_storage(label, server, share, ref, root, accounts, None))
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


def _mountpoint(root: str, relative: str, label: str) -> str:
    # The root Prolog creates, chowns and mounts this path: it must stay under `root`.
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise InvalidRequest(
            f"{label}.relativeMountPath {relative!r} must be a path inside the mount root",
            target=f"{label}.relativeMountPath",
        )
    return str(PurePosixPath(root) / rel)


def _storage(
    label: str,
    account: str,
    share: str,
    ref: Mapping[str, Any],
    root: str,
    accounts: Mapping[str, StorageAccount],
    dev_root: str | None,
) -> Volume:
    field = label  # e.g. properties.mountVolumes.fileServers[0]: the error target
    relative = ref["relativeMountPath"]
    mountpoint = _mountpoint(root, relative, label)
    label = f"{label} ({relative})"
    acct = accounts.get(account)
    if acct is None and dev_root:
        acct = StorageAccount(kind="local", path=f"{dev_root}/{account}")
    if acct is None:
        raise InvalidRequest(
            f"{label}: storage account {account!r} is not configured on this site; ask the "
            f"operator to add storage_accounts.{account}",
            target=field,
        )
    if not re.fullmatch(r"[A-Za-z0-9._-]*", share):
        raise InvalidRequest(f"{label}: share {share!r} is not a plain name", target=field)
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
