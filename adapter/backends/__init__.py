"""Ways of reaching Slurm, behind one `SlurmBackend` interface."""

from adapter.backends.base import (
    PartitionSpec,
    SlurmBackend,
    SlurmJob,
    SlurmNode,
    SlurmPartition,
)
from adapter.backends.cli import CliBackend
from adapter.backends.runner import CommandResult, LocalRunner, Runner

__all__ = [
    "CliBackend",
    "CommandResult",
    "LocalRunner",
    "PartitionSpec",
    "Runner",
    "SlurmBackend",
    "SlurmJob",
    "SlurmNode",
    "SlurmPartition",
]
