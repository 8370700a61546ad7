"""The bai service under test: a real `bai serve` over HTTPS on the dev cluster, and a client."""

from __future__ import annotations

import json
import os
import shlex
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.cluster import sh

CONFIG = "/etc/bai/bai.toml"
STATE_DIR = Path("/var/lib/bai")
API = "2018-05-01"
# Short timers so scaling, preemption and setup are seen within seconds.
TEST_ENV = {
    "BAI_CONFIG": CONFIG,
    "BAI_PORT": "8444",
    "BAI_CLUSTERS__RECONCILE_INTERVAL_SECONDS": "1",
    "BAI_CLUSTERS__AUTOSCALE_IDLE_SECONDS": "4",
    "BAI_CLUSTERS__LOWPRIORITY_GRACE_TIME_SECONDS": "3",
    # In-process submission, as in the dev service, without the fallback to sbatch: a binding
    # that cannot be built fails the suite instead of going unnoticed.
    "BAI_SLURM__CLIENT": "libslurm",
    # The suite's admin tokens are root's (the dev service allows no system account).
    "BAI_AUTH__ALLOW_SYSTEM_USERS": '["root"]',
    # MPI toolkits start under srun's PMIx plugin, chainer's under mpirun (tests/e2e/test_mpi.py).
    "BAI_JOBS__MPIRUN_TOOLKITS": '["chainer"]',
}


# `pytest --slurm-runner=ssh`: the service runs Slurm's commands over SSH on the dev controller
# host (the ssh runner, as the account the roles made: /etc/bai/bai.toml's [slurm.ssh]), and
# reads jobs with the commands there, not libslurm.
SSH_ENV = {"BAI_SLURM__RUNNER": "ssh", "BAI_SLURM__CLIENT": "commands"}
# Where this host's own Slurm is, besides the client programs (dpkg -L slurm-client).
LOCAL_SLURM = ["/usr/lib/*/libslurm*.so*", "/usr/lib/*/slurm-wlm", "/usr/include/slurm"]


def without_local_slurm() -> list[str]:
    """The argv prefix that runs a program in a mount namespace of its own where this host's
    Slurm is gone: each client program and library covered by /dev/null (so running or loading
    it fails), each directory by an empty tmpfs. Whatever Slurm the program reaches, it reaches
    through the ssh runner."""
    listed = subprocess.run(["dpkg", "-L", "slurm-client"], capture_output=True, text=True)
    files = [f for f in listed.stdout.split() if f.startswith("/usr/bin/") and Path(f).is_file()]
    dirs = []
    for pattern in LOCAL_SLURM:
        for path in sorted(Path("/").glob(pattern.lstrip("/"))):
            if path.is_dir():
                dirs.append(str(path))
            elif path.is_file() and not path.is_symlink():
                files.append(str(path))
    assert "/usr/bin/sbatch" in files, listed.stderr
    hide = [f"mount --bind /dev/null {shlex.quote(f)}" for f in files]
    hide += [f"mount -t tmpfs -o ro,size=4k none {shlex.quote(d)}" for d in dirs]
    script = " && ".join([*hide, 'exec "$@"'])
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh"]


@dataclass
class Service:
    """A running `bai serve` (under `prefix`, with `base` settings below any restart's)."""

    url: str
    ca: str
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    prefix: list[str] = field(default_factory=list)
    base: dict[str, str] = field(default_factory=lambda: dict(TEST_ENV))

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def start(self) -> None:
        port = self.url.rsplit(":", 1)[1]
        if f":{port} " in sh("ss", "-Hltn").stdout:
            raise RuntimeError(f"port {port} is taken (a stale `bai serve`?); stop it first")
        bai = Path(sys.executable).parent / "bai"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*self.prefix, str(bai), "serve"],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"bai serve exited:\n{self.tail()}")
            try:
                httpx.get(self.url + "/", verify=self.tls(), timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"bai serve did not answer:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self, **env: str) -> None:
        """Restart with these settings on top of the test ones (empty: back to them)."""
        self.stop()
        self.env = {**self.base, **env}
        self.start()

    def token(self, user: str, admin: bool = False) -> str:
        key = f"{user}:{admin}"
        if key not in self.tokens:
            argv = [str(Path(sys.executable).parent / "bai"), "token", "create", "--user", user]
            # Short-lived and labelled: `bai token revoke --label e2e` clears a run's tokens.
            argv += ["--label", "e2e", "--expires", "1d"]
            out = subprocess.run(
                argv + (["--admin"] if admin else []),
                env={**os.environ, **self.env},
                capture_output=True,
                text=True,
                check=True,
            )
            self.tokens[key] = out.stdout.strip()
        return self.tokens[key]

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text().splitlines()[-lines:]) if self.log.exists() else ""


class CloudError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.error = body.get("error", {})
        super().__init__(f"HTTP {status}: {self.error}")


