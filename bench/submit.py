"""Job submission throughput: bai's API against a raw sbatch loop and submitit, in one run.

Run after `make dev`, as root:   .venv/bin/python bench/submit.py [-n 200] [--rounds 3]

Each row submits N one-node jobs (`true`) to the same low-priority cluster partition:
- raw `sbatch` in a loop, as the job's user (what a user does by hand), and as root;
- bai's submission call alone: libslurm in one process, in a loop, as the user (no API);
- submitit's `AutoExecutor.submit` in a loop (a peer tool: pickles a function, one sbatch each);
- bai's REST API: PUT job, from one sequential client (a synchronous loop, as a user's script
  or the SDK would be) and from 8 concurrent clients (asyncio); the clock stops when
  every job is in Slurm (squeue shows its bai:<uuid> comment), not when the API answered.
Slurm gets slower as it remembers more jobs, so the rows take turns over several rounds and each
reports its median. It prints jobs/s and each rate relative to the raw sbatch loop as the
user, and the CPU each row cost per job in the bai service, slurmctld, munged and the client
side. The target: the API at least 2.5x a raw sbatch loop, with one client and with 8.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from devapi import API, DevCluster, dev_cluster

from adapter.backends import LocalRunner
from adapter.backends.libslurm import Libslurm, LibslurmBackend
from adapter.backends.slurm_options import SlurmOptions
from adapter.settings import Settings


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds else float("inf")


# The daemons whose CPU a submission costs, by pid file.
DAEMONS = {
    "bai": "/run/bai.pid",
    "slurmctld": "/run/slurmctld.pid",
    "munged": "/run/munge/munged.pid",
}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system, every thread) of each daemon, and of this process and its
    waited-for children (the sbatch processes of a loop, submitit's, the in-process calls)."""
    used = {}
    for name, pidfile in DAEMONS.items():
        pid = Path(pidfile).read_text().split()[0]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        used[name] = (int(fields[11]) + int(fields[12])) / TICKS
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    used["client"] = me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime
    return used


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


def in_process(partition: str, n: int) -> float:
    """bai's own submission call without the API: libslurm in this process, as the user."""
    runner = LocalRunner()
    backend = LibslurmBackend(runner, Libslurm.load(Settings().state_dir / "libslurm", runner.env))
    options = SlurmOptions(partition=partition, output="/dev/null")
    script = "\n".join(["#!/bin/bash", *options.directives(), "true", ""])

    async def loop() -> None:
        for _ in range(n):
            await backend.submit_job(options, script, user="alice")

    started = time.monotonic()
    asyncio.run(loop())
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


def job_body(cluster_id: str) -> dict[str, Any]:
    """A one-node custom-toolkit job with an Azure file share for its logs (a recipe's shape)."""
    return {
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


def api_jobs(c: DevCluster, n: int, clients: int, tag: str) -> float:
    """PUT n jobs, from one sequential client (a plain synchronous loop, as a user's script or
    the SDK) or from `clients` concurrent ones; seconds until every job is in Slurm."""
    body, url = job_body(c.cluster_id), f"{c.base}/experiments/bench/jobs/{tag}"
    uids: list[str] = []

    def record(response: httpx.Response) -> None:
        response.raise_for_status()
        segment = response.json()["properties"]["jobOutputDirectoryPathSegment"]
        uids.append(segment.rsplit("/", 1)[1])

    async def concurrently() -> None:
        queue = list(range(n))

        async def client(http: httpx.AsyncClient) -> None:
            while queue:
                record(await http.put(f"{url}-{queue.pop()}?{API}", json=body))

        async with httpx.AsyncClient(verify=c.tls, headers=c.headers, timeout=120) as http:
            await asyncio.gather(*(client(http) for _ in range(clients)))

    with httpx.Client(verify=c.tls, headers=c.headers, timeout=120) as http:
        http.get(f"{c.base}?{API}").raise_for_status()  # connected before the clock starts
        started = time.monotonic()
        if clients == 1:
            for i in range(n):
                record(http.put(f"{url}-{i}?{API}", json=body))
        else:
            asyncio.run(concurrently())
    answered = time.monotonic() - started
    # Done when every job is in Slurm, not when the API answered.
    wanted = {f"bai:{uid}" for uid in uids}
    while True:
        out = subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%k"], capture_output=True, text=True, check=True
        ).stdout
        if wanted <= set(out.split()):
            total = time.monotonic() - started
            print(
                f"  ({clients} client(s): all {n} answered after {answered:.2f} s, "
                f"all in Slurm after {total:.2f} s)"
            )
            return total
        time.sleep(0.05)


