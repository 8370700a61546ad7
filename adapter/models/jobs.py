"""Job create body (JobCreateParameters) and its toolkit settings."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from adapter.models.clusters import _lower
from adapter.models.common import (
    MAX_URL,
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

Priority = Annotated[Literal["low", "normal", "high"], BeforeValidator(_lower)]
DirectoryId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,32}$")]
DEFAULT_WALL_CLOCK = timedelta(days=7)
# Bounds of a job's lists and counts beyond those of models/common.py (docs/security.md).
MAX_DIRECTORIES = 100  # inputDirectories, and outputDirectories, each
MAX_PROCESSES = 100 * 1024  # processCount, workerCount, parameterServerCount: 100 nodes' worth
MAX_IMAGE = 1024  # a registry host, a repository (255) and a tag or digest
Count = Annotated[int, Field(ge=1, le=MAX_PROCESSES)]

_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_DOTNET_SPAN = re.compile(r"^(?:(?P<d>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})$")


def parse_duration(value: Any) -> timedelta:
    """ISO-8601 (`P7D`, `PT2H30M`) as the SDK sends it; `7.00:00:00` as older files have it."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("give an ISO-8601 duration such as PT2H or P1D")
    m = _ISO_DURATION.match(value) or _DOTNET_SPAN.match(value)
    if not m or not any(m.groupdict().values()):
        raise ValueError(f"{value!r} is not a duration; use ISO-8601 such as PT2H or P1D")
    parts = {k: float(v) for k, v in m.groupdict().items() if v}
    try:
        return timedelta(
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
            seconds=parts.get("s", 0),
        )
    except OverflowError:  # past 999999999 days, which pydantic would not report as a 400
        raise ValueError(
            f"{value[:64]!r} is too long a duration; Batch AI jobs run 7 days at most (P7D)"
        ) from None


class Constraints(ApiModel):
    max_wall_clock_time: Annotated[timedelta, BeforeValidator(parse_duration)] = DEFAULT_WALL_CLOCK

    @field_validator("max_wall_clock_time")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("must be at least one minute")
        return value


class PrivateRegistryCredentials(ApiModel):
    username: Word
    password: str | None = None


class ImageSourceRegistry(ApiModel):
    server_url: str | None = Field(None, max_length=MAX_URL)
    image: str = Field(min_length=1, max_length=MAX_IMAGE, pattern=r"^[^\s'\"`$;|&<>]+$")
    credentials: PrivateRegistryCredentials | None = None


class ContainerSettings(ApiModel):
    image_source_registry: ImageSourceRegistry
    shm_size: str | None = Field(None, max_length=32, pattern=r"^\d+[bkmgBKMG]?[bB]?$")


class JobPreparation(ApiModel):
    command_line: Text = Field(min_length=1)


class InputDirectory(ApiModel):
    id: DirectoryId
    path: FilePath = Field(min_length=1)


class OutputDirectory(ApiModel):
    id: DirectoryId
    path_prefix: FilePath = Field(min_length=1)
    path_suffix: FilePath | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")

    @field_validator("path_suffix")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        if value is not None and {".", ".."} & set(value.split("/")):
            raise ValueError("must name directories inside the output directory (no . or ..)")
        return value


class CustomToolkitSettings(ApiModel):
    command_line: Text | None = None


class CustomMpiSettings(ApiModel):
    command_line: Text = Field(min_length=1)
    process_count: Count | None = None


class _Script(ApiModel):
    python_script_file_path: FilePath = Field(min_length=1)
    python_interpreter_path: FilePath | None = None
    command_line_args: Text | None = None


class HorovodSettings(_Script):
    process_count: Count | None = None


class PyTorchSettings(_Script):
    process_count: Count | None = None
    communication_backend: Word | None = None


class ChainerSettings(_Script):
    process_count: Count | None = None


class Caffe2Settings(_Script):
    pass


class TensorFlowSettings(ApiModel):
    python_script_file_path: FilePath = Field(min_length=1)
    python_interpreter_path: FilePath | None = None
    master_command_line_args: Text | None = None
    worker_command_line_args: Text | None = None
    parameter_server_command_line_args: Text | None = None
    worker_count: Count | None = None
    parameter_server_count: int | None = Field(None, ge=0, le=MAX_PROCESSES)