class Api:
    """A thin client of the REST API for tests, scoped to one resource group."""

    def __init__(
        self,
        service: Service,
        token: str,
        rg: str | None = None,
        sub: str = "00000000-0000-0000-0000-000000000000",
    ) -> None:
        self.tls = service.tls()
        self.http = httpx.Client(
            base_url=service.url,
            verify=service.tls(),
            timeout=60,
            headers={"Authorization": f"Bearer {token}"},
        )
        self.sub = sub
        self.rg = rg or f"t-{uuid.uuid4().hex[:8]}"

    def close(self) -> None:
        self.http.close()

    def path(self, *parts: str) -> str:
        base = f"/subscriptions/{self.sub}/resourceGroups/{self.rg}/providers/Microsoft.BatchAI"
        return "/".join([base, *parts])

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        ok: tuple[int, ...] = (200, 202),
        **params: Any,
    ) -> httpx.Response:
        response = self.http.request(method, path, json=body, params={"api-version": API, **params})
        if response.status_code not in ok:
            raise CloudError(response.status_code, response.json() if response.content else {})
        return response

    def call_json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """call()'s answer, which is a JSON object."""
        data: dict[str, Any] = self.call(method, path, body).json()
        return data

    def workspace(self, ws: str) -> dict[str, Any]:
        return self.call_json("PUT", self.path("workspaces", ws), {"location": "test"})

    def cluster(self, ws: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
        return self.call_json(
            "PUT", self.path("workspaces", ws, "clusters", name), {"properties": properties}
        )

    def get_cluster(self, ws: str, name: str) -> dict[str, Any]:
        return self.call_json("GET", self.path("workspaces", ws, "clusters", name))

    def scale(self, ws: str, name: str, scale: dict[str, Any]) -> dict[str, Any]:
        return self.call_json(
            "PATCH",
            self.path("workspaces", ws, "clusters", name),
            {"properties": {"scaleSettings": scale}},
        )

    def delete_cluster(self, ws: str, name: str, timeout: float = 120) -> None:
        response = self.call("DELETE", self.path("workspaces", ws, "clusters", name))
        if response.status_code == 202:
            self.wait_operation(response, timeout)

    def delete_workspace(self, ws: str, timeout: float = 180) -> None:
        response = self.call("DELETE", self.path("workspaces", ws), ok=(200, 202, 404))
        if response.status_code == 202:
            self.wait_operation(response, timeout)

    def wait_operation(self, response: httpx.Response, timeout: float) -> None:
        status_url = response.headers["Azure-AsyncOperation"]
        deadline = time.monotonic() + timeout
        while True:
            status = self.http.get(status_url).json()["status"]
            if status != "InProgress":
                assert status == "Succeeded", status
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"operation still in progress after {timeout} s")
            time.sleep(0.5)

    def wait_cluster(
        self, ws: str, name: str, cond: Callable[[dict[str, Any]], bool], timeout: float = 90
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            cluster = self.get_cluster(ws, name)
            if cond(cluster["properties"]):
                return cluster
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"cluster {name} never reached the state: {cluster['properties']}"
                )
            time.sleep(0.5)

    def experiment(self, ws: str, exp: str) -> dict[str, Any]:
        return self.call_json("PUT", self.path("workspaces", ws, "experiments", exp))

    def job_path(self, ws: str, exp: str, name: str, *more: str) -> str:
        return self.path("workspaces", ws, "experiments", exp, "jobs", name, *more)

    def job(self, ws: str, exp: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
        return self.call_json("PUT", self.job_path(ws, exp, name), {"properties": properties})

    def get_job(self, ws: str, exp: str, name: str) -> dict[str, Any]:
        return self.call_json("GET", self.job_path(ws, exp, name))

    def wait_job(
        self,
        ws: str,
        exp: str,
        name: str,
        cond: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 120,
    ) -> dict[str, Any]:
        """Poll until `cond(properties)` (default: the job finished)."""
        done = cond or (lambda p: p["executionState"] in {"succeeded", "failed"})
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(ws, exp, name)
            if done(job["properties"]):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {name} never reached the state: {job['properties']}")
            time.sleep(0.5)

    def files(
        self, ws: str, exp: str, name: str, directory_id: str = "stdouterr", directory: str = "."
    ) -> dict[str, dict[str, Any]]:
        """listOutputFiles as name -> entry."""
        items = self.call(
            "POST",
            self.job_path(ws, exp, name, "listOutputFiles"),
            outputdirectoryid=directory_id,
            directory=directory,
        ).json()["value"]
        return {i["name"]: i for i in items}

    def read(
        self,
        ws: str,
        exp: str,
        name: str,
        file: str,
        directory_id: str = "stdouterr",
        directory: str = ".",
    ) -> str:
        url = self.files(ws, exp, name, directory_id, directory)[file]["downloadUrl"]
        response = httpx.get(url, verify=self.tls)
        response.raise_for_status()
        return response.text

    def free_dedicated(self, node_type: str) -> int:
        """Nodes of a type no dedicated cluster owns (from the usages API)."""
        items = self.call(
            "GET", f"/subscriptions/{self.sub}/providers/Microsoft.BatchAI/locations/onprem/usages"
        ).json()["value"]
        usage = next(u for u in items if u["name"]["value"] == f"{node_type} dedicated nodes")
        return int(usage["limit"] - usage["currentValue"])


def counts(props: dict[str, Any]) -> dict[str, int]:
    """nodeStateCounts without the NodeCount suffix."""
    return {k.removesuffix("NodeCount"): v for k, v in props["nodeStateCounts"].items()}


def sdk(service: Service, user: str) -> Any:
    """The official SDK (7.0.0) as `user` (a non-admin token), against the service."""
    from azure.core.credentials import AccessToken
    from azure.mgmt.batchai import BatchAI

    class Token:
        def get_token(self, *scopes: str, **kw: Any) -> AccessToken:
            return AccessToken(service.token(user), 2**31)

    return BatchAI(
        Token(),
        "00000000-0000-0000-0000-000000000000",
        base_url=service.url,
        connection_verify=service.ca,
        polling_interval=0.2,
        retry_total=0,
    )


def bai(service: Service, token: str, rg: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The `bai` CLI of this venv against the service under test, as the token's user."""
    env = {
        **os.environ,
        "BAI_URL": service.url,
        "BAI_TOKEN": token,
        "BAI_CA": service.ca,
        "BAI_RESOURCE_GROUP": rg,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "bai"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def bai_ok(service: Service, token: str, rg: str, *args: str) -> Any:
    """`bai` that must succeed: its parsed JSON with `-o json`, else its text."""
    result = bai(service, token, rg, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if "json" in args else result.stdout
