"""Service settings: `BAI_*` environment variables over a TOML or YAML file over defaults.

The file is named by `BAI_CONFIG` (or `bai serve --config`); nested keys are reached from the
environment with `__`, e.g. `BAI_CLUSTERS__RECONCILE_INTERVAL_SECONDS=2`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)


class SshSettings(BaseModel):
    """The login or controller host the `ssh` runner runs Slurm's commands on."""

    host: str = ""
    port: int = 22
    # The account bai logs in as there: not root, with the sudo rules of docs/slurm-backend.md.
    user: str = "bai"
    key_file: str = "/etc/bai/ssh/id_ed25519"
    # The host's key, as the operator checked it: an unknown or changed key is refused.
    known_hosts: str = "/etc/bai/ssh/known_hosts"
    connect_timeout_seconds: float = 10.0
    keepalive_seconds: float = 30.0


class SlurmSettings(BaseModel):
    """How bai reaches Slurm: the commands on this host or over SSH, and libslurm in this
    process."""

    # Where Slurm's commands run: `local` (this host has them and sees slurmctld) or `ssh`
    # (on `ssh.host`; this host then needs no Slurm installation, and jobs are read with the
    # commands there, not libslurm).
    runner: Literal["local", "ssh"] = "local"
    ssh: SshSettings = Field(default_factory=SshSettings)
    # How jobs are submitted and read: `libslurm` in-process (built against the installed
    # headers on first start; needs gcc and libslurm-dev), `commands` (sbatch, squeue), or
    # `auto`: libslurm where it can be built, else the commands (the log says which and why).
    # With the ssh runner, `auto` means the commands and `libslurm` is refused.
    client: Literal["auto", "libslurm", "commands"] = "auto"
    # On the host the commands run on (over SFTP with the ssh runner).
    partitions_include: str = "/etc/slurm/bai/partitions.conf"

    @model_validator(mode="after")
    def _ssh_needs_a_host(self) -> SlurmSettings:
        if self.runner == "ssh" and not self.ssh.host:
            raise ValueError("slurm.runner is ssh but slurm.ssh.host is empty: name the host")
        if self.runner == "ssh" and self.client == "libslurm":
            raise ValueError(
                "slurm.client libslurm needs Slurm on this host; with slurm.runner ssh, "
                "use `commands` (or `auto`)"
            )
        return self


class RemoteLoginSettings(BaseModel):
    """What `listRemoteLoginInformation` reports for a node.

    By default a node's Slurm `NodeAddr` and `ssh_port`. Behind a bastion or NAT, either map
    nodes one by one (`nodes: {gpu-a100-1: "203.0.113.7:50000"}`) or give one `public_address`
    and a `port_base`: the n-th node of the inventory (sorted by name) gets `port_base + n`.
    """

    ssh_port: int = 22
    public_address: str | None = None
    port_base: int | None = None
    nodes: dict[str, str] = Field(default_factory=dict)


class ClusterSettings(BaseModel):
    """Cluster semantics: priorities, low-priority limits, scaling and reconciling."""

    dedicated_priority_tier: int = 10
    lowpriority_priority_tier: int = 1
    lowpriority_grace_time_seconds: int = 60
    lowpriority_max_time_minutes: int = 24 * 60
    reconcile_interval_seconds: float = 15.0
    autoscale_idle_seconds: float = 300.0
    # $AZ_BATCHAI_MOUNT_ROOT of setup tasks (a job's is its own, under its job temp).
    mount_root: str = "/mnt/batch/tasks/shared/LS_root/mounts"
    # A directory every node sees at the same path (shared storage on a site), where bai puts
    # per-job files such as 0600 secrets files owned by the job's user.
    spool_dir: str = "/var/lib/bai/spool"


