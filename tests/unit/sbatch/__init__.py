"""Unit tests of the pure `bai sbatch` reader (adapter.sbatch)."""
