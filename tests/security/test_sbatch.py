"""`bai sbatch` attacked: bob against alice in a workspace they share, and alice against root.

The client runs on the user's side and can lie; the service trusts nothing it says. A prepared
job is its owner's alone; a Slurm job only becomes a bai job when Slurm says it is the owner's
and carries the job's mark; the files bai lists are reached through the boundary.
"""

from __future__ import annotations

import os
import pwd
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster import sh
from tests.e2e.sbatch_users import bai_sbatch, job_id, raw_sbatch, user_dir, write
from tests.e2e.service import Api, Service
from tests.e2e.test_clusters import partition_of

pytestmark = pytest.mark.slurm


def prepare(service: Service, user: str, body: dict[str, Any]) -> httpx.Response:
    """POST /bai/sbatch as the client would, without running sbatch afterwards."""
    with httpx.Client(
        base_url=service.url,
        verify=service.tls(),
        headers={"Authorization": f"Bearer {service.token(user)}"},
    ) as http:
        return http.post("/bai/sbatch", json=body)


def confirm(service: Service, user: str, uid: str, slurm_id: int) -> httpx.Response:
    with httpx.Client(
        base_url=service.url,
        verify=service.tls(),
        headers={"Authorization": f"Bearer {service.token(user)}"},
    ) as http:
        return http.post(f"/bai/sbatch/{uid}", json={"slurmJobId": slurm_id})


def test_a_slurm_job_becomes_a_bai_job_only_if_it_is_the_owners_and_carries_its_mark(
    service: Service, alice: Api, bob: Api, workspace: str, cluster: str
) -> None:
    body = {"partition": "sec", "script": "#!/bin/sh\ntrue\n", "workdir": "/tmp"}
    plan = prepare(service, "alice", body)
    assert plan.status_code == 200, plan.text
    uid = plan.json()["uid"]
    partition = partition_of(alice, workspace, "sec")
    home = user_dir("bob")
    # bob (who may use the shared cluster's partition) marks his own job as alice's.
    bobs = raw_sbatch(
        "bob", ["-p", partition, f"--comment=bai:{uid}", "-o", "/dev/null", "--wrap=sleep 5"], home
    )
    bob_job = job_id(bobs)
    # alice's own job without the mark is not it either.
    mine = raw_sbatch(
        "alice", ["-p", partition, "-o", "/dev/null", "--wrap=true"], user_dir("alice")
    )
    for user, slurm in (("alice", bob_job), ("alice", job_id(mine)), ("bob", bob_job)):
        answer = confirm(service, user, uid, slurm)
        assert answer.status_code == (404 if user == "bob" else 400), answer.text
    # Passes of the reconciler later, alice's job has adopted nothing.
    time.sleep(3)
    name = plan.json()["job"]["name"]
    job = alice.get_job(workspace, "sbatch", name)["properties"]
    assert job["sbatch"]["slurmJobId"] is None and job["executionState"] == "queued"
    # Slurm's side holds as well: bob's job got none of alice's plan.
    log = Path("/var/log/bai/node-helper.log").read_text()
    assert f"job {bob_job} prolog: refused: its comment names bai job {uid}, which belongs" in log
    sh("scancel", str(bob_job))


def test_the_output_files_bai_serves_are_the_jobs_users_regular_files_only(
    service: Service, alice: Api, workspace: str, cluster: str
) -> None:
    home = user_dir("alice")
    write(home, "out.sh", "#!/bin/sh\necho mine\necho also >&2\n", "alice")
    args = ["-p", "sec", "-o", "o-%j.txt", "-e", "/tmp/e-%j.txt", "out.sh"]
    slurm = job_id(bai_sbatch(service, "alice", args, home))
    done = alice.wait_job(workspace, "sbatch", str(slurm))["properties"]
    assert done["executionState"] == "succeeded", done
    # stderr went to /tmp, which is not alice's: bai serves nothing from there.
    assert Path(f"/tmp/e-{slurm}.txt").read_text() == "also\n"
    files = alice.files(workspace, "sbatch", str(slurm))
    assert set(files) == {f"o-{slurm}.txt"}
    Path(f"/tmp/e-{slurm}.txt").unlink()
    url = files[f"o-{slurm}.txt"]["downloadUrl"]
    assert httpx.get(url, verify=alice.tls).text == "mine\n"
    # alice swaps her file for a link to root's, then for a FIFO: neither is served.
    out = home / f"o-{slurm}.txt"
    for swap in ("symlink", "fifo"):
        out.unlink()
        if swap == "symlink":
            out.symlink_to("/etc/shadow")
        else:
            os.mkfifo(out)
        entry = pwd.getpwnam("alice")
        os.lchown(out, entry.pw_uid, entry.pw_gid)
        assert alice.files(workspace, "sbatch", str(slurm)) == {}
        answer = httpx.get(url, verify=alice.tls, timeout=10)
        assert answer.status_code == 404 and "root:" not in answer.text
