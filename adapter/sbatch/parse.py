"""Reads a `bai sbatch` command as sbatch 22.05 reads it (src/sbatch/opt.c, sbatch.c).

sbatch's order: a first pass over the command line (getopt_long with "+": options up to the
script; --help, --usage, --version act at once), the script (a file, standard input, or --wrap)
and its checks, then the #SBATCH lines, the SBATCH_* variables and the command line again,
each overriding the one before. Errors come as SbatchError in the order sbatch meets them,
with its text and exit code. Pure: the caller gives the environment and the readers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Literal, NamedTuple

from adapter.sbatch import values
from adapter.sbatch.options import (
    BY_NAME,
    BY_SHORT,
    FIRST_PASS,
    TRY_HELP,
    Option,
    SbatchError,
    canonical,
    lookup_long,
)

__all__ = ["ENVIRONMENT", "Given", "Parsed", "SbatchError", "check_script", "parse", "wrap"]

Source = Literal["directive", "environment", "command line"]

# The input variables sbatch 22.05 reads, in the order it reads them (opt.c, env_vars):
# a later one overrides an earlier one. SBATCH_REQ_SWITCH and SBATCH_WAIT4SWITCH set no
# option of the table (sbatch reads them itself); SBATCH_IGNORE_PBS is read before the script.
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("SBATCH_ACCOUNT", "account"),
    ("SBATCH_ARRAY_INX", "array"),
    ("SBATCH_ACCTG_FREQ", "acctg-freq"),
    ("SBATCH_BATCH", "batch"),
    ("SBATCH_BURST_BUFFER", "bb"),
    ("SBATCH_CLUSTER_CONSTRAINT", "cluster-constraint"),
    ("SBATCH_CLUSTERS", "clusters"),
    ("SLURM_CLUSTERS", "clusters"),
    ("SBATCH_CONTAINER", "container"),
    ("SBATCH_CONSTRAINT", "constraint"),
    ("SBATCH_CORE_SPEC", "core-spec"),
    ("SBATCH_CPU_FREQ_REQ", "cpu-freq"),
    ("SBATCH_CPUS_PER_GPU", "cpus-per-gpu"),
    ("SBATCH_DEBUG", "verbose"),
    ("SBATCH_DELAY_BOOT", "delay-boot"),
    ("SBATCH_DISTRIBUTION", "distribution"),
    ("SBATCH_EXCLUSIVE", "exclusive"),
    ("SBATCH_EXPORT", "export"),
    ("SBATCH_GET_USER_ENV", "get-user-env"),
    ("SBATCH_GRES", "gres"),
    ("SBATCH_GRES_FLAGS", "gres-flags"),
    ("SBATCH_GPUS", "gpus"),
    ("SBATCH_GPU_BIND", "gpu-bind"),
    ("SBATCH_GPU_FREQ", "gpu-freq"),
    ("SBATCH_GPUS_PER_NODE", "gpus-per-node"),
    ("SBATCH_GPUS_PER_SOCKET", "gpus-per-socket"),
    ("SBATCH_GPUS_PER_TASK", "gpus-per-task"),
    ("SLURM_HINT", "hint"),
    ("SBATCH_HINT", "hint"),
    ("SBATCH_JOB_NAME", "job-name"),
    ("SBATCH_MEM_BIND", "mem-bind"),
    ("SBATCH_MEM_PER_CPU", "mem-per-cpu"),
    ("SBATCH_MEM_PER_GPU", "mem-per-gpu"),
    ("SBATCH_MEM_PER_NODE", "mem"),
    ("SBATCH_NETWORK", "network"),
    ("SBATCH_NO_KILL", "no-kill"),
    ("SBATCH_NO_REQUEUE", "no-requeue"),
    ("SBATCH_OPEN_MODE", "open-mode"),
    ("SBATCH_OVERCOMMIT", "overcommit"),
    ("SBATCH_PARTITION", "partition"),
    ("SBATCH_POWER", "power"),
    ("SBATCH_PROFILE", "profile"),
    ("SBATCH_QOS", "qos"),
    ("SBATCH_REQUEUE", "requeue"),
    ("SBATCH_RESERVATION", "reservation"),
    ("SBATCH_SIGNAL", "signal"),
    ("SBATCH_SPREAD_JOB", "spread-job"),
    ("SBATCH_THREAD_SPEC", "thread-spec"),
    ("SBATCH_THREADS_PER_CORE", "threads-per-core"),
    ("SBATCH_TIMELIMIT", "time"),
    ("SBATCH_USE_MIN_NODES", "use-min-nodes"),
    ("SBATCH_WAIT", "wait"),
    ("SBATCH_WAIT_ALL_NODES", "wait-all-nodes"),
    ("SBATCH_WCKEY", "wckey"),
    ("SBATCH_ERROR", "error"),
    ("SBATCH_INPUT", "input"),
    ("SBATCH_OUTPUT", "output"),
)
_EARLY_ENVIRONMENT = (("SBATCH_IGNORE_PBS", "ignore-pbs"),)
_SPACE = " \t\n\v\f\r"
_INFORMATIONAL = ("help", "usage", "version")

# Checks sbatch makes while it sets an option (exit 255, or 1 for numbers).
_CHECKS: dict[str, Callable[[str | None], object]] = {
    "cpus-per-gpu": lambda v: values.parse_count(v or "", "--cpus-per-gpu"),
    "cpus-per-task": lambda v: values.parse_count(v or "", "--cpus-per-task"),
    "exclusive": values.parse_exclusive,
    "mail-type": lambda v: values.parse_mail_type(v or ""),
    "mem": lambda v: values.parse_memory(v or "", "--mem"),
    "mem-per-cpu": lambda v: values.parse_memory(v or "", "--mem-per-cpu"),
    "mem-per-gpu": lambda v: values.parse_memory(v or "", "--mem-per-gpu"),
    "nice": values.parse_nice,
    "nodes": lambda v: values.parse_nodes(v or ""),
    "ntasks": lambda v: values.parse_count(v or "", "--ntasks"),
    "ntasks-per-node": lambda v: values.parse_count(v or "", "--ntasks-per-node"),
    "open-mode": lambda v: values.parse_open_mode(v or ""),
    "signal": lambda v: values.parse_signal(v or ""),
    "time": lambda v: values.parse_time(v or "", "--time"),
    "time-min": lambda v: values.parse_time(v or "", "--time-min"),
    # Only SBATCH_DEBUG gives --verbose a value: a level.
    "verbose": lambda v: v is None or values.parse_count(v, "--verbose", positive=False),
    # Options bai passes on, checked here too so that a job sbatch refuses is never recorded.
    "core-spec": lambda v: values.parse_count(v or "", "--core-spec", positive=False),
    "get-user-env": values.parse_get_user_env,
    "no-kill": values.parse_no_kill,
    "tmp": lambda v: values.parse_memory(v or "", "--tmp"),
    "wait-all-nodes": lambda v: values.parse_wait_all_nodes(v or ""),
}


def _count(flag: str) -> Callable[[str | None], object]:
    return lambda value: values.parse_count(value or "", flag)


for _name in (
    "cores-per-socket",
    "mincpus",
    "ntasks-per-core",
    "ntasks-per-gpu",
    "ntasks-per-socket",
    "ntasks-per-tres",
    "sockets-per-node",
    "thread-spec",
    "threads-per-core",
):
    _CHECKS[_name] = _count(f"--{_name}")


class Given(NamedTuple):
    """One option as sbatch met it. Aliases come as the option they stand for."""

    option: Option
    value: str | None  # None for a flag, or an optional argument left out
    source: Source


class Parsed(NamedTuple):
    """What sbatch would submit. After --help, --usage or --version, no script was read."""

    # #SBATCH lines (file order), SBATCH_* variables, then the command line (argv order).
    given: tuple[Given, ...]
    script: str = ""  # undecodable bytes kept as surrogates (surrogateescape)
    script_path: str | None = None  # as given; None for standard input or --wrap
    args: tuple[str, ...] = ()
    # Lines sbatch prints on stderr and goes on (the #SLURM notice).
    warnings: tuple[str, ...] = ()

    def last(self, name: str) -> Given | None:
        """The one that wins: the last of `name` (or of what it is an alias of)."""
        option = BY_NAME.get(name)
        wanted = canonical(option).name if option else name
        for given in reversed(self.given):
            if given.option.name == wanted:
                return given
        return None


class _Getopt:
    """getopt_long over `words` with "+": options up to the first operand or `--`."""

    def __init__(self, words: Sequence[str], *, bai: bool) -> None:
        self.words = words
        self.index = 0  # getopt's optind, without argv[0]
        self.bai = bai

    def __iter__(self) -> Iterator[tuple[Option, str | None]]:
        while self.index < len(self.words):
            word = self.words[self.index]
            if word == "--":
                self.index += 1
                return
            if not word.startswith("-") or word == "-":
                return
            self.index += 1
            if word.startswith("--"):
                yield self._long(word[2:])
            else:
                yield from self._short(word[1:])

    def _next_word(self) -> str | None:
        if self.index >= len(self.words):
            return None
        self.index += 1
        return self.words[self.index - 1]

    def _long(self, text: str) -> tuple[Option, str | None]:
        option = lookup_long(text, bai=self.bai)
        _, equals, value = text.partition("=")
        if equals:
            if option.arg == "none":
                raise SbatchError(
                    f"sbatch: option '--{option.name}' doesn't allow an argument",
                    TRY_HELP,
                    code=255,
                )
            # sbatch takes an empty optional argument for none.
            return option, (value or None) if option.arg == "optional" else value
        if option.arg != "required":
            return option, None
        following = self._next_word()
        if following is None:
            raise SbatchError(
                f"sbatch: option '--{option.name}' requires an argument", TRY_HELP, code=255
            )
        return option, following

    def _short(self, letters: str) -> Iterator[tuple[Option, str | None]]:
        for i, letter in enumerate(letters):
            option = BY_SHORT.get(letter)
            if option is None:
                raise SbatchError(f"sbatch: invalid option -- '{letter}'", TRY_HELP, code=255)
            rest = letters[i + 1 :]
            if option.arg == "none":
                yield option, None
                continue
            if option.arg == "optional":
                yield option, rest or None
                return
            value = rest or self._next_word()
            if value is None:
                raise SbatchError(
                    f"sbatch: option requires an argument -- '{letter}'", TRY_HELP, code=255
                )
            yield option, value
            return


def wrap(command: str) -> str:
    """The script sbatch builds for --wrap."""
    return f"#!/bin/sh\n# This script was created by sbatch --wrap.\n\n{command}\n"


def check_script(data: bytes, name: str, *, code: int = 1) -> str:
    """The script text, after sbatch's checks (its messages do not name the script)."""
    if not data:
        raise SbatchError("sbatch: error: Batch script is empty!", code=code)
    # sbatch looks at a C string here: up to the first NUL.
    if not data.split(b"\0", 1)[0].strip(_SPACE.encode()):
        raise SbatchError("sbatch: error: Batch script contains only whitespace!", code=code)
    if not data.startswith(b"#!"):
        raise SbatchError(
            "sbatch: error: This does not look like a batch script.  The first",
            "sbatch: error: line must start with #! followed by the path to an interpreter.",
            "sbatch: error: For instance: #!/bin/sh",
            code=code,
        )
    if b"\0" in data:
        raise SbatchError(
            "sbatch: error: The Slurm controller does not allow scripts that",
            "sbatch: error: contain a NULL character '\\0'.",
            code=code,
        )
    if b"\r\n" in data:
        raise SbatchError(
            "sbatch: error: Batch script contains DOS line breaks (\\r\\n)",
            "sbatch: error: instead of expected UNIX line breaks (\\n).",
            code=code,
        )
    return data.decode("utf-8", "surrogateescape")


