"""Attacks on the options of the kernel mounts root makes for a job (nfs, cifs)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.service import Api, CloudError, Service
from tests.security.conftest import SPOOL, job_uid, spec

pytestmark = pytest.mark.slurm

# The operator's floor: its own options, for an NFS server of the site.
ACCOUNTS = {"nas": {"kind": "nfs", "server": "127.0.0.1", "export": "/srv", "options": "vers=4.1"}}


@pytest.fixture
def nas(service: Service) -> Iterator[None]:
    service.restart(BAI_STORAGE_ACCOUNTS=json.dumps(ACCOUNTS))
    yield
    service.restart()


def volume(options: str) -> dict[str, Any]:
    return {
        "azureBlobFileSystems": [
            {
                "accountName": "nas",
                "containerName": "data",
                "relativeMountPath": "data",
                "mountOptions": options,
            }
        ]
    }


# A request's options, and the one each refusal must name.
HOSTILE = [
    ("suid", "suid"),
    ("dev", "dev"),
    ("rw,suid,exec", "suid"),
    ("vers=3", "vers"),
    ("sec=none", "sec"),
    ("uid=0", "uid"),
    ("nolock,ro", "nolock"),
    ("rsize=1024,evil=1", "evil"),
    ("ro,actimeo=1;id", "actimeo=1;id"),
]


def test_hostile_mount_options_are_refused_naming_the_option_and_the_volume(
    bob: Api, workspace: str, cluster: str, outdir: Path, nas: None
) -> None:
    """Attacks the root Prolog's mount: options that would replace the operator's floor, turn
    setuid or devices back on, change the transport, or smuggle in something else."""
    field = "properties.mountVolumes.azureBlobFileSystems[0].mountOptions"
    for options, refused in HOSTILE:
        body = spec(cluster, "true", outdir, mountVolumes=volume(options))
        with pytest.raises(CloudError) as error:
            bob.job(workspace, "exp", "opts", body)
        message = error.value.error["message"]
        assert error.value.status == 400, (options, message)
        assert f"'{refused}'" in message and "azureBlobFileSystems[0] (data)" in message, message
        assert error.value.error["target"] == field
    nothing = bob.call("GET", bob.job_path(workspace, "exp", "opts"), ok=(404,))
    assert nothing.status_code == 404  # refused requests left no job behind


def test_allowed_options_are_added_to_the_floor_with_nosuid_nodev_in_the_root_plan(
    bob: Api, workspace: str, cluster: str, outdir: Path, nas: None
) -> None:
    """What the Prolog will mount with: the operator's options, nosuid,nodev, then the
    request's additions, read from the root plan the Prolog acts on."""
    body = spec(cluster, "true", outdir, mountVolumes=volume("ro,noatime"))
    uid = job_uid(bob.job(workspace, "exp", "ok", body))
    plan = SPOOL / "plans" / f"{uid}.json"
    deadline = time.monotonic() + 30
    while not plan.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    [mount] = json.loads(plan.read_text())["volumes"]
    assert mount["options"] == "vers=4.1,nosuid,nodev,ro,noatime"
    assert mount["source"] == "127.0.0.1:/srv/data"
    # There is no NFS server here: the job fails on the mount, naming the volume.
    done = bob.wait_job(workspace, "exp", "ok")["properties"]
    errors = done["executionInfo"]["errors"]
    assert [e["code"] for e in errors] == ["VolumeMountFailed"], errors
    assert "azureBlobFileSystems[0] (data)" in errors[0]["message"]
