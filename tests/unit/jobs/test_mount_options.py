"""Mount options: the operator's floor, nosuid,nodev always, and a request's allow-listed extras."""

from __future__ import annotations

import re
import shlex
from typing import Any, Literal

import pytest

from adapter.errors import InvalidRequest
from adapter.jobs import mount_options
from adapter.jobs.mount_options import (
    CIFS_OPTIONS,
    NFS_OPTIONS,
    RCLONE_FLAGS,
    kernel_options,
    rclone_options,
)
from adapter.jobs.volumes import resolve_volumes
from adapter.settings import StorageAccount

LABEL = "properties.mountVolumes.fileServers[0] (data)"
TARGET = "properties.mountVolumes.fileServers[0].mountOptions"
WHERE: dict[str, Any] = {"label": LABEL, "target": TARGET, "account": "nas"}


def kernel(kind: Literal["nfs", "cifs"], floor: str, requested: str) -> str:
    return kernel_options(kind, floor, requested, **WHERE)


def kernel_refused(kind: Literal["nfs", "cifs"], floor: str, requested: str) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        kernel(kind, floor, requested)
    return info.value


def rclone_refused(requested: str) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        rclone_options(requested, **WHERE)
    return info.value


@pytest.mark.parametrize(
    ("kind", "floor", "requested", "final"),
    [
        # the floor is kept, nosuid,nodev are always there
        ("nfs", "vers=4.1", "", "vers=4.1,nosuid,nodev"),
        ("nfs", "", "", "nosuid,nodev"),
        ("cifs", "", "", "nosuid,nodev"),
        ("cifs", "vers=3.0,sec=ntlmssp", "", "vers=3.0,sec=ntlmssp,nosuid,nodev"),
        ("cifs", "credentials=/etc/bai/smb.cred", "", "credentials=/etc/bai/smb.cred,nosuid,nodev"),
        ("nfs", "nodev,vers=4.1,nosuid", "", "nodev,vers=4.1,nosuid"),
        ("nfs", " vers=4.1 , ,hard", "", "vers=4.1,hard,nosuid,nodev"),
        # even an operator cannot have suid or dev; nosuid,nodev come after `defaults`
        ("nfs", "vers=4.1,suid,dev", "", "vers=4.1,nosuid,nodev"),
        ("nfs", "defaults", "", "defaults,nosuid,nodev"),
        # allowed additions, after the floor and nosuid,nodev
        ("nfs", "", "rw", "nosuid,nodev,rw"),  # what the Azure CLI sends for fileServers
        (
            "nfs",
            "vers=4.1",
            "ro,noatime,nodiratime,hard,nocto,noac,nconnect=16,lookupcache=positive",
            "vers=4.1,nosuid,nodev,ro,noatime,nodiratime,hard,nocto,noac,nconnect=16,"
            "lookupcache=positive",
        ),
        (
            "nfs",
            "",
            "actimeo=0,acregmin=3,acregmax=60,acdirmin=30,acdirmax=86400,rsize=1048576,"
            "wsize=1024,timeo=600,retrans=0,soft,relatime,noexec",
            "nosuid,nodev,actimeo=0,acregmin=3,acregmax=60,acdirmin=30,acdirmax=86400,"
            "rsize=1048576,wsize=1024,timeo=600,retrans=0,soft,relatime,noexec",
        ),
        (
            "cifs",
            "vers=3.0",
            "file_mode=0644,dir_mode=0755,cache=singleclient,nobrl,mfsymlinks,rsize=4194304,"
            "wsize=16777216,actimeo=1,ro,noatime,noexec",
            "vers=3.0,nosuid,nodev,file_mode=0644,dir_mode=0755,cache=singleclient,nobrl,"
            "mfsymlinks,rsize=4194304,wsize=16777216,actimeo=1,ro,noatime,noexec",
        ),
        (
            "cifs",
            "",
            "rw,file_mode=0000,dir_mode=0777",
            "nosuid,nodev,rw,file_mode=0000,dir_mode=0777",
        ),
        # blanks and empty items dropped; duplicates removed, the first place kept
        ("nfs", "", " ro , noatime ,", "nosuid,nodev,ro,noatime"),
        (
            "nfs",
            "vers=4.1,rsize=65536",
            "rsize=65536,ro,ro",
            "vers=4.1,rsize=65536,nosuid,nodev,ro",
        ),
        ("nfs", "nosuid,nodev,noexec,ro", "ro,noexec,nodev", "nosuid,nodev,noexec,ro"),
        ("cifs", "", "rw,nosuid,nodev", "nosuid,nodev,rw"),
        # ro and noexec may take rights the operator's rw and exec give away
        ("nfs", "rw,vers=4.1", "ro", "vers=4.1,nosuid,nodev,ro"),
        ("cifs", "exec", "noexec", "nosuid,nodev,noexec"),
    ],
)
def test_kernel_options(
    kind: Literal["nfs", "cifs"], floor: str, requested: str, final: str
) -> None:
    assert kernel(kind, floor, requested) == final
    assert {"nosuid", "nodev"} <= set(final.split(","))


