"""GET cluster under concurrent clients: latency, and what it costs slurmctld.

Run after `make dev`, as root:   .venv/bin/python bench/cluster_get.py

For 1, 10 and 50 concurrent clients it measures GET cluster latency (p50/p99) against the dev
service, and counts the RPCs slurmctld served meanwhile (sdiag), minus the RPCs it serves over an
idle stretch of the same length measured in the same run. The baseline is what an adapter that
asks Slurm on every read would cost: `scontrol show partition` per request, timed here too.
The target: slurmctld load does not grow with the number of clients.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import ssl
import subprocess
import time

import httpx
from devapi import API, DevCluster, dev_cluster


def sdiag_rpcs() -> int:
    """Total RPCs slurmctld has served (sum over message types)."""
    out = subprocess.run(["sdiag"], capture_output=True, text=True, check=True).stdout
    section = out.split("Remote Procedure Call statistics by message type", 1)[1]
    section = section.split("Remote Procedure Call statistics by user", 1)[0]
    return sum(int(n) for n in re.findall(r"count:(\d+)", section))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def hammer(
    url: str, headers: dict[str, str], tls: ssl.SSLContext, clients: int, seconds: float
) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(verify=tls, headers=headers, timeout=30) as http:
            while time.monotonic() < deadline:
                started = time.monotonic()
                response = await http.get(url)
                latencies.append(time.monotonic() - started)
                response.raise_for_status()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", default="1,10,50")
    args = parser.parse_args()
    with dev_cluster("t4x1") as c:
        run(c, args.seconds, [int(n) for n in args.clients.split(",")])


def run(c: DevCluster, seconds: float, client_counts: list[int]) -> None:
    """Idle RPC rate, then GET latency and RPCs per client count, then the direct baseline."""
    print(
        f"GET {c.base}/clusters/c for {seconds:g} s per row (dev service, "
        f"reconcile interval from /etc/bai/bai.toml)\n"
    )
    before = sdiag_rpcs()
    time.sleep(seconds)
    idle_rpcs = sdiag_rpcs() - before
    print(f"idle: slurmctld served {idle_rpcs} RPCs in {seconds:g} s with no clients\n")
    print(
        f"{'clients':>7} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'RPCs':>6} {'RPCs above idle':>16} {'per 1000 req':>13}"
    )
    for clients in client_counts:
        before = sdiag_rpcs()
        lat = asyncio.run(hammer(f"{c.base}/clusters/c?{API}", c.headers, c.tls, clients, seconds))
        rpcs = sdiag_rpcs() - before
        extra = max(0, rpcs - idle_rpcs)
        print(
            f"{clients:>7} {len(lat):>9} {len(lat) / seconds:>8.0f} "
            f"{pct(lat, 0.5):>8.1f} {pct(lat, 0.99):>8.1f} {rpcs:>6} {extra:>16} "
            f"{1000 * rpcs / len(lat):>13.1f}"
        )
    # Baseline: a read path that asks Slurm every time.
    samples = []
    before = sdiag_rpcs()
    for _ in range(200):
        started = time.monotonic()
        subprocess.run(
            ["scontrol", "show", "partition", c.partition, "-o"], capture_output=True, check=True
        )
        samples.append(time.monotonic() - started)
    direct_rpcs = sdiag_rpcs() - before
    print(
        f"\nbaseline, `scontrol show partition` per read: p50 {pct(samples, 0.5):.1f} ms, "
        f"p99 {pct(samples, 0.99):.1f} ms, {1000 * direct_rpcs / len(samples):.0f} RPCs "
        "per 1000 reads (and it grows with every client)"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