def _lines(script: str) -> list[str]:
    lines = script.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _separator(text: str) -> str | None:
    """`hetjob` (or the old `packjob`) as a word at the start of `text`."""
    for word in ("packjob", "hetjob"):
        if text[: len(word)].lower() == word and text[len(word) : len(word) + 1] in ("", *_SPACE):
            return text[: len(word)]
    return None


def _argument(text: str, file: str, lineno: int) -> tuple[str | None, int]:
    """sbatch's get_argument: the next word of a directive and how much of `text` it used.

    Quotes group, a backslash takes the next character as it is (but never a blank, which
    still ends the word), an unquoted # ends the line. None when no character was kept: an
    empty "" ends the line too, as in sbatch.
    """
    i = len(text) - len(text.lstrip(_SPACE))
    if _separator(text[i:]):
        return None, len(text)
    if text[i : i + 1] == ":":
        raise SbatchError(f"sbatch: fatal: {file}: line {lineno}: Unexpected `:` in [{text}]")
    kept: list[str] = []
    quote = ""
    escaped = False
    while i < len(text) and (quote or text[i] not in _SPACE):
        char = text[i]
        i += 1
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
            continue
        elif quote:
            if char == quote:
                quote = ""
                continue
        elif char in "\"'":
            quote = char
            continue
        elif char == "#":
            i -= 1
            break
        kept.append(char)
    if quote:
        raise SbatchError(f"sbatch: fatal: {file}: line {lineno}: Unmatched `{quote}` in [{text}]")
    return ("".join(kept) if kept else None), i


