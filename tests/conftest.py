"""Shared test fixtures: the real dev cluster, and its state printed when a cluster test fails."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster import diagnostics, ensure_cluster


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slurm-runner",
        choices=["local", "ssh"],
        default="local",
        help="how tests/e2e's service reaches Slurm: this host's commands and libslurm, or the "
        "ssh runner to the dev controller host with this host's Slurm hidden from it "
        "(make test runs the e2e tests marked ssh_subset that way)",
    )
    parser.addoption(
        "--slurm-release",
        choices=["all", "22.05", "24.11"],
        default="all",
        help="which of tests/slurm's clusters to test: both, the dev cluster's 22.05 alone, or "
        "the 24.11 cluster alone, which needs nothing of the dev cluster",
    )


@pytest.fixture(scope="session")
def dev_cluster() -> None:
    """The dev Slurm cluster, brought up through the dev inventory if it is not running."""
    ensure_cluster()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and item.get_closest_marker("slurm"):
        used: Any = getattr(item, "funcargs", {}).get("cluster")
        if root := getattr(used, "root", ""):
            report.sections.append((f"Slurm {used.name} cluster", diagnostics(root)))
        else:
            report.sections.append(("dev cluster", diagnostics()))
    return report