class CNTKsettings(ApiModel):
    language_type: Literal["BrainScript", "Python"] | None = None
    config_file_path: FilePath | None = None
    python_script_file_path: FilePath | None = None
    python_interpreter_path: FilePath | None = None
    command_line_args: Text | None = None
    process_count: Count | None = None

    @model_validator(mode="after")
    def _one_entry(self) -> CNTKsettings:
        if self.language_type == "Python" or (
            self.language_type is None and self.python_script_file_path
        ):
            if not self.python_script_file_path:
                raise ValueError("languageType Python needs pythonScriptFilePath")
        elif not self.config_file_path:
            raise ValueError("give configFilePath (BrainScript) or pythonScriptFilePath (Python)")
        return self


class CaffeSettings(ApiModel):
    config_file_path: FilePath | None = None
    python_script_file_path: FilePath | None = None
    python_interpreter_path: FilePath | None = None
    command_line_args: Text | None = None
    process_count: Count | None = None

    @model_validator(mode="after")
    def _one_entry(self) -> CaffeSettings:
        if bool(self.config_file_path) == bool(self.python_script_file_path):
            raise ValueError("give exactly one of configFilePath or pythonScriptFilePath")
        return self


# JSON key -> toolType reported for it (SPEC; "pytorch" as the live service reported).
TOOLKITS = {
    "cntkSettings": "cntk",
    "pyTorchSettings": "pytorch",
    "tensorFlowSettings": "tensorflow",
    "caffeSettings": "caffe",
    "caffe2Settings": "caffe2",
    "chainerSettings": "chainer",
    "customToolkitSettings": "custom",
    "customMpiSettings": "custommpi",
    "horovodSettings": "horovod",
}


class JobProperties(ApiModel):
    scheduling_priority: Priority = "normal"
    cluster: ResourceId
    mount_volumes: MountVolumes | None = None
    node_count: int = Field(ge=1, le=100)
    container_settings: ContainerSettings | None = None
    cntk_settings: CNTKsettings | None = Field(None, alias="cntkSettings")
    py_torch_settings: PyTorchSettings | None = Field(None, alias="pyTorchSettings")
    tensor_flow_settings: TensorFlowSettings | None = Field(None, alias="tensorFlowSettings")
    caffe_settings: CaffeSettings | None = None
    caffe2_settings: Caffe2Settings | None = None
    chainer_settings: ChainerSettings | None = None
    custom_toolkit_settings: CustomToolkitSettings | None = None
    custom_mpi_settings: CustomMpiSettings | None = None
    horovod_settings: HorovodSettings | None = None
    job_preparation: JobPreparation | None = None
    std_out_err_path_prefix: FilePath = Field(min_length=1)
    input_directories: list[InputDirectory] = Field(
        default_factory=list, max_length=MAX_DIRECTORIES
    )
    output_directories: list[OutputDirectory] = Field(
        default_factory=list, max_length=MAX_DIRECTORIES
    )
    environment_variables: list[EnvironmentVariable] = Field(
        default_factory=list, max_length=MAX_VARIABLES
    )
    secrets: list[EnvironmentVariableWithSecretValue] = Field(
        default_factory=list, max_length=MAX_VARIABLES
    )
    constraints: Constraints = Field(default_factory=Constraints)

    @model_validator(mode="after")
    def _one_toolkit(self) -> JobProperties:
        given = [key for key in TOOLKITS if getattr(self, _attr(key)) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one toolkit: one of "
                + ", ".join(TOOLKITS)
                + (f" (got {', '.join(given)})" if given else "")
            )
        ids = [d.id.upper() for d in self.input_directories] + [
            d.id.upper() for d in self.output_directories
        ]
        if len(ids) != len(set(ids)):
            raise ValueError("inputDirectories and outputDirectories ids must be unique")
        names = [e.name for e in self.environment_variables] + [s.name for s in self.secrets]
        if len(names) != len(set(names)):
            raise ValueError("environmentVariables and secrets names must be unique")
        return self

    @property
    def toolkit_key(self) -> str:
        return next(k for k in TOOLKITS if getattr(self, _attr(k)) is not None)

    @property
    def tool_type(self) -> str:
        return TOOLKITS[self.toolkit_key]


def _attr(key: str) -> str:
    return {
        "cntkSettings": "cntk_settings",
        "pyTorchSettings": "py_torch_settings",
        "tensorFlowSettings": "tensor_flow_settings",
    }.get(key, re.sub(r"(?<!^)(?=[A-Z0-9])", "_", key).lower().replace("caffe_2", "caffe2"))


class JobCreateParameters(ApiModel):
    properties: JobProperties
