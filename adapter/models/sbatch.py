"""What `bai sbatch` sends the service: the options it read, in sbatch's order, and the script.

The client reads the script, the `#SBATCH` lines, the `SBATCH_*` variables and the command line
with sbatch's rules (adapter.sbatch.parse); the service checks every option against the same
table again (adapter.jobs.sbatch), so a client that skips the checks gains nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from adapter.models.common import MAX_PATH, ApiModel, FilePath, Text

# The service's request body limit is 1 MiB (api.max_body_bytes); sbatch's own default is 4 MB.
MAX_SCRIPT = 768 * 1024
MAX_OPTIONS = 512
MAX_ARGS = 4096

OptionName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]


class SbatchOption(ApiModel):
    name: OptionName  # the long name, without dashes
    value: Text | None = None  # None: a flag
    source: Literal["directive", "environment", "command line"] = "command line"


class SbatchSubmit(ApiModel):
    partition: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATH)] | None = None
    experiment: Annotated[str, StringConstraints(max_length=64)] | None = None
    options: list[SbatchOption] = Field(default_factory=list, max_length=MAX_OPTIONS)
    script: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SCRIPT)]
    script_name: FilePath | None = None
    args: list[Text] = Field(default_factory=list, max_length=MAX_ARGS)
    workdir: Annotated[str, StringConstraints(pattern=r"^/", max_length=MAX_PATH)]


class SbatchConfirm(ApiModel):
    """After the client ran sbatch: the job id it printed, or what sbatch said instead."""

    slurm_job_id: Annotated[int, Field(gt=0, lt=2**32)] | None = None
    error: Text | None = None
