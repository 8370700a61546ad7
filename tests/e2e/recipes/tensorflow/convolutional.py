"""Stand-in for convolutional.py: a single TensorFlow process, no cluster spec."""

import os

from standin import check, env, report

check("TF_CONFIG" not in os.environ, "a single-process job has no TF_CONFIG")
check(env("AZ_BATCHAI_TASK_INDEX") == "0", "task index 0")
check(os.environ["SLURM_NTASKS"] == "1", "one process")
report(framework="tensorflow", role="master", index=0)
