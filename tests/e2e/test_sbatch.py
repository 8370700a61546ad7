"""`bai sbatch` end to end: users' own sbatch scripts become bai jobs on the real cluster."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from tests.e2e.sbatch_users import bai_sbatch, job_id, scontrol, user_dir, write
from tests.e2e.service import Api, Service, bai_ok, sdk
from tests.e2e.test_clusters import partition_of

pytestmark = pytest.mark.slurm

SHARE = "sbatchshare"


def manual(n: int) -> dict[str, Any]:
    return {"manual": {"targetNodeCount": n}}


@pytest.fixture
def shared_file(service: Service) -> Path:
    """A file on the share the cluster mounts (dev storage: the share's directory)."""
    root = Path("/var/lib/bai/dev-storage") / SHARE / "data"
    root.mkdir(parents=True, exist_ok=True)
    (root / "hello.txt").write_text("from the share\n")
    return root / "hello.txt"


@pytest.fixture
def sb(alice: Api, workspace: str, shared_file: Path) -> str:
    """alice's low-priority t4x1 cluster of two nodes, mounting a share on every node."""
    alice.cluster(
        workspace,
        "sb",
        {
            "vmSize": "t4x1",
            "vmPriority": "lowpriority",
            "scaleSettings": manual(2),
            "userAccountSettings": {"adminUserName": "alice"},
            "nodeSetup": {
                "mountVolumes": {
                    "azureFileShares": [
                        {
                            "azureFileUrl": f"https://{SHARE}.file.core.windows.net/data",
                            "relativeMountPath": "data",
                        }
                    ]
                }
            },
        },
    )
    return "sb"


def wait_named(
    api: Api, ws: str, name: str, timeout: float = 120, experiment: str = "sbatch"
) -> dict[str, Any]:
    properties: dict[str, Any] = api.wait_job(ws, experiment, name, timeout=timeout)["properties"]
    return properties


def test_a_users_script_runs_as_with_sbatch_and_is_a_bai_job(
    service: Service, alice: Api, workspace: str, sb: str
) -> None:
    home = user_dir("alice")
    write(
        home,
        "hello.sh",
        "#!/bin/bash\n"
        "#SBATCH --job-name=hello -N 1   # two options and a comment\n"
        "#SBATCH --output=out-%x-%j.log --comment='my own comment'\n"
        "\n"
        'echo "args: $*"\n'
        'echo "cwd: $PWD"\n'
        'cat "$AZ_BATCHAI_MOUNT_ROOT/data/hello.txt"\n'
        'echo "gpus: $AZ_BATCHAI_NUM_GPUS"\n'
        "echo oops >&2\n",
        "alice",
    )
    # No token: munge proves alice to the service.
    result = bai_sbatch(
        service, "alice", [f"--partition={workspace}/{sb}", "hello.sh", "a b"], home
    )
    slurm = job_id(result)
    assert result.stdout == f"Submitted batch job {slurm}\n" and result.stderr == ""

    fields = scontrol(slurm)
    assert fields["JobName"] == "hello" and fields["UserId"].startswith("alice(")
    assert fields["Comment"].endswith(" my own comment")
    assert fields["WorkDir"] == str(home)
    # A low-priority cluster: capped at 24 hours, and told of a preemption (USR1 to the shell).
    assert fields["TimeLimit"] == "1-00:00:00"
    done = wait_named(alice, workspace, str(slurm))
    assert done["executionState"] == "succeeded", done
    assert done["executionInfo"]["exitCode"] == 0
    assert done["sbatch"]["slurmJobId"] == slurm
    out = (home / f"out-hello-{slurm}.log").read_text()
    assert out == (f"args: a b\ncwd: {home}\nfrom the share\ngpus: 1\noops\n"), out
    # Listed and streamed like any bai job's output, through the API and the CLI.
    files = alice.files(workspace, "sbatch", str(slurm), "stdouterr", ".")
    assert set(files) == {f"out-hello-{slurm}.log"}
    text = httpx.get(files[f"out-hello-{slurm}.log"]["downloadUrl"], verify=alice.tls).text
    assert text == out
    token = service.token("alice")
    streamed = bai_ok(
        service,
        token,
        alice.rg,
        "job",
        "file",
        "stream",
        "-w",
        workspace,
        "-e",
        "sbatch",
        "-j",
        str(slurm),
        "-f",
        f"out-hello-{slurm}.log",
    )
    assert "from the share" in streamed
    # The official SDK sees it, in experiment `sbatch`, owned by alice.
    client = sdk(service, "alice")
    got = client.jobs.get(alice.rg, workspace, "sbatch", str(slurm))
    assert got.execution_state == "succeeded" and got.tool_type == "custom"


def test_an_array_is_one_bai_job_with_each_tasks_state_and_exit_code(
    service: Service, alice: Api, workspace: str, sb: str
) -> None:
    home = user_dir("alice")
    write(
        home,
        "array.sh",
        "#!/bin/bash\n#SBATCH --array=0-3%2\n"
        '[ "$SLURM_ARRAY_TASK_ID" = 2 ] && exit 3\necho "task $SLURM_ARRAY_TASK_ID"\n',
        "alice",
    )
    result = bai_sbatch(service, "alice", ["-p", sb, "--parsable", "array.sh"], home)
    assert result.returncode == 0, result.stderr
    slurm = int(result.stdout.strip())
    done = wait_named(alice, workspace, str(slurm))
    assert done["executionState"] == "failed"
    assert done["executionInfo"]["exitCode"] == 3
    assert done["executionInfo"]["errors"][0]["code"] == "ArrayTasksFailed"
    tasks = {t["index"]: (t["state"], t["exitCode"]) for t in done["sbatch"]["tasks"]}
    tasks_ids = {t["index"]: t["slurmJobId"] for t in done["sbatch"]["tasks"]}
    assert tasks == {
        0: ("succeeded", 0),
        1: ("succeeded", 0),
        2: ("failed", 3),
        3: ("succeeded", 0),
    }
    for index in (0, 1, 3):
        assert (home / f"slurm-{slurm}_{index}.out").read_text() == f"task {index}\n"
    names = set(alice.files(workspace, "sbatch", str(slurm), "stdouterr", "."))
    assert names == {f"slurm-{slurm}_{i}.out" for i in range(4)}
    shown = bai_ok(
        service,
        service.token("alice"),
        alice.rg,
        "job",
        "show",
        "-w",
        workspace,
        "-e",
        "sbatch",
        "-n",
        str(slurm),
    )
    rows = [line.split("│")[1:-1] for line in shown.splitlines() if line.startswith("│")]
    cells = [[cell.strip() for cell in row] for row in rows]
    assert ["2", "failed", "3", str(tasks_ids[2])] in cells
    assert ["0", "succeeded", "0", str(tasks_ids[0])] in cells
    # An array terminated before any task ran ends, every task failed.
    held = bai_sbatch(service, "alice", ["-p", sb, "--parsable", "--hold", "array.sh"], home)
    name = held.stdout.strip()
    alice.call("POST", alice.job_path(workspace, "sbatch", name, "terminate"))
    ended = wait_named(alice, workspace, name)
    assert ended["executionState"] == "failed", ended
    assert {t["state"] for t in ended["sbatch"]["tasks"]} == {"failed"}
    assert len(ended["sbatch"]["tasks"]) == 4


def test_another_users_cluster_and_jobs_are_as_missing_ones(
    service: Service, alice: Api, workspace: str, sb: str
) -> None:
    home = user_dir("bob")
    write(home, "x.sh", "#!/bin/sh\ntrue\n", "bob")
    theirs = bai_sbatch(service, "bob", ["-p", f"{workspace}/{sb}", "x.sh"], home)
    missing = bai_sbatch(service, "bob", ["-p", f"{workspace}/nosuch", "x.sh"], home)
    assert theirs.returncode == missing.returncode == 1
    named = theirs.stderr.replace(f"{workspace}/{sb}", "W")
    assert named == missing.stderr.replace(f"{workspace}/nosuch", "W")
    assert theirs.stderr.startswith("sbatch: error: invalid partition specified")
    # alice's prepared job is not bob's to confirm.
    alice_home = user_dir("alice")
    write(alice_home, "y.sh", "#!/bin/sh\ntrue\n", "alice")
    slurm = job_id(bai_sbatch(service, "alice", ["-p", sb, "y.sh"], alice_home))
    done = wait_named(alice, workspace, str(slurm))
    bob = httpx.Client(
        base_url=service.url,
        verify=service.tls(),
        headers={"Authorization": "Bearer " + service.token("bob")},
    )
    uid = done["jobOutputDirectoryPathSegment"].rsplit("/", 1)[1]
    for target in (uid, str(uuid.uuid4())):
        answer = bob.post(f"/bai/sbatch/{target}", json={"slurmJobId": slurm})
        assert answer.status_code == 404
        assert (
            json.loads(answer.text)["error"]["message"] == f"bai sbatch job {target} does not exist"
        )
    bob.close()


def test_a_token_of_another_users_submits_nothing(
    service: Service, alice: Api, workspace: str, sb: str
) -> None:
    """sbatch submits as whoever runs it: bob's shell with alice's token would make a job of
    bob's that bai records as alice's. Refused before sbatch runs; nothing stays recorded."""
    home = user_dir("bob")
    write(home, "x.sh", "#!/bin/sh\ntrue\n", "bob")
    result = bai_sbatch(service, "bob", ["-p", sb, "x.sh"], home, token=service.token("alice"))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("sbatch: error: BAI_TOKEN is alice's, but this is bob's")
    listed = alice.call("GET", alice.job_path(workspace, "sbatch", "").rstrip("/")).json()
    assert listed["value"] == []


def test_the_cluster_is_named_three_ways_and_the_experiment_is_the_users_choice(
    service: Service, alice: Api, workspace: str, sb: str
) -> None:
    home = user_dir("alice")
    write(home, "x.sh", "#!/bin/sh\ntrue\n", "alice")
    partition = partition_of(alice, workspace, sb)
    by_partition = bai_sbatch(
        service, "alice", ["-p", partition, "--experiment=tuning", "x.sh"], home
    )
    by_name = bai_sbatch(service, "alice", ["x.sh"], home, env={"SBATCH_PARTITION": sb})
    by_path = bai_sbatch(
        service, "alice", [f"-p{workspace}/{sb}", "x.sh"], home, env={"BAI_EXPERIMENT": "nightly"}
    )
    for result, experiment in ((by_partition, "tuning"), (by_name, "sbatch"), (by_path, "nightly")):
        done = wait_named(alice, workspace, str(job_id(result)), experiment=experiment)
        assert done["executionState"] == "succeeded", done
        assert done["cluster"]["id"].endswith(f"/workspaces/{workspace}/clusters/{sb}")


def test_a_body_too_large_is_a_413_even_for_a_client_that_sends_it_whole(
    service: Service,
) -> None:
    """requests (the SDK's, the fuzzer's) reads the answer only once the body is sent; over
    TLS a 413 sent before that reached it as a broken connection. The service reads and
    drops such a body (up to 16 MiB) first: a script too large for bai gets its message."""
    answer = requests.post(
        f"{service.url}/bai/sbatch",
        data=b" " * (8 * 1024 * 1024),
        headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
        verify=service.ca,
        timeout=60,
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "RequestEntityTooLarge"
