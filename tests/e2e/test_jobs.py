"""Jobs end to end: the real service renders, submits and follows real Slurm jobs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster import sh
from tests.e2e.service import Api, CloudError, Service

pytestmark = pytest.mark.slurm

LOGS = {
    "azureFileShares": [
        {"azureFileUrl": "https://jobs.file.core.windows.net/logs", "relativeMountPath": "logs"}
    ]
}


def manual(n: int) -> dict[str, Any]:
    return {"manual": {"targetNodeCount": n}}


@pytest.fixture
def low(alice: Api, workspace: str) -> str:
    """A low-priority t4x1 cluster of two nodes (shared, so never short of capacity)."""
    alice.cluster(
        workspace,
        "low",
        {
            "vmSize": "t4x1",
            "vmPriority": "lowpriority",
            "scaleSettings": manual(2),
            "userAccountSettings": {"adminUserName": "alice"},
        },
    )
    alice.experiment(workspace, "exp")
    return cluster_id(alice, workspace, "low")


def cluster_id(api: Api, ws: str, name: str) -> str:
    return api.path("workspaces", ws, "clusters", name)


def job(cluster: str, command: str, **extra: Any) -> dict[str, Any]:
    return {
        "cluster": {"id": cluster},
        "nodeCount": 1,
        "customToolkitSettings": {"commandLine": command},
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "mountVolumes": LOGS,
        **extra,
    }


def slurm_job(uid_or_id: str) -> str:
    return sh("scontrol", "show", "job", uid_or_id).stdout


@pytest.mark.ssh_subset
def test_a_failing_job_reports_exit_code_error_and_its_output(
    alice: Api, workspace: str, low: str
) -> None:
    alice.job(
        workspace,
        "exp",
        "fails",
        job(
            low,
            "echo to-stdout; echo to-stderr >&2; id -un; exit 3",
            outputDirectories=[
                {
                    "id": "MODEL",
                    "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
                    "pathSuffix": "models",
                }
            ],
        ),
    )

    done = alice.wait_job(workspace, "exp", "fails")["properties"]

    assert done["executionState"] == "failed"
    info = done["executionInfo"]
    assert info["exitCode"] == 3 and [e["code"] for e in info["errors"]] == ["JobFailed"]
    # The message names the file that says why.
    assert info["errors"][0]["message"].endswith("/stdouterr/stderr.txt for why")
    assert info["startTime"] and info["endTime"] and info["preemptionCount"] == 0
    segment = done["jobOutputDirectoryPathSegment"]
    assert segment.endswith(f"/experiments/exp/jobs/fails/{segment.rsplit('/', 1)[1]}")
    files = alice.files(workspace, "exp", "fails")
    assert {"stdout.txt", "stderr.txt", "execution.log"} <= set(files)
    assert alice.read(workspace, "exp", "fails", "stdout.txt") == "to-stdout\nalice\n"
    assert alice.read(workspace, "exp", "fails", "stderr.txt") == "to-stderr\n"
    # The output directory existed before the job ran, owned by the job's user.
    outputs = alice.call(
        "POST",
        alice.job_path(workspace, "exp", "fails", "listOutputFiles"),
        outputdirectoryid="MODEL",
    ).json()["value"]
    assert outputs == []
    model_dir = Path("/var/lib/bai/dev-storage/jobs/logs", segment, "outputs/models")
    assert model_dir.is_dir() and model_dir.stat().st_uid == pwd.getpwnam("alice").pw_uid
    # Download links are signed, expire, support Range and stay inside the job's directory.
    url = files["stdout.txt"]["downloadUrl"]
    ranged = httpx.get(url, headers={"Range": "bytes=3-5"}, verify=alice.tls)
    assert ranged.status_code == 206 and ranged.text == "std"
    assert httpx.get(url.replace("sig=", "sig=0"), verify=alice.tls).status_code == 401
    with pytest.raises(CloudError) as escape:
        alice.files(workspace, "exp", "fails", directory="../../..")
    assert escape.value.status == 400 and escape.value.error["target"] == "directory"


def test_job_preparation_failure_fails_the_job(alice: Api, workspace: str, low: str) -> None:
    alice.job(
        workspace,
        "exp",
        "prep",
        job(low, "echo never", jobPreparation={"commandLine": "echo preparing; exit 4"}),
    )
    done = alice.wait_job(workspace, "exp", "prep")["properties"]
    assert done["executionState"] == "failed" and done["executionInfo"]["exitCode"] == 4
    assert done["executionInfo"]["errors"][0]["code"] == "JobPreparationFailed"
    assert alice.read(workspace, "exp", "prep", "stdout-job_prep.txt") == "preparing\n"
    assert "never" not in alice.read(workspace, "exp", "prep", "stdout.txt")


@pytest.mark.ssh_subset
def test_terminate_running_and_queued_jobs(alice: Api, workspace: str, low: str) -> None:
    alice.job(workspace, "exp", "long", job(low, "sleep 600"))
    alice.wait_job(workspace, "exp", "long", lambda p: p["executionState"] == "running")
    response = alice.call("POST", alice.job_path(workspace, "exp", "long", "terminate"))
    assert response.status_code == 202
    alice.wait_operation(response, 60)
    done = alice.get_job(workspace, "exp", "long")["properties"]
    assert done["executionState"] == "failed"
    assert [e["code"] for e in done["executionInfo"]["errors"]] == ["JobTerminated"]

    # A queued job (behind another on a one-node cluster) never runs once terminated.
    alice.scale(workspace, "low", manual(1))
    alice.job(workspace, "exp", "first", job(low, "sleep 600"))
    alice.wait_job(workspace, "exp", "first", lambda p: p["executionState"] == "running")
    alice.job(workspace, "exp", "waits", job(low, "echo never"))
    queued = alice.get_job(workspace, "exp", "waits")["properties"]
    assert queued["executionState"] == "queued"
    alice.call("POST", alice.job_path(workspace, "exp", "waits", "terminate"))
    gone = alice.wait_job(workspace, "exp", "waits")["properties"]
    assert gone["executionInfo"]["errors"][0]["code"] == "JobTerminated"
    assert gone["executionInfo"]["startTime"] is None
    # Terminating a finished job changes nothing.
    again = alice.call("POST", alice.job_path(workspace, "exp", "waits", "terminate"))
    assert again.status_code == 200
    alice.call("POST", alice.job_path(workspace, "exp", "first", "terminate"))


def test_low_priority_job_is_preempted_requeued_and_reruns(
    alice: Api, workspace: str, low: str
) -> None:
    dedicated = alice.cluster(
        workspace,
        "ded",
        {
            "vmSize": "t4x1",
            "scaleSettings": manual(1),
            "userAccountSettings": {"adminUserName": "alice"},
        },
    )
    assert dedicated["properties"]["currentNodeCount"] == 1
    # Resume from a checkpoint on a rerun, as a preemptible job should.
    alice.job(
        workspace,
        "exp",
        "cheap",
        job(low, '[ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] && echo resumed || sleep 600', nodeCount=2),
    )
    alice.wait_job(workspace, "exp", "cheap", lambda p: p["executionState"] == "running")

    alice.job(workspace, "exp", "urgent", job(cluster_id(alice, workspace, "ded"), "sleep 2"))

    requeued = alice.wait_job(
        workspace,
        "exp",
        "cheap",
        lambda p: p["executionInfo"]["preemptionCount"] == 1 and p["executionState"] == "queued",
    )
    assert requeued["properties"]["executionState"] == "queued"
    assert alice.wait_job(workspace, "exp", "urgent")["properties"]["executionState"] == "succeeded"
    rerun = alice.wait_job(workspace, "exp", "cheap", timeout=180)["properties"]
    assert rerun["executionState"] == "succeeded"
    assert rerun["executionInfo"]["preemptionCount"] == 1
    assert "resumed" in alice.read(workspace, "exp", "cheap", "stdout.txt")
    log = alice.read(workspace, "exp", "cheap", "execution.log")
    assert '"signal":"USR1"' in log and '"run":1' in log


def test_autoscale_grows_from_zero_for_a_held_job(alice: Api, workspace: str, low: str) -> None:
    alice.cluster(
        workspace,
        "auto",
        {
            "vmSize": "t4x1",
            "vmPriority": "lowpriority",
            "scaleSettings": {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 2}},
            "userAccountSettings": {"adminUserName": "alice"},
        },
    )
    alice.job(
        workspace, "exp", "two", job(cluster_id(alice, workspace, "auto"), "hostname", nodeCount=2)
    )
    assert alice.get_job(workspace, "exp", "two")["properties"]["executionState"] == "queued"
    alice.wait_cluster(workspace, "auto", lambda p: p["currentNodeCount"] == 2)
    assert alice.wait_job(workspace, "exp", "two")["properties"]["executionState"] == "succeeded"
    alice.wait_cluster(workspace, "auto", lambda p: p["currentNodeCount"] == 0)


def test_secrets_stay_out_of_responses_logs_scripts_and_slurm(
    alice: Api, workspace: str, low: str, service: Service
) -> None:
    secret = f"s3cret-{uuid.uuid4().hex}"
    # The job checks the value by its digest, so the command itself does not carry it.
    digest = hashlib.sha256(secret.encode()).hexdigest()
    check = f'test "$(printf %s "$API_KEY" | sha256sum | cut -c1-64)" = {digest}'
    created = alice.job(
        workspace,
        "exp",
        "sec",
        job(
            low, check + " && echo key-ok; sleep 5", secrets=[{"name": "API_KEY", "value": secret}]
        ),
    )
    assert created["properties"]["secrets"] == [{"name": "API_KEY", "value": None}]
    running = alice.wait_job(workspace, "exp", "sec", lambda p: p["executionState"] == "running")
    uid = running["properties"]["jobOutputDirectoryPathSegment"].rsplit("/", 1)[1]
    secrets_file = Path(f"/var/lib/bai/spool/jobs/{uid}/secrets.env")
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    assert secrets_file.stat().st_uid == pwd.getpwnam("alice").pw_uid
    slurm_ids = sh("squeue", "-h", "-o", "%i %k").stdout
    slurm_id = next(line.split()[0] for line in slurm_ids.splitlines() if uid in line)
    assert secret not in slurm_job(slurm_id)
    assert secret not in sh("scontrol", "write", "batch_script", slurm_id, "-").stdout

    done = alice.wait_job(workspace, "exp", "sec")["properties"]
    assert done["executionState"] == "succeeded"
    assert alice.read(workspace, "exp", "sec", "stdout.txt") == "key-ok\n"
    assert not secrets_file.exists()  # removed once the job is over
    assert secret not in service.log.read_text()
    assert secret not in str(alice.get_job(workspace, "exp", "sec"))


CORPUS = [
    "two words",
    "it's",
    'say "hi"',
    "'; rm -rf ~",
    "$(touch /tmp/bai-pwned)",
    "`id`",
    "$HOME",
    "line1\nline2",
    "ünïcødé ✓",
    "trailing\\",
]


@pytest.mark.ssh_subset
def test_quoting_corpus_reaches_the_job_literally(
    alice: Api, workspace: str, low: str, shared_dir: Path
) -> None:
    Path("/tmp/bai-pwned").unlink(missing_ok=True)
    names = [f"V{i}" for i in range(len(CORPUS))]
    odd_dir = shared_dir / "it's a dir"
    odd_dir.mkdir(mode=0o777)
    odd_dir.chmod(0o777)
    command = "printf '%s\\0' " + " ".join(f'"${n}"' for n in names)
    alice.job(
        workspace,
        "exp",
        "quotes",
        {
            "cluster": {"id": low},
            "nodeCount": 1,
            "customToolkitSettings": {"commandLine": command},
            "stdOutErrPathPrefix": str(odd_dir),
            "environmentVariables": [
                {"name": n, "value": v} for n, v in zip(names, CORPUS, strict=True)
            ],
        },
    )
    done = alice.wait_job(workspace, "exp", "quotes")["properties"]
    assert done["executionState"] == "succeeded"
    out = (odd_dir / done["jobOutputDirectoryPathSegment"] / "stdouterr/stdout.txt").read_bytes()
    assert out.decode().split("\0")[:-1] == CORPUS
    assert not Path("/tmp/bai-pwned").exists()


@pytest.mark.parametrize("point", ["after_record", "after_submit"])
def test_a_crash_around_sbatch_leaves_exactly_one_slurm_job(
    alice: Api, workspace: str, low: str, service: Service, point: str
) -> None:
    service.restart(BAI_JOBS__CRASH_POINT=point)
    try:
        # after_record dies inside the request; after_submit dies in a submitter, which may run
        # before or after the reply went out. Either way the process must really have crashed.
        with contextlib.suppress(httpx.HTTPError):
            alice.job(workspace, "exp", "crash", job(low, "echo once"))
        assert service.proc is not None
        assert service.proc.wait(timeout=60) == 3, service.tail()
        service.proc = None
    finally:
        service.restart()
    done = alice.wait_job(workspace, "exp", "crash")["properties"]
    assert done["executionState"] == "succeeded"
    uid = done["jobOutputDirectoryPathSegment"].rsplit("/", 1)[1]
    ours = [
        line
        for line in sh("squeue", "-h", "-t", "all", "-o", "%k").stdout.splitlines()
        if line == f"bai:{uid}"
    ]
    assert len(ours) == 1
    assert alice.read(workspace, "exp", "crash", "stdout.txt") == "once\n"


@pytest.fixture
def sftp_share(alice: Api) -> Iterator[dict[str, str]]:
    """An sftp remote on the dev node gpu-a100-1's sshd, reached with alice's own key."""
    home = Path(pwd.getpwnam("alice").pw_dir)
    key = home / ".ssh" / "bai-rclone-test"
    share = home / "rclone-share"
    sh("runuser", "-u", "alice", "--", "mkdir", "-p", "-m", "700", str(home / ".ssh"), str(share))
    if not key.exists():
        sh(
            "runuser",
            "-u",
            "alice",
            "--",
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            str(key),
            check=True,
        )
    public = (key.with_suffix(".pub")).read_text().strip()
    authorized = home / ".ssh" / "authorized_keys"
    lines = authorized.read_text().splitlines() if authorized.exists() else []
    if public not in lines:
        sh(
            "runuser",
            "-u",
            "alice",
            "--",
            "sh",
            "-c",
            f"echo '{public}' >> {authorized} && chmod 600 {authorized}",
            check=True,
        )
    (share / "input.txt").write_text("from the sftp remote\n")
    os.chown(share / "input.txt", pwd.getpwnam("alice").pw_uid, pwd.getpwnam("alice").pw_gid)
    yield {
        "type": "sftp",
        "host": "127.0.1.1",
        "user": "alice",
        "key_file": str(key),
        "shell_type": "unix",
        "md5sum_command": "none",
        "sha1sum_command": "none",
    }
    (share / "output.txt").unlink(missing_ok=True)


def test_a_real_rclone_fuse_mount_as_the_job_user(
    alice: Api, workspace: str, low: str, service: Service, sftp_share: dict[str, str]
) -> None:
    import json

    accounts = {"sftpstore": {"kind": "rclone", "remote": sftp_share}}
    service.restart(BAI_STORAGE_ACCOUNTS=json.dumps(accounts))
    try:
        alice.job(
            workspace,
            "exp",
            "fuse",
            job(
                low,
                'cat "$AZ_BATCHAI_JOB_MOUNT_ROOT/remote/input.txt" && '
                'stat -f -c %T "$AZ_BATCHAI_JOB_MOUNT_ROOT/remote" && '
                'echo "written by $(id -un)" > "$AZ_BATCHAI_JOB_MOUNT_ROOT/remote/output.txt"',
                mountVolumes={
                    **LOGS,
                    "azureBlobFileSystems": [
                        {
                            "accountName": "sftpstore",
                            "containerName": "rclone-share",
                            "relativeMountPath": "remote",
                        }
                    ],
                },
            ),
        )
        done = alice.wait_job(workspace, "exp", "fuse")["properties"]
    finally:
        service.restart()
    assert done["executionState"] == "succeeded", alice.read(workspace, "exp", "fuse", "stderr.txt")
    out = alice.read(workspace, "exp", "fuse", "stdout.txt").splitlines()
    assert out[0] == "from the sftp remote" and out[1].startswith("fuse"), out
    home = Path(pwd.getpwnam("alice").pw_dir)
    assert (home / "rclone-share/output.txt").read_text() == "written by alice\n"
    assert "rclone" not in sh("cat", "/proc/mounts").stdout  # torn down after the job


def test_unknown_storage_and_missing_runtime_are_refused_clearly(
    alice: Api, workspace: str, low: str
) -> None:
    with pytest.raises(CloudError) as bad_path:
        alice.job(
            workspace,
            "exp",
            "bad",
            job(low, "true") | {"stdOutErrPathPrefix": "$NOT_A_BATCHAI_VAR/logs"},
        )
    assert bad_path.value.status == 400
    assert bad_path.value.error["target"] == "properties.stdOutErrPathPrefix"
    with pytest.raises(CloudError) as too_big:
        alice.job(workspace, "exp", "bad", job(low, "true", nodeCount=3))
    assert too_big.value.error["target"] == "properties.nodeCount"
    with pytest.raises(CloudError) as two:
        alice.job(
            workspace,
            "exp",
            "bad",
            job(low, "true") | {"pyTorchSettings": {"pythonScriptFilePath": "/x.py"}},
        )
    assert "exactly one toolkit" in two.value.error["message"]
    with pytest.raises(CloudError) as unapproved:
        alice.job(
            workspace,
            "exp",
            "bad",
            job(low, "true")
            | {
                "mountVolumes": {
                    "unmanagedFileSystems": [
                        {
                            "mountCommand": "mount -t glusterfs 10.0.0.4:/gv0",
                            "relativeMountPath": "g",
                        }
                    ]
                }
            },
        )
    assert "approved" in unapproved.value.error["message"]
    with pytest.raises(CloudError) as missing:
        alice.get_job(workspace, "exp", "bad")
    assert missing.value.status == 404
