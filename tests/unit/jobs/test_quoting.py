"""Hostile values through every way a request reaches the script, read back by a real bash."""

from __future__ import annotations

import asyncio
import os
import pwd
import stat
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from adapter.backends.base import SlurmBackend
from adapter.clusters.service import ClusterService
from adapter.errors import InvalidRequest
from adapter.jobs.launch import Runtime, launch_for
from adapter.jobs.script import render_job_script
from adapter.jobs.service import JobService
from adapter.metrics.events import MetricEvents
from adapter.scripts.shell import directive, expand_path, export, quote
from adapter.settings import ClusterSettings, Settings
from adapter.store import Store
from tests.unit.jobs.factories import stored_job
from tests.unit.jobs.test_golden import UID, custom, layout


def corpus(marker_dir: Path) -> list[str]:
    """Values a user may put in environmentVariables or secrets; each must come back as is."""
    m = marker_dir
    return [
        "",
        "plain",
        "with spaces  and\ttabs",
        "it's",
        'say "hi"',
        "'\"'\"'",
        "'; rm -rf ~",
        '"; rm -rf ~; "',
        "$(id)",
        f"$(touch {m}/dollar-paren)",
        f"`touch {m}/backtick`",
        f"'$(touch {m}/quote-dollar-paren)'",
        f'"; touch {m}/double-quote; "',
        f"'; touch {m}/single-quote; '",
        f"x > {m}/redirect",
        "$HOME",
        "${HOME}",
        "~",
        "~root/x",
        "$((6 * 7))",
        "$'\\n'",
        "*",
        "!!",
        "-n",
        "%s%n\\0",
        "line1\nline2",
        "line1\n$(id)\n",
        "\r\n",
        "\n",
        "héllo wörld ✓ 日本語 🚀 e\u0301",
        "ends with a backslash\\",
        "\\",
        "\\'",
        "a\\nb",
    ]


def side_effect_free(marker_dir: Path, home: Path) -> None:
    assert sorted(p.name for p in marker_dir.iterdir()) == []
    assert (home / "keep").read_text() == "still here"


