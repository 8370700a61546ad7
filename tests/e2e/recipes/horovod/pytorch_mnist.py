"""Stand-in for Horovod's pytorch_mnist.py: one MPI rank per GPU node, a host file for mpirun."""

import os

from standin import check, env, hosts, rank_and_world, rendezvous, report, writable

rank, world = rank_and_world()
check(world == 2, f"want 2 Horovod processes (processCount = nodeCount), got {world}")
hosts(2)
rendezvous(env("AZ_BATCHAI_SHARED_JOB_TEMP"), rank, world, "horovod")
model = env("AZ_BATCHAI_OUTPUT_MODEL")
check(model.startswith(env("AZ_BATCHAI_MOUNT_ROOT") + "/external/"), f"model dir {model}")
check(model.endswith("/outputs/Models"), f"model dir {model} lacks pathSuffix Models")
writable(model)
if rank == 0:
    with open(os.path.join(model, "checkpoint.pt"), "w") as fh:
        fh.write("weights")
report(framework="horovod", rank=rank, world=world)
