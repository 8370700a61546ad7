"""`bai sbatch` on the service side: options checked and translated, and the wrapper script."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from adapter.errors import InvalidRequest
from adapter.jobs.sbatch import Given, checked, sbatch_layout, translate
from adapter.jobs.sbatch_script import SbatchWrapper, render_sbatch_wrapper
from adapter.models.sbatch import SbatchSubmit
from adapter.sbatch.options import BY_NAME

UID = "0b7f5d3e-1c2a-4e5f-9a8b-7c6d5e4f3a2b"


def given(*pairs: tuple[str, str | None], source: str = "command line") -> list[Given]:
    return [Given(BY_NAME[name], value, source) for name, value in pairs]


def words(
    options: list[Given], *, low: bool = False, default_name: str | None = "job.sh"
) -> list[str]:
    return translate(
        options,
        uid=UID,
        partition="part-1",
        low_priority=low,
        cap_minutes=1440,
        grace_seconds=30,
        workdir="/home/alice/run",
        default_name=default_name,
    ).argv


def test_the_users_options_keep_their_order_and_bais_come_last() -> None:
    argv = words(given(("nodes", "2"), ("output", "o-%j.txt"), ("exclusive", None), ("nodes", "1")))
    assert argv == [
        "--job-name=job.sh",
        "--nodes=2",
        "--output=o-%j.txt",
        "--exclusive",
        "--nodes=1",
        "--partition=part-1",
        f"--comment=bai:{UID}",
    ]


def test_the_users_comment_follows_bais_mark_and_their_job_name_stays() -> None:
    argv = words(given(("comment", "my run"), ("job-name", "train")))
    assert f"--comment=bai:{UID} my run" in argv
    assert argv.count("--job-name=train") == 1 and not any("job.sh" in a for a in argv)


def test_options_the_client_acts_on_never_reach_sbatch_from_the_service() -> None:
    argv = words(
        given(("parsable", None), ("wait", None), ("quiet", None), ("partition", "x")),
        default_name=None,
    )
    assert argv == ["--partition=part-1", f"--comment=bai:{UID}"]


@pytest.mark.parametrize(
    ("time", "expect", "capped"),
    [(None, "--time=1440", True), ("2-0", "--time=1440", True), ("30", "--time=30", False)],
)
def test_low_priority_jobs_are_capped_and_hear_of_preemption(
    time: str | None, expect: str, capped: bool
) -> None:
    options = given(("time", time)) if time else []
    tr = translate(
        options,
        uid=UID,
        partition="p",
        low_priority=True,
        cap_minutes=1440,
        grace_seconds=30,
        workdir="/w",
        default_name=None,
    )
    assert [a for a in tr.argv if a.startswith("--time")] == [expect]
    assert tr.capped is capped
    assert "--signal=B:USR1@30" in tr.argv


def test_a_users_own_signal_is_kept_and_dedicated_jobs_get_no_time_of_bais() -> None:
    low = words(given(("signal", "B:TERM@60")), low=True)
    assert "--signal=B:TERM@60" in low and not any(a.startswith("--signal=B:USR1") for a in low)
    dedicated = words([])
    assert not any(a.startswith(("--time", "--signal")) for a in dedicated)


def test_a_relative_chdir_is_the_submit_directorys() -> None:
    tr = translate(
        given(("chdir", "sub/dir")),
        uid=UID,
        partition="p",
        low_priority=False,
        cap_minutes=1,
        grace_seconds=1,
        workdir="/home/alice/run",
        default_name=None,
    )
    assert tr.workdir == "/home/alice/run/sub/dir"


def body(*options: dict[str, object]) -> SbatchSubmit:
    return SbatchSubmit.model_validate(
        {"script": "#!/bin/sh\n", "workdir": "/tmp", "options": list(options)}
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"name": "nodez", "value": "1"}, "sbatch: error: unrecognized option '--nodez'"),
        (
            {"name": "clusters", "value": "a"},
            "sbatch: error: bai sbatch does not support --clusters: ",
        ),
        ({"name": "exclusive", "value": None}, None),
        (
            {"name": "hold", "value": "x"},
            "sbatch: error: option '--hold' doesn't allow an argument",
        ),
        ({"name": "nodes", "value": None}, "sbatch: error: option '--nodes' requires an argument"),
        ({"name": "job-name", "value": "a\nb"}, "sbatch: error: --job-name: the value has a line"),
    ],
)
def test_the_service_checks_every_option_again(
    option: dict[str, object], message: str | None
) -> None:
    if message is None:
        assert checked(body(option))[0].option.name == option["name"]
        return
    with pytest.raises(InvalidRequest) as info:
        checked(body(option))
    assert info.value.message.startswith(message)


def stub(bin_dir: Path, name: str, text: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{text}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_the_wrapper_runs_the_script_with_its_args_and_stdin_and_its_exit_code(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool" / "jobs" / UID
    spool.mkdir(parents=True)
    (spool / "script").write_text('#!/bin/sh\necho "args:$1|$2"\ncat\necho err >&2\nexit 7\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub(bin_dir, "srun", "exit 0")  # node preparation: the e2e tests run the real one
    stub(bin_dir, "scontrol", "echo node-1")
    layout = sbatch_layout("seg", UID, str(tmp_path / "jobs"), str(tmp_path / "spool"))
    (tmp_path / "jobs" / UID).mkdir(parents=True)
    script = render_sbatch_wrapper(
        SbatchWrapper(
            title="rg/ws/sbatch",
            uid=UID,
            layout=layout,
            array=False,
            time_limit_seconds=None,
            capped=False,
            gpus_per_node=1,
            node_addresses={"node-1": "127.0.1.1"},
            args=["a b", "$(touch /tmp/never)"],
            user_volumes=False,
        )
    )
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "SLURM_JOB_NODELIST": "node-1",
        "SLURM_JOB_NUM_NODES": "2",  # node preparation through the srun stub
    }
    run = subprocess.run(
        ["bash", "-c", script],
        input=b"from stdin\n",
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
    )
    assert run.returncode == 7
    assert run.stdout == b"args:a b|$(touch /tmp/never)\nfrom stdin\n"
    assert run.stderr == b"err\n"
    assert not os.path.exists("/tmp/never")
    log = (spool / "execution.log").read_text()
    assert '"event":"start"' in log and '"exit":7,"error":"JobFailed"' in log
    assert (tmp_path / "jobs" / UID / "hostfile").read_text() == "127.0.1.1 slots=1\n"


@pytest.mark.parametrize("forward", [True, False])
def test_signals_to_the_batch_shell_reach_the_users_script(tmp_path: Path, forward: bool) -> None:
    """`--signal=B:USR1@60` or `scancel --batch -s USR1`: the user's script traps it, as in a
    plain sbatch. Where bai alone asked for it (low priority, no --signal of the user's), USR1
    is bai's preemption notice: logged, not passed on."""
    spool = tmp_path / "spool" / "jobs" / UID
    spool.mkdir(parents=True)
    (spool / "script").write_text(
        "#!/bin/bash\n"
        "trap 'echo got USR1; exit 0' USR1\n"
        "trap 'echo got USR2' USR2\n"
        "echo waiting\n"
        "for i in $(seq 100); do sleep 0.05; done\n"
        "echo no USR1 came\n"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub(bin_dir, "srun", "exit 0")
    stub(bin_dir, "scontrol", "echo node-1")
    (tmp_path / "jobs" / UID).mkdir(parents=True)
    script = render_sbatch_wrapper(
        SbatchWrapper(
            title="t",
            uid=UID,
            layout=sbatch_layout("seg", UID, str(tmp_path / "jobs"), str(tmp_path / "spool")),
            array=False,
            time_limit_seconds=None,
            capped=False,
            gpus_per_node=0,
            node_addresses={},
            args=[],
            user_volumes=False,
            forward_usr1=forward,
        )
    )
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "SLURM_JOB_NODELIST": "n",
        "SLURM_JOB_NUM_NODES": "2",
    }
    proc = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, env=env, cwd=tmp_path)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"waiting\n"
    proc.send_signal(signal.SIGUSR2)
    time.sleep(0.2)
    proc.send_signal(signal.SIGUSR1)
    out = proc.stdout.read()
    proc.stdout.close()
    assert proc.wait(timeout=30) == 0
    assert out.startswith(b"got USR2\n")
    assert out.endswith(b"got USR1\n" if forward else b"no USR1 came\n")
    assert '"event":"notice"' in (spool / "execution.log").read_text()


def test_each_task_of_an_array_keeps_its_own_log() -> None:
    layout = sbatch_layout("seg", UID, "/jobs", "/spool")
    script = render_sbatch_wrapper(
        SbatchWrapper(
            title="t",
            uid=UID,
            layout=layout,
            array=True,
            time_limit_seconds=60,
            capped=True,
            gpus_per_node=0,
            node_addresses={},
            args=[],
            user_volumes=False,
        )
    )
    assert f'BAI_EXEC_LOG=/spool/jobs/{UID}"/execution.${{SLURM_ARRAY_TASK_ID}}.log"' in script
    assert "BAI_TIME_LIMIT=60" in script and "BAI_CAPPED=1" in script
    assert subprocess.run(["bash", "-n", "-c", script], check=False).returncode == 0
