"""Attacks on the key that signs download links."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.service import Service

pytestmark = pytest.mark.slurm

KEY = Path("/var/lib/bai/url-signing.key")


@pytest.fixture
def saved_key(service: Service) -> Iterator[Path]:
    """The real key, put back whatever the test did to it."""
    service.stop()
    copy = KEY.with_name("url-signing.key.saved")
    shutil.copy2(KEY, copy)
    yield copy
    service.stop()
    KEY.unlink(missing_ok=True)
    os.replace(copy, KEY)
    service.start()


@pytest.mark.parametrize("damage", ["empty", "short", "symlink", "readable"])
def test_a_damaged_signing_key_stops_bai_with_the_fix_instead_of_signing_with_it(
    service: Service, saved_key: Path, damage: str
) -> None:
    """Attacks the signing key: an empty one (a crash while writing it, before writes were
    atomic), a short one, one linked elsewhere, one others can read. Links signed with such a
    key could be forged; bai must refuse to start and say what to do."""
    KEY.unlink()
    if damage == "empty":
        KEY.touch(mode=0o600)
    elif damage == "short":
        KEY.write_bytes(b"0123456789")
        KEY.chmod(0o600)
    elif damage == "symlink":
        KEY.symlink_to(saved_key)
    else:
        shutil.copy2(saved_key, KEY)
        KEY.chmod(0o644)
    with pytest.raises(RuntimeError) as failed:
        service.start()
    assert "url-signing.key" in str(failed.value) and "remove it" in str(failed.value)