def run_bash(script: str, workdir: Path, home: Path) -> list[bytes]:
    """Run `script` with bash in an empty directory; its stdout split on NUL."""
    path = workdir / "script.sh"
    path.write_text(script)
    result = subprocess.run(
        ["bash", str(path)],
        cwd=workdir,
        env={"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    out = result.stdout
    assert out.endswith(b"\0")
    return out[:-1].split(b"\0")


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    markers, home, work = tmp_path / "markers", tmp_path / "home", tmp_path / "work"
    for d in (markers, home, work):
        d.mkdir()
    (home / "keep").write_text("still here")
    return markers, home, work


def environment_block(script: str) -> str:
    lines = script.split("\n")  # not splitlines(): a value may hold a lone \r
    start = lines.index("# -- environment")
    end = lines.index("# -- helpers")
    return "\n".join(lines[start + 1 : end]) + "\n"


def secrets_text(secrets: dict[str, str]) -> str:
    """The secrets file exactly as JobService._write_spool writes it, into a real spool."""
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        os.mkdir(f"{tmp}/jobs", 0o711)
        service = JobService(
            cast(Store, None),
            cast(SlurmBackend, None),
            Settings(clusters=ClusterSettings(spool_dir=tmp)),
            cast(ClusterService, None),
            cast(MetricEvents, None),
        )
        lay = layout().__dict__ | {"spool": f"{tmp}/jobs/{UID}"}
        info: dict[str, Any] = {"layout": lay, "volumes": []}
        job = stored_job(UID, secrets=secrets, script="", info=info)
        asyncio.run(service.write_spool(job))
        path = Path(lay["spool"], "secrets.env")
        st = path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, pwd.getpwnam("alice").pw_uid)
        text = path.read_bytes().decode()  # not read_text(): it would translate a \r
    expected = "".join(f"{export(k, v)}\n" for k, v in secrets.items())
    assert text == expected
    return text


def test_environment_and_secrets_come_back_byte_for_byte(dirs: tuple[Path, Path, Path]) -> None:
    markers, home, work = dirs
    values = corpus(markers)
    env = [(f"BAI_Q{i}", v) for i, v in enumerate(values)]
    secrets = {f"BAI_S{i}": v for i, v in enumerate(values)}
    secrets_file = work / "secrets.env"
    secrets_file.write_text(secrets_text(secrets))
    job = replace(custom(), environment=env, secrets_file=str(secrets_file))
    block = environment_block(render_job_script(job))
    assert f"set -a; . {quote(str(secrets_file))}; set +a" in block
    names = [n for n, _ in env] + list(secrets)
    probe = block + "printf '%s\\0' " + " ".join(f'"${n}"' for n in names) + "\n"
    got = run_bash(probe, work, home)
    assert got == [v.encode() for v in values + values]
    side_effect_free(markers, home)


def test_secrets_are_exported_to_child_processes(dirs: tuple[Path, Path, Path]) -> None:
    markers, home, work = dirs
    values = corpus(markers)
    secrets_file = work / "secrets.env"
    secrets_file.write_text(secrets_text({f"S{i}": v for i, v in enumerate(values)}))
    job = replace(custom(), environment=[], secrets_file=str(secrets_file))
    names = " ".join(f'"$S{i}"' for i in range(len(values)))
    probe = environment_block(render_job_script(job)) + (
        f"bash -c 'printf \"%s\\0\" {names}'\n"  # a child bash: only exported values reach it
    )
    assert run_bash(probe, work, home) == [v.encode() for v in values]
    side_effect_free(markers, home)


def test_export_line_is_one_assignment_per_value(dirs: tuple[Path, Path, Path]) -> None:
    markers, home, work = dirs
    for i, value in enumerate(corpus(markers)):
        line = export(f"V{i}", value)
        assert line.startswith(f"export V{i}=")
        probe = f"{line}\nprintf '%s\\0' \"$V{i}\"\n"
        assert run_bash(probe, work, home) == [value.encode()]
    side_effect_free(markers, home)


@pytest.mark.parametrize("name", ["1BAD", "A-B", "A B", "A;B", "$(id)", "", "A\n", "é"])
def test_export_refuses_names_bash_would_not_take(name: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        export(name, "x")
    assert info.value.target == name


@pytest.mark.parametrize(
    "value",
    ["my job", "it's", 'say "hi"', "'; rm -rf ~", "$(id)", "`id`", "$HOME", "日本語", "x\\"],
)
def test_job_name_directive_stays_one_sbatch_line(value: str) -> None:
    line = directive("--job-name", value)
    assert line == f"#SBATCH --job-name={value}"
    assert len(line.splitlines()) == 1
    script = render_job_script(replace(custom(), name=value))
    assert script.splitlines()[2] == line
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("value", ["job\n", "a\nb", "a\r", "\r\n#SBATCH --uid=0"])
def test_job_name_directive_refuses_line_breaks(value: str) -> None:
    with pytest.raises(InvalidRequest, match="line break"):
        directive("--job-name", value)
    with pytest.raises(InvalidRequest, match="line break"):
        render_job_script(replace(custom(), name=value))


def test_title_with_a_line_break_stays_in_the_header_comment() -> None:
    # Resource names are checked with `^...$`, which lets one trailing newline through.
    script = render_job_script(replace(custom(), title="rg\n/ws/exp/job1"))
    assert script.splitlines()[1] == f"# bai job rg /ws/exp/job1 ({UID}); rendered by bai"
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


VARIABLES = {
    "AZ_BATCHAI_JOB_MOUNT_ROOT": "/mnt/jobs/u/mounts",
    "AZ_BATCHAI_MOUNT_ROOT": "/mnt/jobs/u/cluster-mounts",
}


@pytest.mark.parametrize(
    ("template", "expanded"),
    [
        ("$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/train.py", "/mnt/jobs/u/mounts/scripts/train.py"),
        ("${AZ_BATCHAI_JOB_MOUNT_ROOT}/a b/it's.py", "/mnt/jobs/u/mounts/a b/it's.py"),
        ("$AZ_BATCHAI_MOUNT_ROOT/x;y", "/mnt/jobs/u/cluster-mounts/x;y"),
        ('/abs/日本語/"q"', '/abs/日本語/"q"'),
        ("/ends/with\\", "/ends/with\\"),
    ],
)
def test_expand_path_accepts_known_variables(template: str, expanded: str) -> None:
    assert expand_path(template, VARIABLES, field="f.path") == expanded


@pytest.mark.parametrize(
    "template",
    [
        "$(id)/x",
        "/x/$(id)",
        "/x/`id`",
        "$HOME/x",
        "${HOME}/x",
        "$AZ_BATCHAI_JOB_MOUNT_ROOTX/x",
        "/x/$",
        "/x/${AZ_BATCHAI_JOB_MOUNT_ROOT",
        "/x/\n/y",
        "relative/path",
        "~/x",
    ],
)
def test_expand_path_refuses_commands_unknown_variables_and_relative_paths(
    template: str,
) -> None:
    with pytest.raises(InvalidRequest) as info:
        expand_path(template, VARIABLES, field="properties.x.pythonScriptFilePath")
    assert info.value.target == "properties.x.pythonScriptFilePath"


def test_unknown_variable_message_lists_the_known_ones() -> None:
    with pytest.raises(InvalidRequest, match=r"\$HOME.*\$AZ_BATCHAI_JOB_MOUNT_ROOT"):
        expand_path("$HOME/x", VARIABLES, field="f")


def test_script_path_reaches_the_interpreter_as_one_argument(
    dirs: tuple[Path, Path, Path],
) -> None:
    """A hostile but legal script path goes through two levels of quoting (bash -c) intact."""
    markers, home, work = dirs
    interpreter = work / "fake python"
    interpreter.write_text("#!/bin/bash\nprintf '%s\\0' \"$@\"\n")
    interpreter.chmod(0o755)
    name = 'it\'s "my" ;|&<>(){}*?[] ~ # 日本語 \\'
    settings = {
        "pythonScriptFilePath": f"$AZ_BATCHAI_JOB_MOUNT_ROOT/{name}",
        "pythonInterpreterPath": str(interpreter),
        "commandLineArgs": "--flag 'two words'",
    }
    launch = launch_for(
        "caffe",
        settings,
        nodes=1,
        gpus=0,
        variables=VARIABLES,
        runtime=Runtime(srun_mpi="none"),
        container=False,
        image=False,
        field="properties.caffeSettings",
    )
    probe = 'bai_run() { "$@"; }\n' + "\n".join(launch.lines) + "\n"
    got = run_bash(probe, work, home)
    expected = [f"/mnt/jobs/u/mounts/{name}", "--flag", "two words"]
    assert got == [e.encode() for e in expected]
    side_effect_free(markers, home)