CREDENTIALS = "sets credentials or file ownership"
PRIVILEGE = "always mounted nosuid,nodev"
OPERATORS = "is the operator's to set"
UNKNOWN = "is not one a request may set"
BAD_VALUE = "has a bad value"


@pytest.mark.parametrize(
    ("kind", "floor", "requested", "shown", "says"),
    [
        # credentials and identity: the key only, never the value
        *[
            ("nfs", "", f"ro,{option}", option.split("=")[0], CREDENTIALS)
            for option in (
                "uid=0",
                "gid=0",
                "username=root",
                "user=root",
                "password=hunter2",
                "pass=hunter2",
                "credentials=/root/.smb",
                "cred=/root/.smb",
                "domain=CORP",
                "sec=sys",
                "forceuid",
                "multiuser",
            )
        ],
        ("cifs", "vers=3.0", "password=hunter2", "password", CREDENTIALS),
        # setuid programs and device files
        ("nfs", "", "suid", "suid", PRIVILEGE),
        ("cifs", "", "dev", "dev", PRIVILEGE),
        ("nfs", "", "defaults", "defaults", PRIVILEGE),
        # the operator's settings
        *[
            ("nfs", "vers=4.1", option, option.split("=")[0], OPERATORS)
            for option in (
                "vers=3",
                "nfsvers=3",
                "port=2049",
                "addr=10.0.0.9",
                "clientaddr=10.0.0.8",
                "proto=udp",
                "context=system_u:object_r:tmp_t:s0",
                "fsc",
            )
        ],
        # anything else not listed, for the volume's kind
        ("nfs", "", "exec", "exec", UNKNOWN),
        ("nfs", "", "RO", "RO", UNKNOWN),
        ("nfs", "", "sync", "sync", UNKNOWN),
        ("nfs", "", "cache=none", "cache", UNKNOWN),  # cifs only
        ("cifs", "", "nconnect=4", "nconnect", UNKNOWN),  # nfs only
        ("cifs", "", "nodiratime", "nodiratime", UNKNOWN),
        ("nfs", "", '"ro"', '"ro"', UNKNOWN),
        # a floor option the request would change
        (
            "nfs",
            "vers=4.1,rsize=65536",
            "rsize=1048576",
            "rsize=1048576",
            "operator's 'rsize=65536'",
        ),
        ("nfs", "ro", "rw", "rw", "operator's 'ro'"),
        ("nfs", "hard", "soft", "soft", "operator's 'hard'"),
        ("nfs", "noatime", "relatime", "relatime", "operator's 'noatime'"),
        ("cifs", "cache=strict", "cache=loose", "cache=loose", "operator's 'cache=strict'"),
        (
            "cifs",
            "file_mode=0640",
            "file_mode=0666",
            "file_mode=0666",
            "operator's 'file_mode=0640'",
        ),
        # ... or contradicts itself
        ("nfs", "", "rw,ro", "ro", "contradicts 'rw' earlier"),
        ("nfs", "", "wsize=1024,wsize=2048", "wsize=2048", "contradicts 'wsize=1024' earlier"),
        # values: digits in range or a listed word; no comma, blank, quote, slash or '='
        ("nfs", "", "lookupcache=all,uid=0", "uid", CREDENTIALS),  # a comma starts an option
        ("cifs", "", "cache=strict none", "cache=strict none", BAD_VALUE),
        ("cifs", "", "cache=strict uid=0", "cache=strict uid=0", BAD_VALUE),
        ("nfs", "", 'rsize="1024"', 'rsize="1024"', BAD_VALUE),
        ("nfs", "", "rsize='1024'", "rsize='1024'", BAD_VALUE),
        ("nfs", "", "lookupcache=all/none", "lookupcache=all/none", BAD_VALUE),
        ("nfs", "", "actimeo=1=2", "actimeo=1=2", BAD_VALUE),
        ("nfs", "", "rsize=", "rsize=", BAD_VALUE),
        ("nfs", "", "rsize", "rsize", BAD_VALUE),
        ("nfs", "", "rsize=-1", "rsize=-1", BAD_VALUE),
        ("nfs", "", "rsize=01024", "rsize=01024", BAD_VALUE),
        ("nfs", "", "rsize=1e6", "rsize=1e6", BAD_VALUE),
        ("nfs", "", "rsize=512", "rsize=512", BAD_VALUE),
        ("nfs", "", "nconnect=0", "nconnect=0", BAD_VALUE),
        ("nfs", "", "nconnect=17", "nconnect=17", BAD_VALUE),
        ("nfs", "", "timeo=0", "timeo=0", BAD_VALUE),
        ("nfs", "", "retrans=11", "retrans=11", BAD_VALUE),
        ("nfs", "", "lookupcache=pos", "lookupcache=pos", BAD_VALUE),
        ("cifs", "", "cache=Strict", "cache=Strict", BAD_VALUE),
        ("cifs", "", "file_mode=4755", "file_mode=4755", BAD_VALUE),  # setuid
        ("cifs", "", "dir_mode=1777", "dir_mode=1777", BAD_VALUE),  # sticky
        ("cifs", "", "file_mode=755", "file_mode=755", BAD_VALUE),
        ("cifs", "", "file_mode=0855", "file_mode=0855", BAD_VALUE),
        ("cifs", "", "ro=1", "ro=1", "takes no value"),
        ("nfs", "", "noexec=", "noexec=", "takes no value"),
    ],
)
def test_kernel_options_refused(
    kind: Literal["nfs", "cifs"], floor: str, requested: str, shown: str, says: str
) -> None:
    error = kernel_refused(kind, floor, requested)
    assert error.target == TARGET
    assert error.message.startswith(f"{LABEL}: mount option {shown!r} ")
    assert says in error.message
    # the fix: what a request may add, and who sets the rest
    assert f"a request may add to {kind} volumes only ro, rw, noatime, " in error.message
    assert "ask the operator to set it in storage_accounts.nas.options" in error.message
    assert "hunter2" not in error.message


