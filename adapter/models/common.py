"""Shared request types, the base model, and the Batch AI name rules."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from adapter.errors import InvalidRequest

# Workspace, experiment, cluster and job names (SPEC parameters).
NAME = re.compile(r"^[-\w_]{1,64}$")
RESOURCE_GROUP = re.compile(r"^[-\w._]{1,90}$")


class ApiModel(BaseModel):
    """A request body part: camelCase on the wire, unknown fields refused (typos surface)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def wire(self) -> dict[str, Any]:
        """The camelCase JSON form, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ResourceId(ApiModel):
    id: str


class EnvironmentVariable(ApiModel):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    value: str


class KeyVaultSecretReference(ApiModel):
    source_vault: ResourceId
    secret_url: str


class EnvironmentVariableWithSecretValue(ApiModel):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    value: str | None = None
    value_secret_reference: KeyVaultSecretReference | None = None

    @model_validator(mode="after")
    def _value_given(self) -> EnvironmentVariableWithSecretValue:
        if self.value is None:
            raise ValueError(
                f"secret {self.name!r} has no value; Key Vault references are not available "
                "on-prem, give the value itself"
            )
        return self


def check_name(kind: str, value: str) -> str:
    """Refuse a resource name that Batch AI would refuse, naming the parameter."""
    if not NAME.fullmatch(value):
        raise InvalidRequest(
            f"{kind} {value!r} is not valid: use 1 to 64 letters, digits, '-' or '_'",
            target=kind,
        )
    return value


def check_resource_group(value: str) -> str:
    if not RESOURCE_GROUP.fullmatch(value):
        raise InvalidRequest(
            f"resourceGroupName {value!r} is not valid: use letters, digits, '-', '_' or '.'",
            target="resourceGroupName",
        )
    return value
