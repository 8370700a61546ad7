"""Stand-in for CNTK's ConvNet_MNIST.py: data dir readable, model dir writable, one process."""

import os
import sys

from standin import check, rank_and_world, report, writable

check(len(sys.argv) == 3, f"want <data dir> <model dir>, got {sys.argv[1:]}")
data, model = sys.argv[1:]
check(
    os.path.isfile(os.path.join(data, "Train-28x28_cntk_text.txt")), f"no training data in {data}"
)
check(model == os.environ["AZ_BATCHAI_OUTPUT_MODEL"], "model dir is not $AZ_BATCHAI_OUTPUT_MODEL")
writable(model)
rank, world = rank_and_world()
check(world == 1, f"CNTK single-node job runs 1 process, not {world}")
with open(os.path.join(model, "ConvNet_MNIST.model"), "w") as fh:
    fh.write("weights")
report(framework="cntk", rank=rank, world=world)