def test_the_fix_lists_the_kinds_allow_list() -> None:
    nfs = kernel_refused("nfs", "", "uid=0").message
    assert "nconnect=1..16" in nfs and "lookupcache=all|none|positive" in nfs
    assert "file_mode" not in nfs and "may add to nfs volumes only" in nfs
    cifs = kernel_refused("cifs", "", "uid=0").message
    assert "file_mode=0NNN" in cifs and "cache=strict|none|loose|singleclient" in cifs
    assert "nconnect" not in cifs and "may add to cifs volumes only" in cifs


@pytest.mark.parametrize(
    ("requested", "final"),
    [
        ("", ""),
        ("   ", ""),
        ("--read-only", "--read-only"),
        ("--vfs-cache-mode full", "--vfs-cache-mode=full"),
        ("'--vfs-cache-mode=off'  \"--no-modtime\"", "--vfs-cache-mode=off --no-modtime"),
        ("--read-only --read-only --buffer-size 0", "--read-only --buffer-size=0"),
        (
            "--vfs-cache-mode=minimal --dir-cache-time=1h30m --attr-timeout 1s --poll-interval=0 "
            "--vfs-cache-max-age=24h --buffer-size=16M --vfs-read-chunk-size=off "
            "--vfs-read-chunk-size-limit=512MiB --vfs-cache-max-size=10Gi",
            "--vfs-cache-mode=minimal --dir-cache-time=1h30m --attr-timeout=1s --poll-interval=0 "
            "--vfs-cache-max-age=24h --buffer-size=16M --vfs-read-chunk-size=off "
            "--vfs-read-chunk-size-limit=512MiB --vfs-cache-max-size=10Gi",
        ),
        (
            "--dir-cache-time=250ms --vfs-cache-mode=writes",
            "--dir-cache-time=250ms --vfs-cache-mode=writes",
        ),
    ],
)
def test_rclone_options(requested: str, final: str) -> None:
    assert rclone_options(requested, **WHERE) == final
    # what bai-node-helper does with it: shlex.split, one word per flag
    assert shlex.split(final) == final.split()
    assert rclone_options(final, **WHERE) == final


