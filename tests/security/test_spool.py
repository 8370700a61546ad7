"""Attacks on what root writes into a job's spool, and on the secrets it keeps."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import stat
from pathlib import Path

import httpx
import pytest

from tests.e2e.service import Api, Service
from tests.security.conftest import SPOOL, as_user, fingerprint, job_uid, spec

pytestmark = pytest.mark.slurm

VICTIMS = [Path("/etc/passwd"), Path("/etc/shadow"), Path("/etc")]


def stored_secrets(uid: str) -> str:
    db = sqlite3.connect("file:/var/lib/bai/bai.db?mode=ro", uri=True)
    try:
        row = db.execute("SELECT secrets FROM jobs WHERE uid = ?", (uid,)).fetchone()
    finally:
        db.close()
    return str(row[0])


def test_a_spool_laid_out_again_after_a_crash_mid_write_replaces_planted_links(
    bob: Api, service: Service, workspace: str, cluster: str, outdir: Path
) -> None:
    """Attacks the spool re-layout: bai dies halfway through writing bob's secrets file; bob
    then plants links at secrets.env, plan.json and shared (to /etc/passwd, /etc/shadow and
    /etc) before bai lays his spool out again."""
    secret = "s3cret-value"
    digest = hashlib.sha256(secret.encode()).hexdigest()
    check = f'test "$(printf %s "$API_KEY" | sha256sum | cut -c1-64)" = {digest} && echo key-ok'
    before = {v: fingerprint(v) for v in VICTIMS}
    service.restart(BAI_JOBS__CRASH_POINT="mid_spool_write")
    try:
        with contextlib.suppress(httpx.HTTPError):
            body = spec(cluster, check, outdir, secrets=[{"name": "API_KEY", "value": secret}])
            bob.job(workspace, "exp", "relay", body)
        assert service.proc is not None and service.proc.wait(timeout=60) == 3, service.tail()
        service.proc = None
    finally:
        service.stop()
    spools = [p for p in (SPOOL / "jobs").iterdir() if (p / "plan.json").exists()]
    spool = max(spools, key=lambda p: p.stat().st_mtime)
    temps = [p.name for p in spool.iterdir() if p.name.startswith(".bai-secrets.env.")]
    assert temps and not (spool / "secrets.env").exists()  # really stopped halfway
    assert stat.S_IMODE((spool / temps[0]).stat().st_mode) == 0o600  # even the half file
    as_user("bob", "ln", "-sf", "/etc/passwd", str(spool / "secrets.env"))
    as_user("bob", "ln", "-sf", "/etc/shadow", str(spool / "plan.json"))
    as_user("bob", "ln", "-s", "/etc", str(spool / "shared"))
    service.restart()
    done = bob.wait_job(workspace, "exp", "relay")
    uid = job_uid(done)
    assert spool.name == uid
    assert done["properties"]["executionState"] == "succeeded", done["properties"]
    assert bob.read(workspace, "exp", "relay", "stdout.txt") == "key-ok\n"
    assert {v: fingerprint(v) for v in VICTIMS} == before  # nothing of root's changed hands
    assert not [p for p in spool.iterdir() if p.name.startswith(".bai-")]
    assert stored_secrets(uid) == "{}"  # the clear value left the store after submission
    assert secret not in service.log.read_text()


def test_plans_are_roots_alone_and_secrets_leave_the_store_once_submitted(
    bob: Api, workspace: str, cluster: str, outdir: Path
) -> None:
    """Attacks the root plans (operator mount options, identity) and the stored secrets."""
    body = spec(cluster, "sleep 4", outdir, secrets=[{"name": "TOKEN", "value": "t0ken"}])
    uid = job_uid(bob.job(workspace, "exp", "plan", body))
    bob.wait_job(workspace, "exp", "plan", lambda p: p["executionState"] == "running")
    plans = SPOOL / "plans"
    plan = plans / f"{uid}.json"
    assert stat.S_IMODE(plans.stat().st_mode) == 0o700 and plans.stat().st_uid == 0
    assert stat.S_IMODE(plan.stat().st_mode) == 0o600 and plan.stat().st_uid == 0
    assert as_user("bob", "cat", str(plan), check=False).returncode != 0
    secrets_file = SPOOL / "jobs" / uid / "secrets.env"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert secrets_file.stat().st_uid == int(as_user("bob", "id", "-u").stdout)
    assert stored_secrets(uid) == "{}"
    done = bob.wait_job(workspace, "exp", "plan")["properties"]
    assert done["executionState"] == "succeeded"
    assert not plan.exists() and not secrets_file.exists()  # gone with the job


def test_setup_task_secrets_are_removed_once_the_nodes_are_set_up(
    alice: Api, workspace: str
) -> None:
    """Attacks the setup task's secrets file, which stayed on shared storage forever."""
    alice.cluster(
        workspace,
        "setup",
        {
            "vmSize": "t4x1",
            "vmPriority": "lowpriority",
            "scaleSettings": {"manual": {"targetNodeCount": 1}},
            "userAccountSettings": {"adminUserName": "alice"},
            "nodeSetup": {
                "setupTask": {
                    "commandLine": 'test -n "$SETUP_TOKEN"',
                    "secrets": [{"name": "SETUP_TOKEN", "value": "s3tup"}],
                    "stdOutErrPathPrefix": "/tmp",
                }
            },
        },
    )
    alice.wait_cluster(workspace, "setup", lambda p: p["nodeStateCounts"]["idleNodeCount"] == 1)
    assert (SPOOL / "clusters").is_dir()  # the setup task did write its secrets there
    assert list((SPOOL / "clusters").glob("*/setup-secrets.env")) == []
