"""A stand-in for NVIDIA's dcgm-exporter on the dev cluster, which has no GPUs.

It serves what dcgm-exporter would for each dev node's placeholder GPUs (utilization 0: the
test's jobs only sleep) and, like dcgm-exporter's HPC job mapping, copies a GPU's series once per
job named in `<map dir>/<node>/<gpu>`, adding `hpc_job`. Those files are written by bai's real
Prolog and removed by its Epilog, so the join the dashboard relies on is exercised for real.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GPUS = {"gpu-a100-1": 2, "gpu-a100-2": 2, "gpu-a100-3": 2, "gpu-t4-1": 1, "gpu-t4-2": 1}
MAP_DIR = Path("/var/lib/bai/gpu-job-map")


def render() -> str:
    lines = ["# TYPE DCGM_FI_DEV_GPU_UTIL gauge", "# TYPE DCGM_FI_DEV_FB_USED gauge"]
    for node, count in GPUS.items():
        for gpu in range(count):
            base = (
                f'gpu="{gpu}",UUID="GPU-{node}-{gpu}",device="nvidia{gpu}",'
                f'modelName="placeholder",hostname="{node}"'
            )
            mapping = MAP_DIR / node / str(gpu)
            jobs = mapping.read_text().split() if mapping.exists() else []
            for labels in [base] if not jobs else [f'{base},hpc_job="{j}"' for j in jobs]:
                lines.append(f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} 0")
                lines.append(f"DCGM_FI_DEV_FB_USED{{{labels}}} 0")
    return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = render().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class DcgmStandin:
    """Serves /metrics on 127.0.0.1:<port> from a thread."""

    def __init__(self, port: int) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> DcgmStandin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