@pytest.mark.parametrize(
    ("requested", "shown", "says"),
    [
        ("--config=/tmp/evil.conf", "--config", "is bai's to set"),
        ("--config /tmp/evil.conf", "--config", "is bai's to set"),
        ("--read-only --allow-other", "--allow-other", "open the mount to other users"),
        ("--allow-root", "--allow-root", "open the mount to other users"),
        ("--daemon", "--daemon", "is bai's to set"),
        ("--daemon-timeout=1s", "--daemon-timeout", "is bai's to set"),
        ("--rc", "--rc", "is bai's to set"),
        ("--rc-addr=:5572", "--rc-addr", "is bai's to set"),
        ("--cache-dir=/home/u/.cache", "--cache-dir", "is not one a request may set"),
        ("--log-file=/etc/passwd", "--log-file", "is not one a request may set"),
        ("--vfs-write-back=1h", "--vfs-write-back", "is not one a request may set"),
        ("-o allow_other", "-o", "is not one a request may set"),
        ("--s3-secret-access-key=hunter2", "--s3-secret-access-key", "is not one"),
        ("other:path", "other:path", "is not one a request may set"),
        ("--read-only=true", "--read-only=true", "takes no value"),
        ("--vfs-cache-mode=all", "--vfs-cache-mode=all", "has a bad value"),
        ("--vfs-cache-mode", "--vfs-cache-mode", "lacks its value"),
        ("--buffer-size --config=x", "--buffer-size=--config=x", "has a bad value"),
        ("--dir-cache-time=5m;id", "--dir-cache-time=5m;id", "has a bad value"),
        ("--dir-cache-time='5 m'", "--dir-cache-time=5 m", "has a bad value"),
        ("--buffer-size=16M,x", "--buffer-size=16M,x", "has a bad value"),
        ("--buffer-size=off", "--buffer-size=off", "has a bad value"),
        ("--buffer-size=/dev/shm", "--buffer-size=/dev/shm", "has a bad value"),
        ("--attr-timeout=1x", "--attr-timeout=1x", "has a bad value"),
        ("--read-only '--no-modtime", "--read-only '--no-modtime", "cannot be read"),
        (
            "--vfs-cache-mode=full --vfs-cache-mode=off",
            "--vfs-cache-mode=off",
            "contradicts '--vfs-cache-mode=full' earlier",
        ),
    ],
)
def test_rclone_options_refused(requested: str, shown: str, says: str) -> None:
    error = rclone_refused(requested)
    assert error.target == TARGET
    assert error.message.startswith(f"{LABEL}: rclone flag {shown!r} ")
    assert says in error.message
    assert "may add to rclone volumes only --read-only, --no-modtime, --vfs-cache-mode=" in (
        error.message
    )
    assert "ask the operator" in error.message
    assert "hunter2" not in error.message


def test_the_docstring_documents_every_allowed_option() -> None:
    doc = mount_options.__doc__ or ""
    for specs in (NFS_OPTIONS, CIFS_OPTIONS, RCLONE_FLAGS):
        for key in specs:
            assert re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", doc), key


