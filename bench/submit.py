"""Job submission throughput: bai's API against a raw sbatch loop and submitit, in one run.

Run after `make dev`, as root:   .venv/bin/python bench/submit.py [-n 50]

All three submit N one-node jobs (`true`) to the same low-priority cluster partition:
- raw `sbatch` in a loop, as the job's user (what bai itself has to do per job), and as root;
- submitit's `AutoExecutor.submit` in a loop (a peer tool: pickles a function, one sbatch each);
- bai's REST API: PUT job, sequentially and from 8 concurrent clients; the clock stops when
  every job is in Slurm (squeue shows its bai:<uuid> comment), not when the API answered.
It prints jobs/s and each rate relative to the raw sbatch loop. The target: the API is at least
as fast as a raw sbatch loop.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import ssl
import subprocess
import tempfile
import time

import httpx
from devapi import API, dev_cluster


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds else float("inf")


def raw_sbatch(partition: str, n: int, user: str | None) -> float:
    """A user's own loop: one shell that runs sbatch n times (as `user`, or as root)."""
    script = f"#!/bin/bash\n#SBATCH -p {partition}\n#SBATCH -o /dev/null\ntrue\n"
    loop = (
        'for i in $(seq "$1"); do printf "%s" "$2" | sbatch --parsable >/dev/null || exit 1; done'
    )
    prefix = ["runuser", "-u", user, "--"] if user else []
    started = time.monotonic()
    subprocess.run([*prefix, "bash", "-c", loop, "loop", str(n), script], check=True, cwd="/tmp")
    return time.monotonic() - started


def noop() -> int:
    return 0


def with_submitit(partition: str, n: int, folder: str) -> float:
    """submitit's jobs write into `folder` as they run: it is removed after they are cancelled."""
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(slurm_partition=partition, timeout_min=5, nodes=1)
    started = time.monotonic()
    for _ in range(n):
        executor.submit(noop)
    return time.monotonic() - started


async def api_jobs(
    base: str,
    headers: dict[str, str],
    tls: ssl.SSLContext,
    cluster_id: str,
    n: int,
    clients: int,
    tag: str,
) -> float:
    body = {
        "properties": {
            "cluster": {"id": cluster_id},
            "nodeCount": 1,
            "customToolkitSettings": {"commandLine": "true"},
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
            "mountVolumes": {
                "azureFileShares": [
                    {
                        "azureFileUrl": "https://bench.file.core.windows.net/logs",
                        "relativeMountPath": "logs",
                    }
                ]
            },
        }
    }
    queue = list(range(n))
    uids: list[str] = []

    async def client(http: httpx.AsyncClient) -> None:
        while queue:
            i = queue.pop()
            response = await http.put(f"{base}/experiments/bench/jobs/{tag}-{i}?{API}", json=body)
            response.raise_for_status()
            segment = response.json()["properties"]["jobOutputDirectoryPathSegment"]
            uids.append(segment.rsplit("/", 1)[1])

    async with httpx.AsyncClient(verify=tls, headers=headers, timeout=120) as http:
        started = time.monotonic()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        answered = time.monotonic() - started
        # Done when every job is in Slurm, not when the API answered.
        wanted = {f"bai:{uid}" for uid in uids}
        while True:
            out = subprocess.run(
                ["squeue", "-h", "-t", "all", "-o", "%k"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            if wanted <= set(out.split()):
                total = time.monotonic() - started
                print(
                    f"  ({clients} client(s): all {n} answered after {answered:.2f} s, "
                    f"all in Slurm after {total:.2f} s)"
                )
                return total
            await asyncio.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50)
    args = parser.parse_args()
    n = args.n
    # submitit's jobs write into this folder as they run: it goes once they are cancelled.
    folder = tempfile.mkdtemp(prefix="bench-submitit-")
    try:
        with dev_cluster("a100x2") as c:
            c.http.put(f"{c.base}/experiments/bench?{API}").raise_for_status()
            rows = [
                ("raw sbatch loop, as the user", raw_sbatch(c.partition, n, "alice")),
                ("raw sbatch loop, as root", raw_sbatch(c.partition, n, None)),
                ("submitit AutoExecutor.submit loop", with_submitit(c.partition, n, folder)),
            ]
            for label, clients, tag in (("1 client", 1, "seq"), ("8 concurrent clients", 8, "par")):
                seconds = asyncio.run(
                    api_jobs(c.base, c.headers, c.tls, c.cluster_id, n, clients, tag)
                )
                rows.append((f"bai API, {label}", seconds))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    baseline = rate(n, rows[0][1])
    print(
        f"{n} one-node jobs each; baseline = raw sbatch loop as the user ({baseline:.1f} jobs/s)\n"
    )
    print(f"{'submitter':<42} {'seconds':>8} {'jobs/s':>8} {'vs baseline':>12}")
    for name, seconds in rows:
        print(
            f"{name:<42} {seconds:>8.2f} {rate(n, seconds):>8.1f} "
            f"{rate(n, seconds) / baseline:>11.2f}x"
        )


if __name__ == "__main__":
    main()
