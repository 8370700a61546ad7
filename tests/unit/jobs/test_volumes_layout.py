"""Mount volumes resolved through the site's storage accounts, and a job's paths (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from adapter.errors import InvalidRequest
from adapter.jobs.layout import JobLayout, build_layout, job_segment
from adapter.jobs.volumes import Volume, adapter_view, resolve_volumes
from adapter.settings import StorageAccount

ROOT = "/jobs/u1/mounts"
FIELD = "properties.mountVolumes"
ACCOUNTS: dict[str, StorageAccount] = {
    "localacct": StorageAccount(kind="local", path="/srv/storage/localacct"),
    "rcacct": StorageAccount(
        kind="rclone",
        remote={"type": "s3", "provider": "Minio", "secret_access_key": "hunter2"},
        adapter_path="/mnt/adapter/rc",
    ),
    "my.blob-acct": StorageAccount(kind="rclone", remote={"type": "local"}),
    "nfsacct": StorageAccount(
        kind="nfs", server="nas1", export="/export/data/", options="vers=4.1", adapter_path="/a/n"
    ),
    "rootnfs": StorageAccount(kind="nfs", server="nas2"),
    "cifsacct": StorageAccount(kind="cifs", server="smb1", options="vers=3.0"),
    "nas": StorageAccount(kind="nfs", server="fs1", export="/exports"),
}


def resolve(
    volumes: Mapping[str, Any] | None,
    *,
    dev_root: str | None = None,
    allowed: tuple[str, ...] = (),
    accounts: Mapping[str, StorageAccount] = ACCOUNTS,
    user: str = "alice",
    field: str = FIELD,
) -> list[Volume]:
    return resolve_volumes(
        volumes,
        field=field,
        root=ROOT,
        accounts=accounts,
        dev_root=dev_root,
        unmanaged_allowed=allowed,
        user=user,
    )


def afs(url: str, rel: str = "afs", **more: Any) -> dict[str, Any]:
    return {"azureFileShares": [{"azureFileUrl": url, "relativeMountPath": rel, **more}]}


def refused(volumes: Mapping[str, Any], **kwargs: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        resolve(volumes, **kwargs)
    return info.value


@pytest.mark.parametrize("volumes", [None, {}, {"azureFileShares": []}])
def test_no_volumes(volumes: Mapping[str, Any] | None) -> None:
    assert resolve(volumes) == []


def test_azure_file_share_account_comes_from_the_url() -> None:
    [v] = resolve(afs("https://localacct.file.core.windows.net/share1"))
    assert v == Volume(
        label=f"{FIELD}.azureFileShares[0] (afs)",
        kind="local",
        source="/srv/storage/localacct/share1",
        options="",
        mountpoint=f"{ROOT}/afs",
        adapter_path="/srv/storage/localacct/share1",
    )


def test_azure_file_share_account_name_wins_over_the_url() -> None:
    [v] = resolve(afs("https://whatever.file.core.windows.net/share1/", accountName="nfsacct"))
    assert (v.kind, v.source, v.options) == (
        "nfs",
        "nas1:/export/data/share1",
        "vers=4.1,nosuid,nodev",
    )
    assert v.adapter_path == "/a/n/share1"


@pytest.mark.parametrize(
    "url",
    [
        "https://localacct.blob.core.windows.net/share1",
        "https://localacct.file.core.windows.net/",
        "https://localacct.file.core.windows.net/a/b",
        "file:///etc",
        "",
    ],
)
def test_azure_file_share_url_must_name_account_and_share(url: str) -> None:
    error = refused(afs(url))
    assert error.target == f"{FIELD}.azureFileShares[0].azureFileUrl"


@pytest.mark.parametrize(
    "share", ["..%2Fetc", "..", "ab", "a" * 64, "Share", "-share", "share-", "sh--are", "sh_are"]
)
def test_azure_file_share_name_follows_azure_rules(share: str) -> None:
    error = refused(afs(f"https://localacct.file.core.windows.net/{share}"))
    target = f"{FIELD}.azureFileShares[0].azureFileUrl"
    assert (error.target, error.message) == (
        target,
        f"{target}: share {share!r} must be 3 to 63 lowercase letters, digits and hyphens, "
        "starting and ending with a letter or digit, with no two hyphens in a row "
        "(Azure's rule for shares and containers)",
    )


@pytest.mark.parametrize("share", ["abc", "a" * 63, "my-share-01", "0logs"])
def test_azure_share_and_container_names_azure_accepts(share: str) -> None:
    volumes = {
        **afs(f"https://localacct.file.core.windows.net/{share}"),
        "azureBlobFileSystems": [
            {"accountName": "localacct", "containerName": share, "relativeMountPath": "b"}
        ],
    }
    a, b = resolve(volumes)
    assert a.source == b.source == f"/srv/storage/localacct/{share}"


@pytest.mark.parametrize("container", ["", "..", "a/b", "C1", "c1-", "ab", "a" * 64])
def test_blob_container_name_follows_azure_rules(container: str) -> None:
    volumes = {
        "azureBlobFileSystems": [
            {"accountName": "localacct", "containerName": container, "relativeMountPath": "b"}
        ]
    }
    error = refused(volumes, dev_root="/dev-storage")
    assert error.target == f"{FIELD}.azureBlobFileSystems[0].containerName"
    assert error.message.startswith(f"{error.target}: container {container!r} must be 3 to 63 ")


def test_blob_container_through_rclone() -> None:
    volumes = {
        "azureBlobFileSystems": [
            {
                "accountName": "rcacct",
                "containerName": "cont1",
                "relativeMountPath": "blob",
                "mountOptions": "--read-only",
            },
            {"accountName": "my.blob-acct", "containerName": "cont2", "relativeMountPath": "b2"},
        ]
    }
    v, w = resolve(volumes)
    assert (v.kind, v.source, v.options, v.mountpoint) == (
        "rclone",
        "bai-rcacct:cont1",
        "--read-only",
        f"{ROOT}/blob",
    )
    assert v.remote_name == "bai-rcacct" and v.remote is not None
    assert v.remote["secret_access_key"] == "hunter2"
    assert v.adapter_path == "/mnt/adapter/rc/cont1"
    assert "hunter2" not in repr(v.plan())  # the node helper's plan never carries secrets
    assert set(v.plan()) == {"label", "kind", "source", "options", "mountpoint"}
    assert (w.remote_name, w.source, w.adapter_path) == (
        "bai-my_blob-acct",
        "bai-my_blob-acct:cont2",
        None,
    )


def test_file_servers_nfs_and_cifs() -> None:
    volumes = {
        "fileServers": [
            {
                "fileServer": {
                    "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.BatchAI/"
                    "workspaces/ws/fileServers/nas"
                },
                "sourceDirectory": "/projects/",
                "relativeMountPath": "nfs",
            },
            {
                "fileServer": {"id": "/x/fileServers/cifsacct/"},
                "relativeMountPath": "smb",
                "mountOptions": "ro",
            },
            {"fileServer": {"id": "/x/fileServers/rootnfs"}, "relativeMountPath": "deep/er"},
        ]
    }
    a, b, c = resolve(volumes)
    assert (a.label, a.kind, a.source, a.options) == (
        f"{FIELD}.fileServers[0] (nfs)",
        "nfs",
        "fs1:/exports/projects",
        "nosuid,nodev",  # root mounts: always, even when the operator set no options
    )
    # The request's options add to the operator's floor, they no longer replace it.
    assert (b.kind, b.source, b.options, b.adapter_path) == (
        "cifs",
        "//smb1/",
        "vers=3.0,nosuid,nodev,ro",
        None,
    )
    assert (c.source, c.mountpoint, c.options) == ("nas2:/", f"{ROOT}/deep/er", "nosuid,nodev")


def test_file_servers_never_fall_back_to_dev_storage() -> None:
    volumes = {
        "fileServers": [{"fileServer": {"id": "/x/fileServers/ghost"}, "relativeMountPath": "g"}]
    }
    error = refused(volumes, dev_root="/dev-storage")
    assert error.target == f"{FIELD}.fileServers[0]"
    assert "storage_accounts.ghost" in error.message


@pytest.mark.parametrize(
    ("directory", "source"),
    [
        (None, "fs1:/exports"),
        ("", "fs1:/exports"),
        ("/", "fs1:/exports"),
        ("team-1/data.v2", "fs1:/exports/team-1/data.v2"),
        ("/team-1/data/", "fs1:/exports/team-1/data"),  # a path on the export: '/' is fine
    ],
)
def test_file_server_source_directory(directory: str | None, source: str) -> None:
    ref = {"fileServer": {"id": "/x/fileServers/nas"}, "relativeMountPath": "nfs"}
    [v] = resolve({"fileServers": [{**ref, "sourceDirectory": directory}]})
    assert v.source == source


@pytest.mark.parametrize(
    "directory", ["..", "../etc", "/a/../../etc", "a/./b", "a//b", "a b", "a\nb", "x/$(id)"]
)
def test_file_server_source_directory_stays_in_the_export(directory: str) -> None:
    ref = {"fileServer": {"id": "/x/fileServers/nas"}, "relativeMountPath": "nfs"}
    error = refused({"fileServers": [{**ref, "sourceDirectory": directory}]})
    target = f"{FIELD}.fileServers[0].sourceDirectory"
    assert error.target == target
    assert error.message.startswith(f"{target}: directory {directory!r} must be a directory ")
    assert "no '.' or '..' component" in error.message


@pytest.mark.parametrize(
    ("volumes", "target"),
    [
        (
            afs("https://x.file.core.windows.net/share1", accountName=".."),
            "azureFileShares[0].accountName",
        ),
        (
            afs("https://x.file.core.windows.net/share1", accountName="a/b"),
            "azureFileShares[0].accountName",
        ),
        (afs("https://ab.file.core.windows.net/share1"), "azureFileShares[0].azureFileUrl"),
        (afs("https://Ghost.file.core.windows.net/share1"), "azureFileShares[0].azureFileUrl"),
        (
            {
                "azureBlobFileSystems": [
                    {"accountName": "a" * 25, "containerName": "data", "relativeMountPath": "b"}
                ]
            },
            "azureBlobFileSystems[0].accountName",
        ),
    ],
)
def test_a_dev_storage_directory_needs_an_azure_account_name(
    volumes: dict[str, Any], target: str
) -> None:
    # In dev an unknown account is the directory <dev root>/<account>: never a path to elsewhere.
    error = refused(volumes, dev_root="/dev-storage")
    assert error.target == f"{FIELD}.{target}"
    assert "is not configured on this site" in error.message
    assert "must be 3 to 24 lowercase letters and digits" in error.message


def test_unknown_account_without_dev_root_names_the_operator_setting() -> None:
    error = refused(afs("https://ghost.file.core.windows.net/share1"))
    assert error.target == f"{FIELD}.azureFileShares[0]"
    assert "storage account 'ghost' is not configured" in error.message
    assert "storage_accounts.ghost" in error.message


def test_cluster_level_errors_name_the_cluster_field() -> None:
    volumes = {
        **afs("https://ghost.file.core.windows.net/share1"),
        "azureBlobFileSystems": [
            {"accountName": "localacct", "containerName": "a b", "relativeMountPath": "b"}
        ],
    }
    field = "cluster nodeSetup.mountVolumes"
    error = refused(volumes, field=field)
    assert error.target == f"{field}.azureFileShares[0]"
    assert error.message.startswith(f"{field}.azureFileShares[0] (afs): ")
    error = refused({"azureBlobFileSystems": volumes["azureBlobFileSystems"]}, field=field)
    assert error.target == f"{field}.azureBlobFileSystems[0].containerName"


def test_unknown_account_in_dev_is_a_local_directory_under_dev_root() -> None:
    volumes = {
        **afs("https://ghost.file.core.windows.net/share"),
        "azureBlobFileSystems": [
            {"accountName": "ghost", "containerName": "data", "relativeMountPath": "blob"}
        ],
    }
    a, b = resolve(volumes, dev_root="/dev-storage")
    assert (a.kind, a.source, a.adapter_path) == (
        "local",
        "/dev-storage/ghost/share",
        "/dev-storage/ghost/share",
    )
    assert (b.kind, b.source) == ("local", "/dev-storage/ghost/data")


def test_a_configured_account_wins_over_dev_root() -> None:
    [v] = resolve(afs("https://cifsacct.file.core.windows.net/share1"), dev_root="/dev-storage")
    assert (v.kind, v.source, v.options) == ("cifs", "//smb1/share1", "vers=3.0,nosuid,nodev")


def test_approved_unmanaged_mount() -> None:
    command = "mount -t nfs -o ro nas9:/pub"
    volumes = {
        "unmanagedFileSystems": [{"mountCommand": f"  {command} ", "relativeMountPath": "pub"}]
    }
    [v] = resolve(volumes, allowed=(command,))
    assert v == Volume(
        f"{FIELD}.unmanagedFileSystems[0] (pub)", "unmanaged", command, "", f"{ROOT}/pub", None
    )


def test_unmanaged_mount_the_operator_did_not_approve_is_refused() -> None:
    volumes = {
        "unmanagedFileSystems": [
            {"mountCommand": "mount -t nfs nas9:/pub; id", "relativeMountPath": "pub"}
        ]
    }
    error = refused(volumes, allowed=("mount -t nfs nas9:/pub",))
    assert error.target == f"{FIELD}.unmanagedFileSystems[0].mountCommand"
    assert "jobs.unmanaged_mounts" in error.message


def test_two_volumes_on_one_mount_path_are_refused() -> None:
    volumes = {
        **afs("https://localacct.file.core.windows.net/share-a", rel="x"),
        "azureBlobFileSystems": [
            {"accountName": "localacct", "containerName": "share-b", "relativeMountPath": "x"}
        ],
    }
    error = refused(volumes)
    assert error.target == FIELD
    assert "relativeMountPath" in error.message


@pytest.mark.parametrize(
    "rel",
    ["..", "../etc", "a/../../etc", "/etc", "a/..", ".", "./x", "x/.", "x/", "a//b", "", "a b"]
    + ["a" * 256, "x/$(id)"],
)
def test_mount_path_must_stay_under_the_mount_root(rel: str) -> None:
    # The root Prolog creates, chowns and mounts at this path.
    for volumes, label in [
        (afs("https://localacct.file.core.windows.net/share1", rel=rel), "azureFileShares[0]"),
        (
            {"unmanagedFileSystems": [{"mountCommand": "true", "relativeMountPath": rel}]},
            "unmanagedFileSystems[0]",
        ),
        (
            {"fileServers": [{"fileServer": {"id": "/x/nas"}, "relativeMountPath": rel}]},
            "fileServers[0]",
        ),
    ]:
        error = refused(volumes, allowed=("true",))
        assert error.target == f"{FIELD}.{label}.relativeMountPath"


VOLUMES = [
    Volume("a", "local", "/srv/a", "", "/jobs/u1/mounts/afs", "/srv/a"),
    Volume("b", "nfs", "nas:/b", "", "/jobs/u1/mounts/nfs", None),
    Volume("c", "nfs", "nas:/c", "", "/jobs/u1/cluster-mounts/c", "/adapter/c"),
]


@pytest.mark.parametrize(
    ("path", "seen"),
    [
        ("/jobs/u1/mounts/afs", "/srv/a"),
        ("/jobs/u1/mounts/afs/x/y.txt", "/srv/a/x/y.txt"),
        ("/jobs/u1/cluster-mounts/c/out", "/adapter/c/out"),
        ("/jobs/u1/mounts/nfs", None),
        ("/jobs/u1/mounts/nfs/out", None),
        ("/jobs/u1/mounts/afsx/out", "/jobs/u1/mounts/afsx/out"),  # not inside afs
        ("/jobs/u1/mounts", "/jobs/u1/mounts"),
        ("/var/lib/bai/spool/jobs/u1/shared", "/var/lib/bai/spool/jobs/u1/shared"),
    ],
)
def test_adapter_view(path: str, seen: str | None) -> None:
    assert adapter_view(path, VOLUMES) == seen


UID = "0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
SEGMENT = job_segment("sub", "rg", "ws", "exp", "job1", UID)


def layout(
    prefix: str = "$AZ_BATCHAI_MOUNT_ROOT/afs",
    outputs: list[dict[str, str]] | None = None,
    inputs: list[dict[str, str]] | None = None,
) -> JobLayout:
    return build_layout(
        segment=SEGMENT,
        uid=UID,
        job_root="/jr",
        spool_root="/spool",
        cluster_mount_root=f"/jr/{UID}/cluster-mounts",
        std_out_err_prefix=prefix,
        outputs=outputs or [],
        inputs=inputs or [],
    )


def test_job_segment() -> None:
    segment = job_segment("sub", "rg", "ws", "exp", "job1", UID)
    assert segment == f"sub/rg/workspaces/ws/experiments/exp/jobs/job1/{UID}"


def test_build_layout_paths() -> None:
    lay = layout(
        outputs=[
            {"id": "model", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/out", "pathSuffix": "m/v1"},
            {"id": "Logs", "pathPrefix": "/shared/logs"},
            {"id": "EMPTY", "pathPrefix": "${AZ_BATCHAI_MOUNT_ROOT}/o", "pathSuffix": ""},
        ],
        inputs=[
            {"id": "data", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data"},
            {"id": "SCRATCH", "path": "$AZ_BATCHAI_JOB_TEMP/scratch"},
        ],
    )
    jt = f"/jr/{UID}"
    assert lay.segment == SEGMENT
    assert (lay.job_temp, lay.job_temp_dir) == (jt, "/jr")
    assert (lay.job_mount_root, lay.mount_root) == (f"{jt}/mounts", f"{jt}/cluster-mounts")
    assert lay.spool == f"/spool/jobs/{UID}"
    assert lay.shared_temp == f"/spool/jobs/{UID}/shared"
    assert lay.execution_log == f"/spool/jobs/{UID}/execution.log"
    assert lay.hostfile == f"{jt}/hostfile"
    assert lay.stdouterr == f"{jt}/cluster-mounts/afs/{SEGMENT}/stdouterr"
    assert lay.outputs == {
        "MODEL": f"{jt}/mounts/out/{SEGMENT}/outputs/m/v1",
        "LOGS": f"/shared/logs/{SEGMENT}/outputs",
        "EMPTY": f"{jt}/cluster-mounts/o/{SEGMENT}/outputs",
    }
    assert lay.inputs == {"DATA": f"{jt}/mounts/data", "SCRATCH": f"{jt}/scratch"}
    assert lay.variables() == {
        "AZ_BATCHAI_MOUNT_ROOT": f"{jt}/cluster-mounts",
        "AZ_BATCHAI_JOB_MOUNT_ROOT": f"{jt}/mounts",
        "AZ_BATCHAI_JOB_TEMP": jt,
        "AZ_BATCHAI_JOB_TEMP_DIR": "/jr",
        "AZ_BATCHAI_SHARED_JOB_TEMP": f"/spool/jobs/{UID}/shared",
        # Script and config paths may name the job's inputs and outputs (as Batch AI's did).
        "AZ_BATCHAI_INPUT_DATA": f"{jt}/mounts/data",
        "AZ_BATCHAI_INPUT_SCRATCH": f"{jt}/scratch",
        "AZ_BATCHAI_OUTPUT_MODEL": f"{jt}/mounts/out/{SEGMENT}/outputs/m/v1",
        "AZ_BATCHAI_OUTPUT_LOGS": f"/shared/logs/{SEGMENT}/outputs",
        "AZ_BATCHAI_OUTPUT_EMPTY": f"{jt}/cluster-mounts/o/{SEGMENT}/outputs",
    }


def test_an_output_prefix_cannot_name_an_input() -> None:
    """Inputs and outputs are laid out from the roots alone: one cannot name another."""
    with pytest.raises(InvalidRequest, match=r"AZ_BATCHAI_INPUT_DATA.*does not know"):
        build_layout(
            segment=SEGMENT,
            uid=UID,
            job_root="/jr",
            spool_root="/spool",
            cluster_mount_root=f"/jr/{UID}/cluster-mounts",
            std_out_err_prefix="$AZ_BATCHAI_MOUNT_ROOT/afs",
            outputs=[{"id": "M", "pathPrefix": "$AZ_BATCHAI_INPUT_DATA"}],
            inputs=[{"id": "DATA", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data"}],
        )


def test_absolute_std_out_err_prefix() -> None:
    assert layout("/shared/out").stdouterr == f"/shared/out/{SEGMENT}/stdouterr"


@pytest.mark.parametrize(
    ("kwargs", "target"),
    [
        ({"prefix": "$HOME/out"}, "properties.stdOutErrPathPrefix"),
        ({"prefix": "out"}, "properties.stdOutErrPathPrefix"),
        (
            {"outputs": [{"id": "A", "pathPrefix": "/ok"}, {"id": "B", "pathPrefix": "$(id)"}]},
            "properties.outputDirectories[1].pathPrefix",
        ),
        (
            {"outputs": [{"id": "A", "pathPrefix": "$AZ_BATCHAI_OUTPUT_X"}]},
            "properties.outputDirectories[0].pathPrefix",
        ),
        (
            {"inputs": [{"id": "A", "path": "$AZ_BATCHAI_INPUT_B/x"}]},
            "properties.inputDirectories[0].path",
        ),
        ({"inputs": [{"id": "A", "path": "/x/`id`"}]}, "properties.inputDirectories[0].path"),
    ],
)
def test_unknown_variables_are_refused_naming_the_field(
    kwargs: dict[str, Any], target: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        layout(**kwargs)
    assert info.value.target == target
    assert target in info.value.message


def test_own_dirs_are_the_jobs_directory_under_each_output_prefix() -> None:
    lay = layout(
        "/data/logs",
        outputs=[
            {"id": "model", "pathPrefix": "/data/logs"},
            {"id": "other", "pathPrefix": "/scratch", "pathSuffix": "deep/er"},
        ],
    )
    # One per prefix, however many outputs share it: the shared parents stay as they are.
    assert lay.own_dirs() == [f"/data/logs/{SEGMENT}", f"/scratch/{SEGMENT}"]


def test_namespace_dirs_are_the_levels_between_each_prefix_and_the_jobs_own() -> None:
    lay = layout("/data/logs", outputs=[{"id": "model", "pathPrefix": "/scratch"}])
    levels = ["sub", "rg", "workspaces", "ws", "experiments", "exp", "jobs", "job1"]
    expected = [
        "/".join([prefix, *levels[: i + 1]])
        for prefix in ("/data/logs", "/scratch")
        for i in range(len(levels))
    ]
    assert lay.prefixes() == ["/data/logs", "/scratch"]
    assert lay.namespace_dirs() == expected  # parents first, the job's uid never among them
