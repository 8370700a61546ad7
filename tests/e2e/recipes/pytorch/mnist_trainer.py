"""Stand-in for the Gloo mnist_trainer.py: rank, world size and init method agree with Slurm."""

import argparse
import os

from standin import check, env, rank_and_world, rendezvous, report

parser = argparse.ArgumentParser()
for flag in ("--epochs", "--world-size", "--dist-backend", "--dist-url", "--rank"):
    parser.add_argument(flag, required=True)
args = parser.parse_args()
rank, world = rank_and_world()
check(int(args.rank) == rank == int(env("AZ_BATCHAI_TASK_INDEX")), f"rank {args.rank} != {rank}")
check(int(args.world_size) == world == 2, f"world size {args.world_size} != {world}")
check(args.dist_backend == env("AZ_BATCHAI_PYTORCH_BACKEND") == "gloo", "backend mismatch")
check(args.dist_url == env("AZ_BATCHAI_PYTORCH_INIT_METHOD"), "--dist-url is not the init method")
check(args.dist_url.startswith("file://"), f"init method {args.dist_url} is not a shared file")
init_dir = os.path.dirname(args.dist_url.removeprefix("file://"))
check(init_dir == env("AZ_BATCHAI_SHARED_JOB_TEMP"), "init file is not in the shared job temp")
rendezvous(init_dir, rank, world, "gloo")  # both ranks reach the same file system
report(framework="pytorch", rank=rank, world=world)
