"""A stored job for the unit tests, with every field a test does not care about filled in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapter.records import Job

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored_job(uid: str = "u1", **fields: Any) -> Job:
    values: dict[str, Any] = {
        "sub": "s",
        "rg": "rg",
        "ws": "ws",
        "exp": "exp",
        "name": "job1",
        "cluster_uid": "c",
        "owner": "alice",
        "properties": {},
        "secrets": {},
        "script": "#!/bin/bash\n",
        "info": {},
        "created": T0,
        "provisioning_state": "succeeded",
        "provisioning_changed": T0,
        "execution_state": "queued",
        "execution_changed": T0,
    }
    return Job(uid=uid, **{**values, **fields})
