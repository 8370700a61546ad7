"""The mountVolumes request model: names joined to paths, and how many volumes a request holds.
Errors are read as the API reports them (adapter.api.errors.validation_error)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from adapter.api.errors import validation_error
from adapter.errors import InvalidRequest
from adapter.models.mounts import MAX_VOLUMES, MountVolumes

PREFIX = "properties.mountVolumes."
SERVER = {"fileServer": {"id": "/x/fileServers/nas"}}


def refused(volumes: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(ValidationError) as info:
        MountVolumes.model_validate(volumes)
    return validation_error(info.value, PREFIX)


def share(rel: str) -> dict[str, Any]:
    return {"azureFileUrl": "https://acct.file.core.windows.net/logs", "relativeMountPath": rel}


def test_a_request_azure_would_take_is_taken() -> None:
    volumes = MountVolumes.model_validate(
        {
            "azureFileShares": [share("logs"), share("deep/er/x.y_z-1")],
            "azureBlobFileSystems": [
                {"accountName": "acct", "containerName": "data-01", "relativeMountPath": "blob"}
            ],
            "fileServers": [
                {**SERVER, "sourceDirectory": "/projects/team-1/", "relativeMountPath": "nfs"},
                {**SERVER, "relativeMountPath": "whole"},
            ],
        }
    )
    assert [s.relative_mount_path for s in volumes.azure_file_shares] == ["logs", "deep/er/x.y_z-1"]
    assert volumes.file_servers[0].source_directory == "/projects/team-1/"


@pytest.mark.parametrize(
    "rel", ["..", "../etc", "a/../..", "/etc", ".", "./a", "a/.", "a/", "a//b", "", "a b", "$(id)"]
)
def test_relative_mount_path_stays_under_the_mount_root(rel: str) -> None:
    error = refused({"azureFileShares": [share(rel)]})
    field = f"{PREFIX}azureFileShares[0].relativeMountPath"
    assert error.target == field
    assert error.message.startswith(f"The request is not valid: {field}: {rel!r} must be a ")
    assert "no '.' or '..' component" in error.message


@pytest.mark.parametrize("container", ["", "..", "../x", "Data", "ab", "data-", "da--ta", "a" * 64])
def test_container_name_follows_azure_rules(container: str) -> None:
    error = refused(
        {
            "azureBlobFileSystems": [
                {"accountName": "acct", "containerName": container, "relativeMountPath": "b"}
            ]
        }
    )
    field = f"{PREFIX}azureBlobFileSystems[0].containerName"
    assert error.target == field
    assert f"{field}: {container!r} must be 3 to 63 lowercase letters" in error.message


@pytest.mark.parametrize("directory", ["..", "/a/../../etc", "a/./b", "a//b", "a b"])
def test_source_directory_stays_in_the_export(directory: str) -> None:
    error = refused(
        {"fileServers": [{**SERVER, "sourceDirectory": directory, "relativeMountPath": "nfs"}]}
    )
    field = f"{PREFIX}fileServers[0].sourceDirectory"
    assert error.target == field
    assert (
        f"{field}: {directory!r} must be a directory on the file server's export" in error.message
    )


@pytest.mark.parametrize(
    ("kind", "entry"),
    [
        ("azureFileShares", share("x")),
        ("azureBlobFileSystems", {"accountName": "a", "containerName": "abc"}),
        ("fileServers", SERVER),
        ("unmanagedFileSystems", {"mountCommand": "true"}),
    ],
)
def test_at_most_max_volumes_of_each_kind(kind: str, entry: dict[str, Any]) -> None:
    entries = [{**entry, "relativeMountPath": f"v{i}"} for i in range(MAX_VOLUMES + 1)]
    assert (
        len(getattr(MountVolumes.model_validate({kind: entries[:-1]}), _snake(kind))) == MAX_VOLUMES
    )
    error = refused({kind: entries})
    assert error.target == f"{PREFIX}{kind}"
    assert f"at most {MAX_VOLUMES} items" in error.message


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
