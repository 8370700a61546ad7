"""Mount volumes of clusters (`nodeSetup.mountVolumes`) and jobs (`mountVolumes`), and the name
rules of what is joined to a path on a node: a mount path, a share, a container, a directory.

The rules are functions (`*_problem`: None, or what is wrong), so that adapter.jobs.volumes
applies the same ones to stored cluster properties. Each kind of volume is a list of at most
MAX_VOLUMES entries.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, Field

from adapter.models.common import ApiModel, KeyVaultSecretReference, ResourceId

MAX_VOLUMES = 32  # per kind (azureFileShares, azureBlobFileSystems, ...) of one mountVolumes
MAX_MOUNT_PATH = 255  # characters of a relativeMountPath or sourceDirectory
_AZURE_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
_COMPONENT = re.compile(r"[A-Za-z0-9_.-]+")


def azure_name_problem(name: str) -> str | None:
    """Why `name` is not an Azure file share or blob container name (their rules are the same)."""
    if 3 <= len(name) <= 63 and _AZURE_NAME.fullmatch(name):
        return None
    return (
        "must be 3 to 63 lowercase letters, digits and hyphens, starting and ending with a "
        "letter or digit, with no two hyphens in a row (Azure's rule for shares and containers)"
    )


def account_name_problem(name: str) -> str | None:
    """Why `name` is not an Azure storage account name (3 to 24 lowercase letters and digits)."""
    if _ACCOUNT_NAME.fullmatch(name):
        return None
    return "must be 3 to 24 lowercase letters and digits (Azure's rule for storage accounts)"


def relative_path_problem(path: str) -> str | None:
    """Why `path` is not a path inside a mount root: plain names joined by single slashes."""
    parts = path.split("/")
    if len(path) <= MAX_MOUNT_PATH and all(_plain(p) for p in parts):
        return None
    return (
        f"must be a relative path of at most {MAX_MOUNT_PATH} characters: names of letters, "
        "digits, '.', '-' and '_' joined by single '/', with no leading or trailing '/' and no "
        "'.' or '..' component"
    )


def directory_problem(path: str) -> str | None:
    """Why `path` is not a directory on a file server's export (leading and trailing '/' are
    allowed, '' or '/' is the export itself)."""
    inner = path.strip("/")
    if len(path) <= MAX_MOUNT_PATH and (not inner or all(_plain(p) for p in inner.split("/"))):
        return None
    return (
        f"must be a directory on the file server's export, at most {MAX_MOUNT_PATH} characters: "
        "names of letters, digits, '.', '-' and '_' joined by single '/', with no '.' or '..' "
        "component"
    )


def _plain(part: str) -> bool:
    return part not in (".", "..") and _COMPONENT.fullmatch(part) is not None


def _checked(problem: Callable[[str], str | None]) -> AfterValidator:
    def check(value: str) -> str:
        reason = problem(value)
        if reason is not None:
            raise ValueError(f"{value!r} {reason}")
        return value

    return AfterValidator(check)


RelativePath = Annotated[str, _checked(relative_path_problem)]
SourceDirectory = Annotated[str, _checked(directory_problem)]
ContainerName = Annotated[str, _checked(azure_name_problem)]


class AzureStorageCredentialsInfo(ApiModel):
    account_key: str | None = None
    account_key_secret_reference: KeyVaultSecretReference | None = None


class AzureFileShareReference(ApiModel):
    account_name: str | None = None
    azure_file_url: str
    credentials: AzureStorageCredentialsInfo | None = None
    relative_mount_path: RelativePath
    file_mode: str = "0777"
    directory_mode: str = "0777"


class AzureBlobFileSystemReference(ApiModel):
    account_name: str
    container_name: ContainerName
    credentials: AzureStorageCredentialsInfo | None = None
    relative_mount_path: RelativePath
    mount_options: str | None = None


class FileServerReference(ApiModel):
    file_server: ResourceId
    source_directory: SourceDirectory | None = None
    relative_mount_path: RelativePath
    mount_options: str | None = None


class UnmanagedFileSystemReference(ApiModel):
    mount_command: str
    relative_mount_path: RelativePath


class MountVolumes(ApiModel):
    azure_file_shares: list[AzureFileShareReference] = Field(
        default_factory=list, max_length=MAX_VOLUMES
    )
    azure_blob_file_systems: list[AzureBlobFileSystemReference] = Field(
        default_factory=list, max_length=MAX_VOLUMES
    )
    file_servers: list[FileServerReference] = Field(default_factory=list, max_length=MAX_VOLUMES)
    unmanaged_file_systems: list[UnmanagedFileSystemReference] = Field(
        default_factory=list, max_length=MAX_VOLUMES
    )
