"""Stand-in for ChainerMN's train_mnist.py: MPI ranks across both nodes, a host file, output."""

import os
import sys

from standin import check, env, hosts, rank_and_world, rendezvous, report, writable

args = sys.argv[1:]
check(args[:1] == ["-g"] and args[1] == "-o", f"unexpected arguments {args}")
out = args[2]
check(out == env("AZ_BATCHAI_OUTPUT_MODEL"), "-o is not $AZ_BATCHAI_OUTPUT_MODEL")
rank, world = rank_and_world()
check(world == int(env("SLURM_JOB_NUM_NODES")) == 2, f"want 2 processes on 2 nodes, got {world}")
addresses = hosts(2)
rendezvous(env("AZ_BATCHAI_SHARED_JOB_TEMP"), rank, world, "chainer")
writable(out)
with open(os.path.join(out, f"rank-{rank}.npz"), "w") as fh:
    fh.write("model")
report(framework="chainer", rank=rank, world=world, hosts=addresses)
