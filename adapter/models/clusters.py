"""Cluster create and update bodies (ClusterCreateParameters, ClusterUpdateParameters)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from adapter.models.common import (
    MAX_ID,
    MAX_VARIABLES,
    ApiModel,
    EnvironmentVariable,
    EnvironmentVariableWithSecretValue,
    FilePath,
    ResourceId,
    Text,
    Word,
)
from adapter.models.mounts import MountVolumes


def _lower(value: Any) -> Any:
    # Azure enums are case-insensitive on input; bai answers in lowercase.
    return value.lower() if isinstance(value, str) else value


Priority = Annotated[Literal["dedicated", "lowpriority"], BeforeValidator(_lower)]
Deallocation = Annotated[
    Literal["requeue", "terminate", "waitforjobcompletion"], BeforeValidator(_lower)
]


class ManualScaleSettings(ApiModel):
    target_node_count: int = Field(0, ge=0, le=1000)
    node_deallocation_option: Deallocation = "requeue"


class AutoScaleSettings(ApiModel):
    minimum_node_count: int = Field(ge=0, le=1000)
    maximum_node_count: int = Field(ge=1, le=1000)
    initial_node_count: int = Field(0, ge=0, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> AutoScaleSettings:
        if self.minimum_node_count > self.maximum_node_count:
            raise ValueError(
                f"minimumNodeCount ({self.minimum_node_count}) is greater than "
                f"maximumNodeCount ({self.maximum_node_count}); make min <= max"
            )
        return self


class ScaleSettings(ApiModel):
    manual: ManualScaleSettings | None = None
    auto_scale: AutoScaleSettings | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ScaleSettings:
        if (self.manual is None) == (self.auto_scale is None):
            raise ValueError(
                "give exactly one of manual (targetNodeCount) or autoScale "
                "(minimumNodeCount, maximumNodeCount)"
            )
        return self


class ImageReference(ApiModel):
    publisher: Word
    offer: Word
    sku: Word
    version: Word | None = None
    virtual_machine_image_id: str | None = Field(None, max_length=MAX_ID)


class VirtualMachineConfiguration(ApiModel):
    image_reference: ImageReference | None = None


class SetupTask(ApiModel):
    command_line: Text = Field(min_length=1)
    environment_variables: list[EnvironmentVariable] = Field(
        default_factory=list, max_length=MAX_VARIABLES
    )
    secrets: list[EnvironmentVariableWithSecretValue] = Field(
        default_factory=list, max_length=MAX_VARIABLES
    )
    std_out_err_path_prefix: FilePath = Field(min_length=1)


class AppInsightsReference(ApiModel):
    component: ResourceId
    instrumentation_key: Word | None = None


class PerformanceCountersSettings(ApiModel):
    app_insights_reference: AppInsightsReference


class NodeSetup(ApiModel):
    setup_task: SetupTask | None = None
    mount_volumes: MountVolumes | None = None
    performance_counters_settings: PerformanceCountersSettings | None = None


class UserAccountSettings(ApiModel):
    admin_user_name: str = Field(min_length=1, pattern=r"^[a-z_][a-z0-9_.-]*[$]?$", max_length=32)
    admin_user_ssh_public_key: str | None = None
    admin_user_password: str | None = None


class ClusterProperties(ApiModel):
    vm_size: Word = Field(min_length=1)
    vm_priority: Priority = "dedicated"
    scale_settings: ScaleSettings
    virtual_machine_configuration: VirtualMachineConfiguration | None = None
    node_setup: NodeSetup | None = None
    user_account_settings: UserAccountSettings
    subnet: ResourceId | None = None


class ClusterCreateParameters(ApiModel):
    properties: ClusterProperties


class ClusterUpdateProperties(ApiModel):
    scale_settings: ScaleSettings


class ClusterUpdateParameters(ApiModel):
    properties: ClusterUpdateProperties