def _directive_words(script: str, file: str) -> tuple[list[str], bool]:
    """The words of the #SBATCH (and #SLURM) lines, and whether there were #SLURM ones."""
    words: list[str] = []
    slurm = False
    for lineno, line in enumerate(_lines(script), 1):
        if line.startswith("#SBATCH"):
            rest = line[7:]
        elif line.startswith("#SLURM"):
            rest, slurm = line[6:], True
        else:
            first = line.lstrip(_SPACE)[:1]
            if first and first != "#":
                break  # the first command ends the directives
            continue
        rest = rest.lstrip(_SPACE)
        separator = _separator(rest)
        if separator:
            raise SbatchError(
                f"sbatch: error: bai sbatch does not support heterogeneous jobs "
                f"(#SBATCH {separator}, {file} line {lineno}): submit each component as a job"
            )
        while True:
            word, used = _argument(rest, file, lineno)
            if word is None:
                break
            words.append(word)
            rest = rest[used:]
    return words, slurm


def _foreign_line(script: str) -> tuple[str, int] | None:
    """The first #BSUB, else #PBS line that sbatch would translate (it looks that far)."""
    lines = _lines(script)
    for magic in ("#BSUB", "#PBS"):
        commands = 0
        for lineno, line in enumerate(lines, 1):
            if line.startswith(magic):
                return magic, lineno
            commands += not line.startswith("#")
            if commands > 100:
                break
    return None


