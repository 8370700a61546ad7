"""Mount volumes of clusters (`nodeSetup.mountVolumes`) and jobs (`mountVolumes`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from adapter.models.common import ApiModel, KeyVaultSecretReference, ResourceId

RelativePath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")]


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
    container_name: str
    credentials: AzureStorageCredentialsInfo | None = None
    relative_mount_path: RelativePath
    mount_options: str | None = None


class FileServerReference(ApiModel):
    file_server: ResourceId
    source_directory: str | None = None
    relative_mount_path: RelativePath
    mount_options: str | None = None


class UnmanagedFileSystemReference(ApiModel):
    mount_command: str
    relative_mount_path: RelativePath


class MountVolumes(ApiModel):
    azure_file_shares: list[AzureFileShareReference] = Field(default_factory=list)
    azure_blob_file_systems: list[AzureBlobFileSystemReference] = Field(default_factory=list)
    file_servers: list[FileServerReference] = Field(default_factory=list)
    unmanaged_file_systems: list[UnmanagedFileSystemReference] = Field(default_factory=list)
