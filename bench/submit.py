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
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

API = "api-version=2018-05-01"
SUB = "00000000-0000-0000-0000-000000000000"


def env() -> dict[str, str]:
    path = Path(".dev/env")
    if not path.exists():
        sys.exit("no .dev/env: run `make dev` first")
    pairs = [line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines()]
    return {k: v for k, v in pairs}


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
    e = env()
    tls = ssl.create_default_context(cafile=e["BAI_CA"])
    headers = {"Authorization": f"Bearer {e['BAI_TOKEN']}"}
    rg = f"bench-{uuid.uuid4().hex[:6]}"
    base = (
        f"{e['BAI_URL']}/subscriptions/{SUB}/resourceGroups/{rg}/providers/"
        "Microsoft.BatchAI/workspaces/bench"
    )
    http = httpx.Client(verify=tls, headers=headers, timeout=60)
    http.put(f"{base}?{API}", json={"location": "bench"}).raise_for_status()
    cluster = http.put(
        f"{base}/clusters/c?{API}",
        json={
            "properties": {
                "vmSize": "a100x2",
                "vmPriority": "lowpriority",
                "scaleSettings": {"manual": {"targetNodeCount": 1}},
                "userAccountSettings": {"adminUserName": "alice"},
            }
        },
    )
    cluster.raise_for_status()
    http.put(f"{base}/experiments/bench?{API}").raise_for_status()
    cluster_id = cluster.json()["id"]
    partition = next(
        line.split()[0].split("=", 1)[1]
        for line in Path("/etc/slurm/adapter-partitions.conf").read_text().splitlines()
        if line.startswith("PartitionName=c-")
    )
    folder = tempfile.mkdtemp(prefix="bench-submitit-")
    try:
        rows = []
        rows.append(("raw sbatch loop, as the user", raw_sbatch(partition, n, "alice")))
        rows.append(("raw sbatch loop, as root", raw_sbatch(partition, n, None)))
        rows.append(("submitit AutoExecutor.submit loop", with_submitit(partition, n, folder)))
        rows.append(
            (
                "bai API, 1 client",
                asyncio.run(api_jobs(base, headers, tls, cluster_id, n, 1, "seq")),
            )
        )
        rows.append(
            (
                "bai API, 8 concurrent clients",
                asyncio.run(api_jobs(base, headers, tls, cluster_id, n, 8, "par")),
            )
        )
        baseline = rate(n, rows[0][1])
        print(
            f"{n} one-node jobs each; baseline = raw sbatch loop as the user "
            f"({baseline:.1f} jobs/s)\n"
        )
        print(f"{'submitter':<42} {'seconds':>8} {'jobs/s':>8} {'vs baseline':>12}")
        for name, seconds in rows:
            print(
                f"{name:<42} {seconds:>8.2f} {rate(n, seconds):>8.1f} "
                f"{rate(n, seconds) / baseline:>11.2f}x"
            )
    finally:
        subprocess.run(["scancel", "-p", partition], check=False)
        http.delete(f"{base}?{API}")
        shutil.rmtree(folder, ignore_errors=True)
        http.close()


if __name__ == "__main__":
    main()