ACCOUNTS = {
    "nas": StorageAccount(kind="nfs", server="nas1", export="/export", options="vers=4.1"),
    "smb": StorageAccount(kind="cifs", server="smb1", options="vers=3.0"),
    "rc": StorageAccount(kind="rclone", remote={"type": "local"}),
    "here": StorageAccount(kind="local", path="/srv/here"),
}
BLOBFUSE = "--use-https=true -o big_writes -o max_read=131072 -o allow_other"


def resolve(volumes: dict[str, Any], field: str = "properties.mountVolumes") -> list[Any]:
    return resolve_volumes(
        volumes,
        field=field,
        root="/m",
        accounts=ACCOUNTS,
        dev_root="/dev-storage",
        unmanaged_allowed=(),
        user="alice",
    )


def server(name: str, options: Any, rel: str = "data") -> dict[str, Any]:
    ref = {"fileServer": {"id": f"/x/fileServers/{name}"}, "relativeMountPath": rel}
    return {"fileServers": [ref if options is None else {**ref, "mountOptions": options}]}


def blob(account: str, options: str) -> dict[str, Any]:
    return {
        "azureBlobFileSystems": [
            {
                "accountName": account,
                "containerName": "data",
                "relativeMountPath": "blob",
                "mountOptions": options,
            }
        ]
    }


@pytest.mark.parametrize(
    ("volumes", "kind", "options"),
    [
        (server("nas", None), "nfs", "vers=4.1,nosuid,nodev"),
        (server("nas", ""), "nfs", "vers=4.1,nosuid,nodev"),
        (server("nas", "ro,nconnect=8"), "nfs", "vers=4.1,nosuid,nodev,ro,nconnect=8"),
        (server("smb", "rw"), "cifs", "vers=3.0,nosuid,nodev,rw"),
        (
            {
                "azureFileShares": [
                    {"azureFileUrl": "https://nas.file.x/share1", "relativeMountPath": "a"}
                ]
            },
            "nfs",
            "vers=4.1,nosuid,nodev",
        ),
        (blob("rc", "--vfs-cache-mode full"), "rclone", "--vfs-cache-mode=full"),
        # local volumes are symlinks: their mountOptions are ignored, whatever they say
        (blob("here", BLOBFUSE), "local", ""),
        (blob("ghost", BLOBFUSE), "local", ""),  # dev: an unknown account is local
        (blob("here", "uid=0,suid"), "local", ""),
    ],
)
def test_volumes_get_checked_options(volumes: dict[str, Any], kind: str, options: str) -> None:
    [volume] = resolve(volumes)
    assert (volume.kind, volume.options) == (kind, options)
    assert volume.plan()["options"] == options


@pytest.mark.parametrize(
    ("field", "volumes", "shown", "label", "target"),
    [
        (
            "properties.mountVolumes",
            server("nas", "ro,uid=0"),
            "uid",
            "properties.mountVolumes.fileServers[0] (data)",
            "properties.mountVolumes.fileServers[0].mountOptions",
        ),
        (
            "cluster nodeSetup.mountVolumes",
            server("smb", "suid", rel="shared"),
            "suid",
            "cluster nodeSetup.mountVolumes.fileServers[0] (shared)",
            "cluster nodeSetup.mountVolumes.fileServers[0].mountOptions",
        ),
        (
            "properties.mountVolumes",
            blob("rc", BLOBFUSE),
            "--use-https",
            "properties.mountVolumes.azureBlobFileSystems[0] (blob)",
            "properties.mountVolumes.azureBlobFileSystems[0].mountOptions",
        ),
    ],
)
def test_the_error_names_option_volume_and_field(
    field: str, volumes: dict[str, Any], shown: str, label: str, target: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        resolve(volumes, field=field)
    assert info.value.target == target
    assert info.value.message.startswith(f"{label}: ")
    assert repr(shown) in info.value.message
    assert "a request may add to " in info.value.message


def test_mount_options_must_be_a_string() -> None:
    with pytest.raises(InvalidRequest) as info:
        resolve(server("nas", ["ro"]))
    assert info.value.target == "properties.mountVolumes.fileServers[0].mountOptions"
