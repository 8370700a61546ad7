"""Where the suite's service reaches Slurm: this host's commands and libslurm, or, with
`--slurm-runner=ssh` (make test's second e2e run), the dev controller host over SSH, with this
host's Slurm hidden from the service (tests/e2e/service.py, without_local_slurm)."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.service import Service

pytestmark = [pytest.mark.slurm, pytest.mark.ssh_subset]


def test_the_service_reaches_slurm_where_its_runner_says(
    service: Service, request: pytest.FixtureRequest
) -> None:
    assert service.proc is not None
    inside = ["nsenter", "-t", str(service.proc.pid), "-m", "--"]
    sbatch = subprocess.run([*inside, "sbatch", "--version"], capture_output=True, text=True)
    log = service.log.read_text()
    if request.config.getoption("slurm_runner") == "ssh":
        # No Slurm program or library where the service runs; its Slurm is over SSH, as the
        # runner's account, whose connection is open.
        assert sbatch.returncode != 0 and "Permission denied" in sbatch.stderr, sbatch
        library = [*inside, "python3", "-c", "import ctypes; ctypes.CDLL('libslurm.so.38')"]
        assert subprocess.run(library, capture_output=True).returncode != 0
        assert "Slurm's commands run over SSH" in log and "bai@127.0.0.1:2222" in log
        sessions = subprocess.run(["pgrep", "-u", "bai", "-f", "^sshd: bai"], capture_output=True)
        assert sessions.returncode == 0, "no SSH session of the runner's account"
    else:
        assert sbatch.returncode == 0 and sbatch.stdout.startswith("slurm"), sbatch
        assert "jobs are submitted and read in-process" in log
