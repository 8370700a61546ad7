"""The bai-over-FakeSlurm every service test starts from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.services.site import Site, build_site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """alice's workspace `ws` with experiment `exp`, over the dev inventory; no cluster yet."""
    built = build_site(tmp_path)
    built.workspace()
    yield built
    built.svc.store.close()
