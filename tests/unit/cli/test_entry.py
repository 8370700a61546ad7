"""The `bai` console script: `bai sbatch` goes to the sbatch client without the CLI's imports,
everything else to the typer CLI; the CLI's start-up leaves the service's modules alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from adapter import __version__, auth, cli, tenancy
from adapter.cli import admin, entry, workspaces

HEAVY = ("typer", "rich", "httpx", "pydantic", "pydantic_settings", "click")

# Stands in for adapter.sbatch.client (the real one is tested on its own): records its argv and
# what was imported by the time it ran.
FAKE_SBATCH = f"""
import json, sys, types
def main(argv):
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
    print(json.dumps({{"argv": argv, "heavy": heavy}}))
    return 7
package = types.ModuleType("adapter.sbatch")
package.__path__ = []
package.client = types.ModuleType("adapter.sbatch.client")
package.client.main = main
sys.modules["adapter.sbatch"] = package
sys.modules["adapter.sbatch.client"] = package.client
from adapter.cli import entry
sys.argv = ["bai", *sys.argv[1:]]
sys.exit(entry.main())
"""


def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter, so that sys.modules shows only what this code imported."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )


def test_sbatch_runs_the_sbatch_client_with_the_rest_of_argv_and_none_of_the_cli() -> None:
    done = python(FAKE_SBATCH, "sbatch", "--wrap", "sleep 1", "-p", "gpu", "sbatch")
    assert done.returncode == 7, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {"argv": ["--wrap", "sleep 1", "-p", "gpu", "sbatch"], "heavy": []}


@pytest.mark.parametrize(
    "argv", [["bai"], ["bai", "version"], ["bai", "job", "sbatch"], ["bai", "--help"]]
)
def test_every_other_command_runs_the_typer_cli(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(cli, "main", lambda: calls.append(sys.argv[1:]))
    monkeypatch.setattr(sys, "argv", argv)
    assert entry.main() == 0
    assert calls == [argv[1:]]


def test_bai_version_through_the_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adapter.cli.entry", "version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, f"{__version__}\n"), done.stderr


def test_the_cli_loads_none_of_the_service_modules() -> None:
    """They are the settings (pydantic-settings), the store and the backends: most of what `bai`
    took to start. Commands that need them import them when they run."""
    done = python("import json, sys, adapter.cli; print(json.dumps(sorted(sys.modules)))")
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    service = {"adapter.settings", "adapter.store", "adapter.auth", "adapter.tenancy"}
    assert not loaded & (service | {"pydantic_settings", "sqlite3", "asyncio"})
    assert not [m for m in loaded if m.startswith(("adapter.backends", "adapter.api"))]


def test_the_cli_copies_of_service_constants_are_the_services() -> None:
    assert admin.DEFAULT_EXPIRY == auth.DEFAULT_EXPIRY
    assert workspaces.SHARE_TAG == tenancy.SHARE_TAG


def test_a_usage_error_is_one_message_and_exit_2_not_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adapter.cli.entry", "no-such-command"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Error: No such command 'no-such-command'." in done.stderr
    assert "--help' for help" in done.stderr
    assert "Traceback" not in done.stderr and "UsageError" not in done.stderr, done.stderr
