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
from adapter.errors import BackendUnavailable
from adapter.settings import Settings, SlurmSettings

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

    backend = app.slurm_backend(settings("auto", tmp_path), LocalRunner())

    assert isinstance(backend, LibslurmBackend) and backend.libslurm is loaded
    assert calls == [tmp_path / "libslurm"]


def test_auto_falls_back_to_the_commands_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Libslurm, "load", loader(MISSING, []))

    with capture_logs() as logs:
        backend = app.slurm_backend(settings("auto", tmp_path), LocalRunner())

    assert type(backend) is CliBackend
    assert [(e["event"], e["log_level"], e["reason"]) for e in logs] == [
        ("jobs are submitted with sbatch and read with squeue", "warning", MISSING.reason)
    ]


def test_libslurm_that_cannot_load_stops_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Libslurm, "load", loader(MISSING, []))

    with pytest.raises(BackendUnavailable, match="install libslurm-dev"):
        app.slurm_backend(settings("libslurm", tmp_path), LocalRunner())


def test_commands_never_try_libslurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(Libslurm, "load", loader(MISSING, calls))

    backend = app.slurm_backend(settings("commands", tmp_path), LocalRunner())

    assert type(backend) is CliBackend and calls == []
