"""`bai sbatch`: reads what sbatch 22.05 reads, in sbatch's order; standard library only."""
