"""How adapter.sbatch.parse reads a command: the behaviours checked on the dev cluster's sbatch.

Expected values come from jobs submitted there (scontrol show job) unless said otherwise;
test_recorded.py compares the error messages byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from adapter.sbatch.parse import Given, Parsed, SbatchError, check_script, parse, wrap

SH = "#!/bin/sh\n"


def run(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    files: Mapping[str, str | bytes] | None = None,
    stdin: bytes | None = None,
) -> Parsed:
    files = dict(files or {})

    def read_file(path: str) -> bytes:
        if path not in files:
            raise FileNotFoundError(path)
        data = files[path]
        return data.encode() if isinstance(data, str) else data

    def read_stdin() -> bytes:
        assert stdin is not None, "standard input read"
        return stdin

    return parse(argv, env or {}, read_stdin, read_file)


def fails(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    files: Mapping[str, str | bytes] | None = None,
    stdin: bytes | None = None,
) -> SbatchError:
    with pytest.raises(SbatchError) as caught:
        run(argv, env, files, stdin)
    return caught.value


def value(parsed: Parsed, name: str) -> str | None:
    given = parsed.last(name)
    assert given is not None, name
    return given.value


def names(parsed: Parsed) -> list[tuple[str, str | None, str]]:
    return [(g.option.name, g.value, g.source) for g in parsed.given]


def test_precedence_directive_environment_command_line() -> None:
    # Job 25219: JobName=cname, TimeLimit=00:09:00, Requeue=0.
    script = SH + "#SBATCH -J dname --no-requeue -t 7\ntrue\n"
    parsed = run(
        ["-J", "cname", "e1.sh"],
        env={"SBATCH_JOB_NAME": "ename", "SBATCH_TIMELIMIT": "9", "HOME": "/x"},
        files={"e1.sh": script},
    )
    assert names(parsed) == [
        ("job-name", "dname", "directive"),
        ("no-requeue", None, "directive"),
        ("time", "7", "directive"),
        ("job-name", "ename", "environment"),
        ("time", "9", "environment"),
        ("job-name", "cname", "command line"),
    ]
    assert value(parsed, "job-name") == "cname"
    assert value(parsed, "time") == "9"
    assert parsed.last("no-requeue") == Given(parsed.given[1].option, None, "directive")
    assert parsed.last("requeue") is None
    assert (parsed.script, parsed.script_path, parsed.args) == (script, "e1.sh", ())


@pytest.mark.parametrize(
    ("setting", "kept"),
    [("", True), ("yes", True), ("YES", True), ("1", True), ("-3", True), ("0", False)]
    + [("no", False), ("2x", False), ("true", False)],
)
def test_flag_variables(setting: str, kept: bool) -> None:
    # Job 25218: SBATCH_NO_REQUEUE=no unset the script's --no-requeue (Requeue=1).
    files = {"s.sh": SH + "#SBATCH --no-requeue\ntrue\n"}
    parsed = run(["s.sh"], env={"SBATCH_NO_REQUEUE": setting}, files=files)
    sources = [g.source for g in parsed.given if g.option.name == "no-requeue"]
    assert sources == (["directive", "environment"] if kept else [])


def test_environment_values() -> None:
    env = {"SBATCH_EXCLUSIVE": "", "SBATCH_DEBUG": "2", "SLURM_HINT": "a", "SBATCH_HINT": "b"}
    parsed = run(["--wrap", "true"], env=env)
    assert names(parsed) == [
        ("verbose", "2", "environment"),  # a level
        ("exclusive", None, "environment"),  # empty: no argument
        ("hint", "a", "environment"),
        ("hint", "b", "environment"),  # SBATCH_HINT is read after SLURM_HINT
        ("wrap", "true", "command line"),
    ]


def test_directive_lines() -> None:
    # Job 25199: JobName=a_b TimeLimit=00:05:00 NumNodes=1 Comment=x#z.
    script = (
        SH + '#SBATCH -J "a_b" -t 5 # comment -N 3\n'
        "#SBATCH --comment=x\\#z\n"
        "  #SBATCH -J ignored\n"
        "# plain\n\n"
        "#SBATCH-N1\n\t\n   # indented comment\n"
        "echo hi\n#SBATCH -J after\n"
    )
    parsed = run(["d1.sh"], files={"d1.sh": script})
    assert names(parsed) == [
        ("job-name", "a_b", "directive"),
        ("time", "5", "directive"),
        ("comment", "x#z", "directive"),
        ("nodes", "1", "directive"),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # Job 25194: JobName=ab cd, Comment=its.
        ("#SBATCH --comment='it''s' -J a'b c'd", [("comment", "its"), ("job-name", "ab cd")]),
        # Job 25195: Comment=x"y, JobName=\a.
        ('#SBATCH --comment="x\\"y" -J "\\\\a"', [("comment", 'x"y'), ("job-name", "\\a")]),
        ("#SBATCH -J 'a # b'#c", [("job-name", "a # b")]),
        # An empty quoted word ends the line, as does "hetjob" after the first word.
        ('#SBATCH -J x "" -t 5', [("job-name", "x")]),
        ("#SBATCH -J x hetjob -t 5", [("job-name", "x")]),
        # sbatch ignores first-pass options in a script (job 25198: JobName=x).
        ("#SBATCH -J x --wrap=foo -v --help --usage -V -Q", [("job-name", "x")]),
        (
            "#SBATCH --exclusive --nice=5 -k",
            [("exclusive", None), ("nice", "5"), ("no-kill", None)],
        ),
    ],
)
def test_directive_words(line: str, expected: list[tuple[str, str | None]]) -> None:
    parsed = run(["s.sh"], files={"s.sh": f"{SH}{line}\ntrue\n"})
    assert [(g.option.name, g.value) for g in parsed.given] == expected


def test_directive_words_run_on_across_lines() -> None:
    # Job 25193: a -J at the end of one line takes the next line's first word (JobName=-N2).
    parsed = run(["s.sh"], files={"s.sh": SH + "#SBATCH -J\n#SBATCH -N2\ntrue\n"})
    assert names(parsed) == [("job-name", "-N2", "directive")]
    error = fails(["s.sh"], files={"s.sh": SH + '#SBATCH -J "" -t 5\n#SBATCH -N 1\ntrue\n'})
    assert error.lines == ("sbatch: error: Invalid directive found in batch script: 1",)


def test_a_backslash_does_not_join_words() -> None:
    error = fails(["s.sh"], files={"s.sh": SH + "#SBATCH --comment=x\\ y\\#z\ntrue\n"})
    assert (error.lines, error.code) == (
        ("sbatch: error: Invalid directive found in batch script: y#z",),
        255,
    )


def test_slurm_lines() -> None:
    parsed = run(["s.sh"], files={"s.sh": SH + "#SLURM -J x\n#SLURM -t 5\ntrue\n"})
    assert names(parsed) == [("job-name", "x", "directive"), ("time", "5", "directive")]
    assert parsed.warnings == (
        "sbatch: error: Change from #SLURM to #SBATCH in your script and verify the options "
        "are valid in sbatch",
    )


@pytest.mark.parametrize("word", ["hetjob", "HETJOB", "packjob"])
def test_hetjob_lines_are_refused(word: str) -> None:
    error = fails(["h.sh"], files={"h.sh": f"{SH}#SBATCH -J x\n#SBATCH {word}\n#SBATCH -J y\n"})
    assert error.lines == (
        f"sbatch: error: bai sbatch does not support heterogeneous jobs (#SBATCH {word}, h.sh "
        "line 3): submit each component as a job",
    )


def test_hetjob_separators_on_the_command_line_are_refused() -> None:
    error = fails(["-N1", ":", "-N2", "s.sh"], files={"s.sh": SH})
    assert "does not support heterogeneous jobs" in error.lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["-N2", "s.sh"],
        ["-N", "2", "s.sh"],
        ["--nodes=2", "s.sh"],
        ["--nodes", "2", "s.sh"],
        ["--nodes=9", "-N", "2", "s.sh"],  # the last wins
        ["-HvN2", "s.sh"],
        ["-HvN", "2", "--", "s.sh"],
    ],
)
def test_command_line_forms(argv: list[str]) -> None:
    parsed = run(argv, files={"s.sh": SH})
    assert value(parsed, "nodes") == "2"
    assert parsed.script_path == "s.sh"


def test_bundled_flags_and_optional_arguments() -> None:
    parsed = run(["-Hvk", "-kset", "--nice", "--exclusive=user", "s.sh", "x"], files={"s.sh": SH})
    assert [(n, v) for n, v, _ in names(parsed)] == [
        ("hold", None),
        ("verbose", None),
        ("no-kill", None),
        ("no-kill", "set"),
        ("nice", None),
        ("exclusive", "user"),
    ]
    # An optional argument is taken only with "=": here "5" is the script.
    parsed = run(["--nice", "5"], files={"5": SH})
    assert (parsed.script_path, value(parsed, "nice")) == ("5", None)


def test_the_script_ends_the_options() -> None:
    parsed = run(["-J", "x", "s.sh", "-N", "2", "--wrap", "y"], files={"s.sh": SH})
    assert names(parsed) == [("job-name", "x", "command line")]
    assert parsed.args == ("-N", "2", "--wrap", "y")
    parsed = run(["--", "-N"], files={"-N": SH})
    assert (parsed.given, parsed.script_path) == ((), "-N")


def test_colons_among_the_script_s_arguments_are_dropped() -> None:
    # Job 25207 ran `a.sh one : two` and printed "args:2:one two".
    assert run(["a.sh", "one", ":", "two"], files={"a.sh": SH}).args == ("one", "two")


def test_standard_input() -> None:
    parsed = run(["-J", "x"], stdin=b"#!/bin/bash\n#SBATCH -t 5\necho\n")
    assert (parsed.script_path, parsed.script) == (None, "#!/bin/bash\n#SBATCH -t 5\necho\n")
    assert value(parsed, "time") == "5"
    error = fails([], stdin=b"#!/bin/sh\n#SBATCH -J 'x\n")
    assert error.lines == ("sbatch: fatal: stdin: line 2: Unmatched `'` in [ 'x]",)


def test_wrap() -> None:
    # scontrol write batch_script of job 25200 (sbatch --wrap 'echo hi').
    assert wrap("echo hi") == "#!/bin/sh\n# This script was created by sbatch --wrap.\n\necho hi\n"
    parsed = run(["--wrap=#SBATCH -J w", "-t", "5"])
    assert parsed.script == wrap("#SBATCH -J w")
    # Job 25556: sbatch reads no #SBATCH line of a --wrap script (JobName=wrap).
    assert names(parsed) == [
        ("wrap", "#SBATCH -J w", "command line"),
        ("time", "5", "command line"),
    ]
    assert (parsed.script_path, parsed.args) == (None, ())
    error = fails(["--wrap", "true", "extra"])
    assert error.lines == ("sbatch: error: Script arguments not permitted with --wrap option",)


@pytest.mark.parametrize("name", ["help", "usage", "version"])
def test_informational_options_stop_at_once(name: str) -> None:
    parsed = run(["-J", "x", f"--{name}", "--foo", "nosuch.sh"])
    assert [g.option.name for g in parsed.given] == ["job-name", name]
    assert (parsed.script, parsed.script_path) == ("", None)
    assert "not a valid node count" in fails(["-N", "abc", f"--{name}"]).lines[0]


@pytest.mark.parametrize(
    ("argv", "env", "script", "name"),
    [
        (["--test-only", "s.sh"], {}, SH, "test-only"),
        (["--te", "s.sh"], {}, SH, "test-only"),
        (["--cluster=a", "s.sh"], {}, SH, "cluster"),
        (["s.sh"], {"SLURM_CLUSTERS": "a"}, SH, "clusters"),
        (["s.sh"], {"SBATCH_CLUSTER_CONSTRAINT": "a"}, SH, "cluster-constraint"),
        (["s.sh"], {}, SH + "#SBATCH -M a\n", "clusters"),
        (["--uid=bob", "s.sh"], {}, SH, "uid"),
        (["--gid=bob", "s.sh"], {}, SH, "gid"),
    ],
)
def test_refused_options(argv: list[str], env: dict[str, str], script: str, name: str) -> None:
    from adapter.sbatch.options import BY_NAME

    error = fails(argv, env=env, files={"s.sh": script})
    assert error.lines == (
        f"sbatch: error: bai sbatch does not support --{name}: {BY_NAME[name].note}",
    )
    assert error.code == 1


PBS = SH + "#SBATCH -J x\n#PBS -N pbsname\ntrue\n"


@pytest.mark.parametrize(
    ("argv", "env", "script", "refused"),
    [
        (["p.sh"], {}, PBS, True),
        (["p.sh"], {}, SH + "#BSUB -J x\n", True),
        (["p.sh"], {}, SH + "echo\n#PBS -N late\n", True),  # sbatch looks past commands
        (["p.sh"], {}, SH + "echo\n" * 101 + "#PBS -N late\n", False),  # but not that far
        (["p.sh"], {}, SH + "  #PBS -N x\n", False),
        # Jobs 25203-25206: each of these makes sbatch ignore the #PBS line.
        (["--ignore-pbs", "p.sh"], {}, PBS, False),
        (["p.sh"], {}, SH + "#SBATCH --ignore-pbs\n#PBS -N x\n", False),
        (["p.sh"], {"SBATCH_IGNORE_PBS": "1"}, PBS, False),
        (["p.sh"], {"SBATCH_IGNORE_PBS": "no"}, PBS, True),
        # SBATCH_IGNORE_PBS is read before the script, so it does not unset a directive.
        (["p.sh"], {"SBATCH_IGNORE_PBS": "no"}, SH + "#SBATCH --ignore-pbs\n#PBS -N x\n", False),
    ],
)
def test_pbs_and_bsub_lines(
    argv: list[str], env: dict[str, str], script: str, refused: bool
) -> None:
    if not refused:
        run(argv, env=env, files={"p.sh": script})
        return
    error = fails(argv, env=env, files={"p.sh": script})
    assert "bai sbatch does not translate #" in error.lines[0]
    assert "convert them to #SBATCH lines, or add --ignore-pbs" in error.lines[0]
    assert fails(["p.sh"], files={"p.sh": PBS}).lines == (
        "sbatch: error: bai sbatch does not translate #PBS lines (p.sh line 3): convert them "
        "to #SBATCH lines, or add --ignore-pbs to ignore them",
    )


def test_experiment_is_bai_s_and_command_line_only() -> None:
    parsed = run(["--experiment=e1", "--experiment", "e2", "s.sh"], files={"s.sh": SH})
    given = parsed.last("experiment")
    assert given is not None and given.option.bai_only and given.value == "e2"
    error = fails(["s.sh"], files={"s.sh": SH + "#SBATCH --experiment=e1\n"})
    assert error.lines[0] == "sbatch: unrecognized option '--experiment=e1'"


def test_aliases_come_as_the_option_they_stand_for() -> None:
    parsed = run(["--tasks-per-node=2", "s.sh"], files={"s.sh": SH})
    assert names(parsed) == [("ntasks-per-node", "2", "command line")]
    assert parsed.last("tasks-per-node") == parsed.last("ntasks-per-node")


def test_script_files() -> None:
    assert fails(["nosuch.sh"]).lines == ("sbatch: error: Unable to open file nosuch.sh",)
    error = fails(["dir"], files={"dir": b""})
    assert error.lines == ("sbatch: error: Batch script is empty!",)

    def directory(path: str) -> bytes:
        raise IsADirectoryError(path)

    with pytest.raises(SbatchError, match="Batch script is empty!"):
        parse(["d"], {}, bytes, directory)
    # Bytes that are not UTF-8 come back as they were.
    raw = b"#!/bin/sh\necho \xff\n"
    script = run(["s.sh"], files={"s.sh": raw}).script
    assert script.encode("utf-8", "surrogateescape") == raw


@pytest.mark.parametrize(
    ("data", "first"),
    [
        (b"", "sbatch: error: Batch script is empty!"),
        (b" \n\t\n", "sbatch: error: Batch script contains only whitespace!"),
        (b"\0#!/bin/sh\n", "sbatch: error: Batch script contains only whitespace!"),
        (b"echo hi\n", "sbatch: error: This does not look like a batch script.  The first"),
        (
            b"#!/bin/sh\necho \0\n",
            "sbatch: error: The Slurm controller does not allow scripts that",
        ),
        (b"#!/bin/sh\r\n", "sbatch: error: Batch script contains DOS line breaks (\\r\\n)"),
    ],
)
def test_check_script(data: bytes, first: str) -> None:
    with pytest.raises(SbatchError) as caught:
        check_script(data, "s.sh", code=3)
    assert (caught.value.lines[0], caught.value.code) == (first, 3)


def test_check_script_accepts() -> None:
    assert check_script(b"#!", "s.sh") == "#!"
    assert check_script(b"#!/bin/sh\recho\n", "s.sh") == "#!/bin/sh\recho\n"  # a lone \r


def test_values_are_checked_in_sbatch_s_order() -> None:
    # sbatch checks the command line before it opens the script, then the script's lines,
    # then the variables; slurmctld's checks come last.
    script = {"s.sh": SH + "#SBATCH -N 2-1 -t abc\n"}
    assert fails(["-t", "x", "nosuch.sh"]).lines == ("sbatch: error: Invalid --time specification",)
    assert "node count" in fails(["-N", "abc", "-t", "x", "nosuch.sh"]).lines[0]
    assert (
        "Maximum node count 1"
        in fails(["s.sh"], env={"SBATCH_TIMELIMIT": "x"}, files=script).lines[0]
    )
    error = fails(["-a", "x", "-d", "foo", "--wrap", "true"], env={"SBATCH_SIGNAL": "x"})
    assert error.lines == ("sbatch: error: Invalid --signal specification",)
    error = fails(["-a", "x", "-d", "foo", "--wrap", "true"], env={"SLURM_EXIT_ERROR": "7"})
    assert (error.lines, error.code) == (
        ("sbatch: error: Batch job submission failed: Invalid job array specification",),
        7,
    )
    # A bad value that a later one overrides is still an error for sbatch's own checks...
    assert fails(
        ["s.sh", "x"], files={"s.sh": SH + "#SBATCH -t abc\n"}, env={"SBATCH_TIMELIMIT": "5"}
    )
    # ...but slurmctld sees only the last.
    run(["-a", "1-3", "s.sh"], files={"s.sh": SH + "#SBATCH -a bad\n"})


def test_verbose_and_quiet() -> None:
    message = "sbatch: error: don't specify both --verbose (-v) and --quiet (-Q)"
    assert fails(["-vQ", "--wrap", "true"]).lines == (message,)
    assert fails(["-Q", "--wrap", "true"], env={"SBATCH_DEBUG": "1"}).lines == (message,)
    # SBATCH_DEBUG sets the level, over the command line's -v.
    run(["-v", "-Q", "--wrap", "true"], env={"SBATCH_DEBUG": "0"})
    run(["-v", "-Q", "--wrap", "true"], env={"SBATCH_DEBUG": ""})


def test_exit_code_variable() -> None:
    error = fails(["e.sh"], files={"e.sh": b""}, env={"SLURM_EXIT_ERROR": "0"})
    assert error.lines == (
        "sbatch: error: SLURM_EXIT_ERROR has zero value",
        "sbatch: error: Batch script is empty!",
    )
    assert error.code == 1
    assert fails(["e.sh"], files={"e.sh": b""}, env={"SLURM_EXIT_ERROR": "-1"}).code == 255
    # Not for getopt's errors, which exit 255 whatever it says.
    assert fails(["--foo"], env={"SLURM_EXIT_ERROR": "3"}).code == 255