def _flag_set(value: str) -> bool:
    """sbatch's rule for a flag variable: empty, "yes", or a non-zero number sets it."""
    number, end = values.strtol(value)
    return value == "" or value.lower() == "yes" or (number != 0 and end == len(value))


def _refuse(option: Option) -> None:
    if option.treatment == "refused":
        raise SbatchError(
            f"sbatch: error: bai sbatch does not support --{option.name}: {option.note}"
        )


def _check(option: Option, value: str | None) -> None:
    check = _CHECKS.get(canonical(option).name)
    if check is not None:
        check(value)


def _take(option: Option, value: str | None, source: Source, given: list[Given]) -> None:
    _refuse(option)
    _check(option, value)
    given.append(Given(canonical(option), value, source))


def _exit_code(environ: Mapping[str, str], warnings: list[str]) -> int:
    text = environ.get("SLURM_EXIT_ERROR")
    if text is None:
        return 1
    code = values.strtol(text)[0]
    if code == 0:
        warnings.append("sbatch: error: SLURM_EXIT_ERROR has zero value")
        return 1
    return code % 256


def _read(
    args: list[str], read_stdin: Callable[[], bytes], read_file: Callable[[str], bytes], code: int
) -> tuple[str, str]:
    """The script's text and the name sbatch's messages give it."""
    if not args:
        return check_script(read_stdin(), "stdin", code=code), "stdin"
    path = args[0]
    try:
        data = read_file(path)
    except IsADirectoryError:
        data = b""  # sbatch opens a directory, and reading it gives nothing
    except OSError:
        raise SbatchError(f"sbatch: error: Unable to open file {path}", code=code) from None
    return check_script(data, path, code=code), path.rsplit("/", 1)[-1]


def parse(
    argv: Sequence[str],
    environ: Mapping[str, str],
    read_stdin: Callable[[], bytes],
    read_file: Callable[[str], bytes],
) -> Parsed:
    """What sbatch makes of `argv` (its arguments, without the program name).

    `read_file` gets the script's name as given (sbatch would also look for a bare name on
    PATH); `read_stdin` is called only when there is neither a script nor --wrap.
    """
    warnings: list[str] = []
    try:
        return _parse(argv, environ, read_stdin, read_file, warnings)
    except SbatchError as exc:
        if not warnings:
            raise
        raise SbatchError(*warnings, *exc.lines, code=exc.code) from None


