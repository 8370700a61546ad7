"""Which backend the service builds from `slurm.client`. Loading libslurm for real is covered on
the cluster (tests/slurm/test_libslurm.py); here its outcome is given, to test the choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
from structlog.testing import capture_logs

from adapter.api import app
from adapter.backends import CliBackend, LocalRunner
from adapter.backends.libslurm import Libslurm, LibslurmBackend
from adapter.backends.ssh import SshRunner
from adapter.errors import BackendUnavailable
from adapter.settings import Settings, SlurmSettings, SshSettings

MISSING = BackendUnavailable("/usr/include/slurm/slurm.h is missing: install libslurm-dev")


def settings(client: Literal["auto", "libslurm", "commands"], tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path, slurm=SlurmSettings(client=client))


def loader(result: Any, calls: list[Path]) -> Any:
    def load(cache: Path, env: Any) -> Any:
        calls.append(cache)
        if isinstance(result, Exception):
            raise result
        return result

    return load


def test_auto_uses_libslurm_when_it_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = object.__new__(Libslurm)
    calls: list[Path] = []
    loaded.version = "22.05.8"
    monkeypatch.setattr(Libslurm, "load", loader(loaded, calls))

    backend = app.slurm_backend(settings("auto", tmp_path))

    assert isinstance(backend, LibslurmBackend) and backend.libslurm is loaded
    assert type(backend.runner) is LocalRunner
    assert calls == [tmp_path / "libslurm"]


def test_auto_falls_back_to_the_commands_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Libslurm, "load", loader(MISSING, []))

    with capture_logs() as logs:
        backend = app.slurm_backend(settings("auto", tmp_path))

    assert type(backend) is CliBackend
    assert [(e["event"], e["log_level"], e["reason"]) for e in logs] == [
        ("jobs are submitted with sbatch and read with squeue", "warning", MISSING.reason)
    ]


def test_libslurm_that_cannot_load_stops_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Libslurm, "load", loader(MISSING, []))

    with pytest.raises(BackendUnavailable, match="install libslurm-dev"):
        app.slurm_backend(settings("libslurm", tmp_path))


def test_commands_never_try_libslurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(Libslurm, "load", loader(MISSING, calls))

    backend = app.slurm_backend(settings("commands", tmp_path))

    assert type(backend) is CliBackend and calls == []


def test_ssh_runs_the_commands_on_the_named_host_and_never_tries_libslurm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(Libslurm, "load", loader(MISSING, calls))
    ssh = SshSettings(host="slurm-ctl", port=2222, user="bai", known_hosts="/etc/bai/kh")
    chosen = Settings(state_dir=tmp_path, slurm=SlurmSettings(runner="ssh", ssh=ssh))

    with capture_logs() as logs:
        backend = app.slurm_backend(chosen)

    assert type(backend) is CliBackend and calls == []
    assert isinstance(backend.runner, SshRunner)
    assert (backend.runner.where, backend.runner.target.known_hosts) == (
        "bai@slurm-ctl:2222",
        "/etc/bai/kh",
    )
    assert [(e["event"], e["host"]) for e in logs] == [
        ("Slurm's commands run over SSH", "bai@slurm-ctl:2222")
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"runner": "ssh"}, "slurm.ssh.host is empty: name the host"),
        (
            {"runner": "ssh", "client": "libslurm", "ssh": {"host": "h"}},
            "with slurm.runner ssh, use `commands`",
        ),
    ],
)
def test_ssh_settings_that_cannot_work_are_refused_with_the_fix(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        SlurmSettings.model_validate(fields)
