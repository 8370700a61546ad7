"""Batch AI jobs on Slurm: paths, volumes, the rendered script, the lifecycle."""