def _parse(
    argv: Sequence[str],
    environ: Mapping[str, str],
    read_stdin: Callable[[], bytes],
    read_file: Callable[[str], bytes],
    warnings: list[str],
) -> Parsed:
    code = _exit_code(environ, warnings)
    # sbatch's first pass drops every ":" (hetjob separators), even among the script's args.
    words = [word for word in argv if word != ":"]
    getopt = _Getopt(words, bai=True)
    command_line: list[tuple[Option, str | None]] = []
    for option, value in getopt:
        command_line.append((option, value))
        # This sbatch sets (and so checks) every command-line option before it reads the
        # script; the second pass sets them again, over the script's and the environment's.
        _check(option, value)
        if option.name in _INFORMATIONAL:
            return Parsed(tuple(Given(canonical(o), v, "command line") for o, v in command_line))
    args = words[getopt.index :]
    if ":" in argv[: _position(argv, getopt.index)]:
        raise SbatchError(
            "sbatch: error: bai sbatch does not support heterogeneous jobs (':' between "
            "components): submit each component as a job"
        )
    wrapped = next((v for o, v in reversed(command_line) if o.name == "wrap"), None)
    if args and wrapped is not None:
        raise SbatchError(
            "sbatch: error: Script arguments not permitted with --wrap option", code=code
        )
    for option, _ in command_line:
        _refuse(option)

    if wrapped is not None:
        script, file = wrap(wrapped), "stdin"
    else:
        script, file = _read(args, read_stdin, read_file, code)

    given: list[Given] = []
    # sbatch hands the --wrap script to its directive reader with a size of 0: it reads no
    # #SBATCH (nor #PBS) line of it.
    scanned = "" if wrapped is not None else script
    directive_words, slurm = _directive_words(scanned, file)
    if slurm:
        warnings.append(
            "sbatch: error: Change from #SLURM to #SBATCH in your script and verify the "
            "options are valid in sbatch"
        )
    directives = _Getopt(directive_words, bai=False)
    for option, value in directives:
        if option.name not in FIRST_PASS:  # sbatch ignores these in a script
            _take(option, value, "directive", given)
    if directives.index < len(directive_words):
        raise SbatchError(
            "sbatch: error: Invalid directive found in batch script: "
            + directive_words[directives.index],
            code=255,
        )

    # SBATCH_IGNORE_PBS is read before the script: it never unsets a directive's --ignore-pbs.
    early = [n for v, n in _EARLY_ENVIRONMENT if v in environ and _flag_set(environ[v])]
    ignored = early + [o.name for o, _ in command_line] + [g.option.name for g in given]
    foreign = None if "ignore-pbs" in ignored else _foreign_line(scanned)
    if foreign:
        raise SbatchError(
            f"sbatch: error: bai sbatch does not translate {foreign[0]} lines ({file} line "
            f"{foreign[1]}): convert them to #SBATCH lines, or add --ignore-pbs to ignore them"
        )
    for name in early:
        _take(BY_NAME[name], None, "environment", given)
    for var, name in ENVIRONMENT:
        if var in environ:
            _environment(BY_NAME[name], environ[var], given)

    given.extend(Given(canonical(o), v, "command line") for o, v in command_line)
    _verify(given, [o.name for o, _ in command_line], environ, code)
    path = None if wrapped is not None or not args else args[0]
    return Parsed(tuple(given), script, path, tuple(args[1:]), tuple(warnings))


def _position(argv: Sequence[str], index: int) -> int:
    """Where in `argv` the `index`-th word that is not ":" is (the end if there is none)."""
    seen = 0
    for position, word in enumerate(argv):
        if word == ":":
            continue
        if seen == index:
            return position
        seen += 1
    return len(argv)


def _environment(option: Option, value: str, given: list[Given]) -> None:
    """One SBATCH_* variable, with sbatch's rule for flags (anything else unsets the flag)."""
    if option.arg == "none":
        if not _flag_set(value):
            given[:] = [g for g in given if g.option.name != option.name]
            return
        # sbatch hands a flag's value on; only --verbose reads it (a level).
        _take(option, value if option.name == "verbose" else None, "environment", given)
    elif option.arg == "optional":
        _take(option, value or None, "environment", given)
    else:
        _take(option, value, "environment", given)


def _verify(
    given: list[Given], command_line: list[str], environ: Mapping[str, str], code: int
) -> None:
    """sbatch's checks once every option is read, and slurmctld's on what bai translates."""
    quiet = "quiet" in command_line
    if "SBATCH_DEBUG" in environ:
        debug = environ["SBATCH_DEBUG"]
        verbose = values.parse_count(debug, "--verbose", positive=False) if _flag_set(debug) else 0
    else:
        verbose = command_line.count("verbose")
    if quiet and verbose:
        raise SbatchError(
            "sbatch: error: don't specify both --verbose (-v) and --quiet (-Q)", code=code
        )
    last = Parsed(tuple(given)).last
    try:
        array, dependency = last("array"), last("dependency")
        if array is not None:
            values.parse_array(array.value or "")
        if dependency is not None:
            values.parse_dependency(dependency.value or "")
    except SbatchError as exc:
        raise SbatchError(*exc.lines, code=code) from None
