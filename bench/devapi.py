"""What the benchmarks need from `make dev`: the service's address and admin token (.dev/env),
and a throw-away workspace with one low-priority cluster, removed afterwards."""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass
class DevCluster:
    http: httpx.Client  # authenticated as the admin, verifying the dev certificate
    tls: ssl.SSLContext
    headers: dict[str, str]
    base: str  # the workspace's URL
    cluster_id: str
    partition: str  # the Slurm partition behind the cluster


@contextlib.contextmanager
def dev_cluster(vm_size: str) -> Iterator[DevCluster]:
    """Workspace `bench` in a new resource group with a one-node low-priority cluster `c`.

    Afterwards every job in its partition is cancelled and the workspace is deleted.
    """
    e = env()
    tls = ssl.create_default_context(cafile=e["BAI_CA"])
    headers = {"Authorization": f"Bearer {e['BAI_TOKEN']}"}
    rg = f"bench-{uuid.uuid4().hex[:6]}"
    base = (
        f"{e['BAI_URL']}/subscriptions/{SUB}/resourceGroups/{rg}/providers/"
        "Microsoft.BatchAI/workspaces/bench"
    )
    http = httpx.Client(verify=tls, headers=headers, timeout=60)
    try:
        http.put(f"{base}?{API}", json={"location": "bench"}).raise_for_status()
        cluster = http.put(
            f"{base}/clusters/c?{API}",
            json={
                "properties": {
                    "vmSize": vm_size,
                    "vmPriority": "lowpriority",
                    "scaleSettings": {"manual": {"targetNodeCount": 1}},
                    "userAccountSettings": {"adminUserName": "alice"},
                }
            },
        )
        cluster.raise_for_status()
        partition = next(
            line.split()[0].split("=", 1)[1]
            for line in Path("/etc/slurm/bai/partitions.conf").read_text().splitlines()
            if line.startswith("PartitionName=c-")
        )
        try:
            yield DevCluster(http, tls, headers, base, cluster.json()["id"], partition)
        finally:
            subprocess.run(["scancel", "-p", partition], check=False)
    finally:
        http.delete(f"{base}?{API}")
        http.close()