def remembered_jobs() -> int:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True)
    return len(out.stdout.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n = args.n
    # Each round adds 5n jobs that slurmctld keeps for MinJobAge (300 s here) after they end;
    # near MaxJobCount (10,000) sbatch sleeps and retries, and every row slows down.
    if (already := remembered_jobs()) > 1000:
        print(
            f"note: slurmctld remembers {already} jobs from earlier runs; rates are lower and "
            "noisier until it forgets them (MinJobAge, 5 minutes on the dev cluster)"
        )
    # submitit's jobs write into this folder as they run: it goes once they are cancelled.
    folder = tempfile.mkdtemp(prefix="bench-submitit-")
    rows: dict[str, list[float]] = {}
    cpu: dict[str, list[dict[str, float]]] = {}
    try:
        with dev_cluster("a100x2") as c:
            c.http.put(f"{c.base}/experiments/bench?{API}").raise_for_status()

            def api(clients: int, tag: str) -> float:
                return api_jobs(c, n, clients, tag)

            # Slurm slows down as it remembers more jobs (MinJobAge): the rows take turns, and
            # each one reports its median over the rounds.
            for r in range(args.rounds):
                print(f"round {r + 1} of {args.rounds}")
                for label, run in (
                    ("raw sbatch loop, as the user", lambda: raw_sbatch(c.partition, n, "alice")),
                    ("raw sbatch loop, as root", lambda: raw_sbatch(c.partition, n, None)),
                    ("libslurm loop in one process (no API)", lambda: in_process(c.partition, n)),
                    ("bai API, 1 client", lambda r=r: api(1, f"seq{r}")),
                    ("bai API, 8 concurrent clients", lambda r=r: api(8, f"par{r}")),
                ):
                    before = cpu_seconds()
                    rows.setdefault(label, []).append(run())
                    after = cpu_seconds()
                    cpu.setdefault(label, []).append({k: after[k] - before[k] for k in after})
            # A peer tool 50 times slower than the rest: once is enough.
            rows["submitit AutoExecutor.submit loop"] = [with_submitit(c.partition, n, folder)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seconds = {label: statistics.median(times) for label, times in rows.items()}
    baseline = rate(n, seconds["raw sbatch loop, as the user"])
    print(
        f"\n{n} one-node jobs per row and round, median of {args.rounds} rounds; "
        f"baseline = raw sbatch loop as the user ({baseline:.1f} jobs/s)\n"
    )
    print(f"{'submitter':<42} {'seconds':>8} {'jobs/s':>8} {'vs baseline':>12}  jobs/s per round")
    for name, secs in seconds.items():
        each = " ".join(f"{rate(n, t):.0f}" for t in rows[name])
        print(
            f"{name:<42} {secs:>8.2f} {rate(n, secs):>8.1f} "
            f"{rate(n, secs) / baseline:>11.2f}x  {each}"
        )
    # The API rows wait for squeue (the clock stops when every job is in Slurm): the client
    # column of every row is this process and its children, so it holds those polls too.
    print(f"\nCPU ms per job (median of {args.rounds} rounds)")
    print(f"{'submitter':<42} " + " ".join(f"{k:>9}" for k in (*DAEMONS, "client")))
    for name, runs in cpu.items():
        per_job = {k: statistics.median(r[k] for r in runs) * 1000 / n for k in runs[0]}
        print(f"{name:<42} " + " ".join(f"{per_job[k]:>9.2f}" for k in (*DAEMONS, "client")))


if __name__ == "__main__":
    main()
