"""Shared request types, the base model, and the Batch AI name rules."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from adapter.errors import InvalidRequest

# Workspace, experiment, cluster and job names (SPEC parameters `^[-\w_]+$`, 1 to 64), ASCII
# only: the names become Slurm names, paths and shell words.
NAME = re.compile(r"[-A-Za-z0-9_]{1,64}")
RESOURCE_GROUP = re.compile(r"[-A-Za-z0-9._]{1,90}")
# A subscription: a GUID, as Azure tools send, or a site's plain name (`team-a`); both fit.
SUBSCRIPTION = re.compile(r"[-A-Za-z0-9._]{1,90}")

# Bounds of what a request may hold (docs/security.md, "Request limits"); models/jobs.py has
# those of jobs alone.
MAX_TEXT = 32 * 1024  # any string not bounded tighter: command lines, arguments, values
MAX_PATH = 4096  # a path (Linux PATH_MAX)
MAX_URL = 2048
MAX_ID = 1024  # an ARM resource id
MAX_WORD = 256  # a size, a location, an image part, a variable name
MAX_VARIABLES = 1000  # environmentVariables, and secrets, each
MAX_TAGS, MAX_TAG_NAME, MAX_TAG_VALUE = 50, 512, 256  # what ARM allows

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
FilePath = Annotated[str, StringConstraints(max_length=MAX_PATH)]
Url = Annotated[str, StringConstraints(max_length=MAX_URL)]
Word = Annotated[str, StringConstraints(max_length=MAX_WORD)]
VariableName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=MAX_WORD)
]


class ApiModel(BaseModel):
    """A request body part: camelCase on the wire, unknown fields refused (typos surface), no
    string longer than MAX_TEXT."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        str_max_length=MAX_TEXT,
    )

    def wire(self) -> dict[str, Any]:
        """The camelCase JSON form, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _check_tags(value: Any) -> Any:
    # Before pydantic's own checks, so that an overlong tag name is not echoed as a field name.
    if not isinstance(value, dict):
        return value
    if len(value) > MAX_TAGS:
        raise ValueError(f"has {len(value)} tags; ARM allows at most {MAX_TAGS}")
    for name, text in value.items():
        if isinstance(name, str) and not 1 <= len(name) <= MAX_TAG_NAME:
            raise ValueError(
                f"a tag name is {len(name)} characters; use 1 to {MAX_TAG_NAME} (ARM's limit)"
            )
        if isinstance(text, str) and len(text) > MAX_TAG_VALUE:
            raise ValueError(
                f"tag {_shown(name)} has a value of {len(text)} characters; ARM allows at most "
                f"{MAX_TAG_VALUE}"
            )
    return value


# The bounds are _check_tags'; the schema states them too, for the OpenAPI document.
Tags = Annotated[
    dict[str, str],
    BeforeValidator(_check_tags),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_TAGS,
            "propertyNames": {"minLength": 1, "maxLength": MAX_TAG_NAME},
            "additionalProperties": {"type": "string", "maxLength": MAX_TAG_VALUE},
        }
    ),
]


class ResourceId(ApiModel):
    id: Annotated[str, StringConstraints(max_length=MAX_ID)]


class EnvironmentVariable(ApiModel):
    name: VariableName
    value: str


class KeyVaultSecretReference(ApiModel):
    source_vault: ResourceId
    secret_url: Url


class EnvironmentVariableWithSecretValue(ApiModel):
    name: VariableName
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
    """Refuse a resource name that Batch AI would refuse, naming the parameter and the rule."""
    return _check(kind, value, NAME, 64, "use 1 to 64 letters, digits, '-' or '_'")


def check_resource_group(value: str) -> str:
    """Refuse a resource group name outside ASCII letters, digits, '-', '_' and '.'."""
    return _check(
        "resourceGroupName",
        value,
        RESOURCE_GROUP,
        90,
        "use 1 to 90 letters, digits, '-', '_' or '.'",
    )


def check_subscription(value: str) -> str:
    """Refuse a subscription id that is neither a GUID nor a plain name (letters, digits, '-',
    '_', '.'; 1 to 90): sites may name subscriptions after teams, Azure tools send GUIDs."""
    return _check(
        "subscriptionId",
        value,
        SUBSCRIPTION,
        90,
        "use a GUID, or a name of 1 to 90 letters, digits, '-', '_' or '.'",
    )


def _check(target: str, value: str, pattern: re.Pattern[str], most: int, rule: str) -> str:
    if pattern.fullmatch(value):
        return value
    if not value:
        problem = "is empty"
    elif len(value) > most:
        problem = f"is {len(value)} characters long"
    else:
        bad = next(c for c in value if pattern.fullmatch(c) is None)
        problem = f"contains {ascii(bad)}"  # ascii(): a control character stays visible
    raise InvalidRequest(
        f"{target} {_shown(value)} is not valid: it {problem}; {rule}",
        target=target,
    )


def _shown(value: str) -> str:
    """A value quoted for a message: control and non-ASCII characters escaped, cut to 64."""
    return ascii(value[:64]) + ("…" if len(value) > 64 else "")