class StorageAccount(BaseModel):
    """What an Azure storage account name means on this site (DESIGN.md section 5).

    - `local`: shares are directories present on every node (and on the bai host), at
      `<path>/<share or container>`; jobs get a symlink.
    - `rclone`: a FUSE mount made by the job's user; `remote` is an rclone backend section
      (type and options), the share or container is the path on it.
    - `nfs` / `cifs`: kernel mounts made by the root Prolog: `<server>:<export>/<share>` or
      `//<server>/<export>/<share>`, with `options`.
    `adapter_path`, if set, is where the bai host sees the same files (for listOutputFiles).

    `users` and `groups` (Unix user and group names) say who may mount the account: a user
    named in `users`, or in one of `groups` (the primary group counts). Both empty, the
    default, means every user may: set them on a site shared by several teams. A request naming
    an account its user may not use is refused with a 400 (adapter.jobs.volumes).
    """

    kind: Literal["local", "rclone", "nfs", "cifs"]
    path: str | None = None
    remote: dict[str, str] = Field(default_factory=dict)
    server: str | None = None
    export: str = ""
    options: str = ""
    adapter_path: str | None = None
    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)

    @property
    def restricted(self) -> bool:
        """Whether only the listed users and groups may use the account."""
        return bool(self.users or self.groups)


class ContainerSettings(BaseModel):
    """How jobs with `containerSettings` run. `runtime = "none"` refuses them (400); `"host"`
    runs them on the node itself (the image is not used; execution.log says so); `"template"`
    prefixes every task with `command`, an argv with `{image}` in it, e.g. ["apptainer", "exec",
    "--nv", "docker://{image}"]."""

    runtime: Literal["none", "host", "template"] = "none"
    command: list[str] = Field(default_factory=list)
    # Directories put first on PATH for jobs that name an image under the host runtime. Dev
    # uses it for stand-ins of what the recipes' images provide (python, pip, apt).
    host_path: list[str] = Field(default_factory=list)


class JobSettings(BaseModel):
    """Where jobs live on the nodes, and how they are launched."""

    # Node-local parent of every job's temp directory: root's, 0755; the Prolog makes each one.
    job_root: str = "/mnt/batch/tasks/shared/LS_root/jobs"
    # `srun --mpi=` for MPI toolkits (horovod, customMpi, cntk, chainer, caffe): the plugin
    # that gives their ranks one world (`srun --mpi=list` shows a site's).
    srun_mpi: str = "pmix"
    # The toolkits started with the site's mpirun instead (toolType words: custommpi, horovod,
    # chainer, cntk, caffe), e.g. for images whose MPI was built without PMIx.
    mpirun_toolkits: list[Literal["custommpi", "horovod", "chainer", "cntk", "caffe"]] = Field(
        default_factory=list
    )
    # Their launcher, an argv template: {processes} and {per_node} are filled in. It runs in the
    # job's batch shell and starts ranks on the job's nodes through Slurm (OpenMPI does).
    mpirun: list[str] = Field(
        default_factory=lambda: [
            "mpirun",
            "-np",
            "{processes}",
            "--map-by",
            "ppr:{per_node}:node",
            "--oversubscribe",
        ]
    )
    # The interpreter of jobs that name no pythonInterpreterPath and no image; empty: python3,
    # else python, from the node's PATH when the job runs.
    python: str = ""
    # Submissions (libslurm calls, or sbatch runs) bai makes side by side when jobs arrive
    # faster than one takes.
    submitters: Annotated[int, Field(ge=1, le=32)] = 4
    # Operator-approved mount commands for unmanagedFileSystems (exact match).
    unmanaged_mounts: list[str] = Field(default_factory=list)
    # Test-only fault injection: exit right after recording a job, right after sbatch, or
    # halfway through writing a job's spool files.
    crash_point: Literal["", "after_record", "after_submit", "mid_spool_write"] = ""


class MetricsSettings(BaseModel):
    """What /metrics serves."""

    # One series per running job and node (for joining GPU telemetry): off by default, as its
    # cardinality grows with the number of jobs.
    job_node_series: bool = False
    # If set, /metrics wants `Authorization: Bearer <token>` (Prometheus `authorization:`).
    token: str | None = None


class ApiSettings(BaseModel):
    """Bounds on what one request may send (docs/security.md, "Request limits")."""

    # A request body larger than this is refused with 413 before it is read whole. 1 MiB holds
    # a job with a thousand 1 KiB environment variables; a body's rendered job must also stay
    # well under Linux's 2 MiB for a process's arguments and environment.
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    # Arrays and objects nested deeper than this are refused before the JSON is parsed. The
    # deepest Batch AI body (a mount's Key Vault reference in a cluster's nodeSetup) has 9; at
    # most 512 keeps json.loads well inside Python's recursion limit.
    max_json_depth: Annotated[int, Field(ge=8, le=512)] = 32


