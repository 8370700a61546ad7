"""Checks shared by the recipe stand-ins: what the real frameworks would need from the job.

Copied next to each stand-in script (the scripts run as `python <script>` on the nodes).
Every check that fails exits 2 with the reason on stderr, which fails the job.
"""

import json
import os
import sys
import time
from typing import NoReturn


def fail(message: str) -> NoReturn:
    print(f"stand-in check failed: {message}", file=sys.stderr)
    sys.exit(2)


def check(condition: object, message: str) -> None:
    if not condition:
        fail(message)


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        fail(f"${name} is not set")
    return value


def rank_and_world() -> tuple[int, int]:
    rank, world = int(env("SLURM_PROCID")), int(env("SLURM_NTASKS"))
    check(0 <= rank < world, f"rank {rank} is outside a world of {world}")
    return rank, world


def writable(directory: str) -> None:
    check(os.path.isdir(directory), f"{directory} does not exist")
    probe = os.path.join(directory, f".probe-{os.getpid()}")
    with open(probe, "w") as fh:
        fh.write("ok")
    os.unlink(probe)


def hosts(expected: int) -> list[str]:
    """The MPI host file lists one `<address> slots=<gpus>` line per node."""
    path = env("AZ_BATCHAI_MPI_HOST_FILE")
    check(os.path.isfile(path), f"host file {path} is missing")
    with open(path) as fh:
        lines = fh.read().split("\n")[:-1]
    check(len(lines) == expected, f"host file has {len(lines)} lines, want {expected}: {lines}")
    gpus = env("AZ_BATCHAI_NUM_GPUS")
    for line in lines:
        check(line.endswith(f" slots={gpus}"), f"host file line {line!r} lacks slots={gpus}")
    return [line.split()[0] for line in lines]


def rendezvous(directory: str, rank: int, world: int, tag: str, timeout: float = 60) -> None:
    """Every rank checks in through shared storage and waits for the others."""
    writable(directory)
    with open(os.path.join(directory, f"{tag}-{rank}"), "w") as fh:
        fh.write(os.environ.get("SLURMD_NODENAME", "?"))
    deadline = time.time() + timeout
    while time.time() < deadline:
        present = [r for r in range(world) if os.path.exists(os.path.join(directory, f"{tag}-{r}"))]
        if len(present) == world:
            return
        time.sleep(0.2)
    fail(f"only ranks {present} of {world} reached {directory}")


def report(**facts: object) -> None:
    print(json.dumps(facts, sort_keys=True), flush=True)
