"""bai: the Azure Batch AI experience on on-prem Slurm GPU clusters."""

__version__ = "0.1.0"