class AuthSettings(BaseModel):
    """Which system accounts (root, daemons; adapter/accounts.py) bai may act as anyway
    (docs/security.md, "Tokens")."""

    model_config = ConfigDict(extra="forbid")  # a misspelt name must not pass unnoticed

    # Users `bai token create --user` may make tokens for although they are system accounts
    # (e.g. ["root"] on a lab machine). A token whose user is not allowed is refused (403).
    allow_system_users: list[str] = Field(default_factory=list)
    # System accounts a cluster's userAccountSettings.adminUserName may name: its setup task
    # and SSH account run as that user. Whoever asks, admin token or not.
    allow_system_run_as: list[str] = Field(default_factory=list)


class GpuQuota(BaseModel):
    """GPUs of each priority one user (or one group's members together) may hold; None is no
    limit. A GPU counts as held while a cluster holds, or is set to hold, its node."""

    model_config = ConfigDict(extra="forbid")  # a misspelt limit must not mean "no limit"

    dedicated_gpus: Annotated[int, Field(ge=0)] | None = None
    lowpriority_gpus: Annotated[int, Field(ge=0)] | None = None

    def limit(self, priority: str) -> int | None:
        """The limit for `dedicated` or `lowpriority` clusters."""
        return self.dedicated_gpus if priority == "dedicated" else self.lowpriority_gpus


class QuotaSettings(BaseModel):
    """Operator-set GPU quotas (docs/clusters.md, "Quotas"). `users` by Unix user name, a field
    left unset there falls back to `default`'s (the per-user quota of everyone); `groups` by
    Unix group name, each bounding the sum over its members. Every quota that applies holds."""

    model_config = ConfigDict(extra="forbid")

    default: GpuQuota = Field(default_factory=GpuQuota)
    users: dict[str, GpuQuota] = Field(default_factory=dict)
    groups: dict[str, GpuQuota] = Field(default_factory=dict)


class Settings(BaseSettings):
    """Everything an operator can set."""

    model_config = SettingsConfigDict(
        env_prefix="BAI_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    state_dir: Path = Path("/var/lib/bai")
    host: str = "0.0.0.0"
    port: int = 8443
    # TLS: the operator's certificate and key; without them `bai serve` makes a self-signed pair
    # in `<state_dir>/tls` (dev).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # The URL clients reach the service at (for Location headers and nextLink); by default taken
    # from each request.
    public_url: str | None = None
    # Dev only: a storage account not in `storage_accounts` is the `local` directory
    # `<dev_storage_root>/<account>` (BAI_DEV_STORAGE_ROOT).
    dev_storage_root: Path | None = None
    # Azure-authored files name VM sizes; map them to node types (`STANDARD_NC6 = "t4x1"`).
    vm_size_aliases: dict[str, str] = Field(default_factory=dict)
    slurm: SlurmSettings = Field(default_factory=SlurmSettings)
    remote_login: RemoteLoginSettings = Field(default_factory=RemoteLoginSettings)
    clusters: ClusterSettings = Field(default_factory=ClusterSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    containers: ContainerSettings = Field(default_factory=ContainerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    storage_accounts: dict[str, StorageAccount] = Field(default_factory=dict)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)

    @field_validator("vm_size_aliases")
    @classmethod
    def _upper_aliases(cls, value: dict[str, str]) -> dict[str, str]:
        # Azure VM size names are case-insensitive (Standard_NC6 == STANDARD_NC6).
        return {k.upper(): v for k, v in value.items()}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("BAI_CONFIG")
        if path:
            if path.endswith((".yaml", ".yml")):
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
            else:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "bai.db"


def load_settings(config: str | None = None, **overrides: Any) -> Settings:
    """Settings from the environment and the config file (`config` wins over `BAI_CONFIG`)."""
    if config is not None:
        if not Path(config).is_file():
            raise FileNotFoundError(f"config file {config} does not exist")
        os.environ["BAI_CONFIG"] = config
    return Settings(**overrides)
