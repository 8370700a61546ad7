"""Slurm in-process through libslurm: submitting without an `sbatch` process per job, and
reading jobs without `squeue --json`.

`sbatch` reads the `#SBATCH` lines of a script, fills a `job_desc_msg_t` and calls
`slurm_submit_batch_job`. `Libslurm.submit` does the last two steps in this process, from the
job's `SlurmOptions` as data (a job.json job's and a node's setup job's options never go
through text): no fork, no exec, no reading slurm.conf per job. It runs as root (or SlurmUser)
and names the job's user and group in the request, as slurmctld allows those two to do. Only a
job recorded before bai kept its options comes as a script alone; `read_options`
reads its `#SBATCH` lines, for the options bai's scripts use (anything else is refused, never
ignored).

`Libslurm.jobs` reads the job records with `slurm_load_jobs` (what squeue does before turning
them into JSON) and names states and reasons with Slurm's own functions, so the jobs come out
exactly as `parse_squeue_json` reads them; asked again with the time of the last answer,
slurmctld replies "no change" instead of packing every job it remembers.

The binding is built with cffi's API mode against the installed `<slurm/slurm.h>`: only the
struct fields bai uses are declared, and the C compiler places them, so a Slurm release that
moves fields needs no change here. What else differs between 22.05 and 24.11 (a field's width, a
renamed function, `slurm_get_errno` gone: errors are read from cffi's `ffi.errno`) is bridged
in CDEF and SOURCE; both releases are tested (tests/slurm). Building needs gcc and
`libslurm-dev`; the module is cached under a directory keyed by the Slurm version and this
file's declarations.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import importlib.util
import pwd
import re
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from adapter.backends.base import SlurmJob
from adapter.backends.cli import DEFAULT_INCLUDE, CliBackend
from adapter.backends.runner import Runner, user_session
from adapter.backends.slurm_options import SlurmOptions, check_script
from adapter.backends.slurm_output import is_unavailable, job_from_fields, task_index
from adapter.errors import BackendError, BackendUnavailable

HEADER_DIR = Path("/usr/include/slurm")
# Debian's sbatch links libslurmfull; the plugins slurm_init loads need its symbols in the
# global namespace (libslurm.so alone leaves them undefined).
LIBSLURMFULL = tuple(
    Path(d) / "libslurmfull.so"
    for d in ("/usr/lib/x86_64-linux-gnu/slurm-wlm", "/usr/lib64/slurm", "/usr/lib/slurm")
)
MODULE = "_bai_libslurm"

CDEF = """
typedef int... time_t;
/* 16 bits in 22.05, 32 in 24.11: the compiler gives its size (SOURCE's typedef). */
typedef int... bai_state_reason_t;

typedef struct job_descriptor {
    uint32_t argc;
    char **argv;
    char *comment;
    char **environment;
    uint32_t env_size;
    uint32_t group_id;
    char *name;
    uint32_t nice;
    char *partition;
    char *req_nodes;
    uint16_t requeue;
    char *reservation;
    char *script;
    uint16_t shared;
    char *submit_line;
    uint32_t time_limit;
    char *tres_per_node;
    uint32_t user_id;
    uint16_t warn_flags;
    uint16_t warn_signal;
    uint16_t warn_time;
    char *work_dir;
    uint32_t min_nodes;
    uint32_t max_nodes;
    char *std_err;
    char *std_out;
    ...;
} job_desc_msg_t;

typedef struct job_info {
    uint32_t array_job_id;
    uint32_t array_task_id;
    char *array_task_str;
    char *batch_host;
    char *comment;
    time_t end_time;
    uint32_t exit_code;
    uint32_t job_id;
    uint32_t job_state;
    char *name;
    char *nodes;
    uint32_t num_nodes;
    char *partition;
    uint16_t requeue;
    uint16_t restart_cnt;
    time_t start_time;
    bai_state_reason_t state_reason;
    time_t submit_time;
    uint32_t time_limit;
    uint32_t user_id;
    char *user_name;
    ...;
} slurm_job_info_t;

typedef struct job_info_msg {
    time_t last_update;
    uint32_t record_count;
    slurm_job_info_t *job_array;
    ...;
} job_info_msg_t;

typedef struct submit_response_msg {
    uint32_t job_id;
    char *job_submit_user_msg;
    ...;
} submit_response_msg_t;

static const int SLURM_VERSION_NUMBER;
static const uint32_t NICE_OFFSET;
static const int JOB_SHARED_NONE;
static const int KILL_JOB_BATCH;
static const int SLURM_COMMUNICATIONS_CONNECTION_ERROR;
static const int SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT;
static const int SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR;
static const int SLURMCTLD_COMMUNICATIONS_SHUTDOWN_ERROR;
static const int SLURM_NO_CHANGE_IN_DATA;
static const int SHOW_ALL;

void slurm_init(const char *conf);
void slurm_init_job_desc_msg(job_desc_msg_t *job_desc_msg);
int slurm_submit_batch_job(job_desc_msg_t *job_desc_msg, submit_response_msg_t **resp);
void slurm_free_submit_response_response_msg(submit_response_msg_t *msg);
int slurm_load_jobs(time_t update_time, job_info_msg_t **resp, uint16_t show_flags);
void slurm_free_job_info_msg(job_info_msg_t *msg);
char *slurm_job_state_string(uint32_t state);
char *bai_job_reason_string(int reason);
char *slurm_strerror(int errnum);
"""

SOURCE = """#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
/* Exported by libslurmfull, not declared in slurm.h; squeue --json names states with them.
   The reason's function was renamed (22.05: slurm_job_reason_string; 24.11:
   slurm_job_state_reason_string): both are weak, and whichever the loaded libslurmfull has is
   called (a release with neither is refused when the binding loads). */
typedef __typeof__(((slurm_job_info_t *)0)->state_reason) bai_state_reason_t;
extern char *slurm_job_state_string(uint32_t state);
extern char *slurm_job_reason_string(int reason) __attribute__((weak));
extern char *slurm_job_state_reason_string(int reason) __attribute__((weak));
static char *bai_job_reason_string(int reason)
{
    if (slurm_job_state_reason_string)
        return slurm_job_state_reason_string(reason);
    if (slurm_job_reason_string)
        return slurm_job_reason_string(reason);
    return NULL;
}
"""

# sbatch options bai's scripts use, by every name sbatch accepts for them.
_ALIASES = {
    "-J": "--job-name",
    "-p": "--partition",
    "-N": "--nodes",
    "-t": "--time",
    "-D": "--chdir",
    "-o": "--output",
    "-e": "--error",
    "-w": "--nodelist",
}
_FLAGS = {"--exclusive", "--requeue", "--no-requeue"}
_VALUED = {
    "--job-name",
    "--partition",
    "--nodes",
    "--time",
    "--nice",
    "--comment",
    "--chdir",
    "--output",
    "--error",
    "--gres",
    "--signal",
    "--nodelist",
    "--reservation",
}
_TIME = re.compile(
    r"^(?:(?P<days>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?"
    r"|(?P<a>\d+)(?::(?P<b>\d+)(?::(?P<c>\d+))?)?)$"
)
_SIGNAL = re.compile(r"^B:(?:SIG)?(?P<sig>[A-Z0-9]+)(?:@(?P<time>\d+))?$")


def read_options(script: str, args: Sequence[str] = ()) -> SlurmOptions:
    """The options sbatch would read from the script's `#SBATCH` lines (up to its first
    command), `args` overriding them."""
    words: list[str] = []
    for line in script.splitlines()[1:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break  # sbatch stops reading directives at the first command
        if stripped.startswith("#SBATCH"):
            for word in stripped[len("#SBATCH") :].split():
                if word.startswith("#"):
                    break  # a comment after the options
                if any(c in word for c in "#'\""):
                    raise BackendError(
                        f"in-process submission does not read quoted values or '#' inside "
                        f"them ({word!r}); set slurm.client = 'commands' to use sbatch"
                    )
                words.append(word)
    fields: dict[str, Any] = {}
    _apply([*words, *args], fields)
    return SlurmOptions(**fields)


def _apply(words: Sequence[str], fields: dict[str, Any]) -> None:
    i = 0
    while i < len(words):
        word = words[i]
        option, has_value, value = word.partition("=")
        option = _ALIASES.get(option, option)
        if option in _FLAGS and not has_value:
            _set(option, None, fields)
        elif option in _VALUED:
            if not has_value:
                i += 1
                if i == len(words):
                    raise BackendError(f"sbatch option {option} needs a value")
                value = words[i]
            _set(option, value, fields)
        else:
            raise BackendError(
                f"in-process submission does not handle the sbatch option {word!r}; "
                "set slurm.client = 'commands' to submit through the sbatch command"
            )
        i += 1


# The options whose value is a SlurmOptions field as it is written.
_TEXT_FIELDS = {
    "--job-name": "job_name",
    "--partition": "partition",
    "--comment": "comment",
    "--chdir": "chdir",
    "--output": "output",
    "--error": "error",
    "--gres": "gres",
    "--nodelist": "nodelist",
    "--reservation": "reservation",
}


def _set(option: str, value: str | None, fields: dict[str, Any]) -> None:
    text = value or ""
    match option:
        case "--exclusive":
            fields["exclusive"] = True
        case "--requeue" | "--no-requeue":
            fields["requeue"] = option == "--requeue"
        case "--nodes":
            fields["nodes"] = _int(option, text)
        case "--time":
            fields["time_minutes"] = parse_time(text)
        case "--nice":
            if not re.fullmatch(r"-?\d+", text):
                _bad(option, text)
            fields["nice"] = int(text)
        case "--signal":
            m = _SIGNAL.match(text)
            if not m or not hasattr(signal, f"SIG{m['sig']}"):
                _bad(option, text)
            fields["signal"] = signal.Signals(getattr(signal, f"SIG{m['sig']}")).name[3:]
            fields["signal_seconds"] = int(m["time"] or 60)
        case _:
            fields[_TEXT_FIELDS[option]] = text


def _bad(option: str, value: str) -> NoReturn:
    raise BackendError(f"sbatch option {option} has a value Slurm would not take: {value!r}")


def _int(option: str, value: str) -> int:
    if not value.isdigit():
        _bad(option, value)
    return int(value)


def parse_time(text: str) -> int:
    """Minutes from sbatch's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (seconds round up)."""
    m = _TIME.match(text)
    if not m:
        _bad("--time", text)
    if m["days"] is not None:
        days, hours = int(m["days"]), int(m["dh"])
        minutes, seconds = int(m["dm"] or 0), int(m["ds"] or 0)
    elif m["c"] is not None:
        days, hours, minutes, seconds = 0, int(m["a"]), int(m["b"]), int(m["c"])
    else:
        days, hours, minutes, seconds = 0, 0, int(m["a"]), int(m["b"] or 0)
    return days * 1440 + hours * 60 + minutes + (1 if seconds else 0)


def job_desc_fields(options: SlurmOptions, lib: Any) -> dict[str, str | int]:
    """The `job_desc_msg_t` fields sbatch sets for these options (`lib`: the binding, for
    Slurm's constants); the work directory defaults to the user's home, outside this."""
    fields: dict[str, str | int] = {}
    for attr, value in (
        ("name", options.job_name),
        ("partition", options.partition),
        ("req_nodes", options.nodelist),
        ("reservation", options.reservation),
        ("comment", options.comment),
        ("work_dir", options.chdir),
        ("std_out", options.output),
        ("std_err", options.error),
    ):
        if value is not None:
            fields[attr] = value
    if options.nodes is not None:
        fields["min_nodes"] = fields["max_nodes"] = options.nodes
    if options.time_minutes is not None:
        fields["time_limit"] = options.time_minutes
    if options.nice is not None:
        fields["nice"] = lib.NICE_OFFSET + options.nice
    if options.exclusive:
        fields["shared"] = lib.JOB_SHARED_NONE
    if options.requeue is not None:
        fields["requeue"] = int(options.requeue)
    if options.gres:
        fields["tres_per_node"] = ",".join(f"gres:{g}" for g in options.gres.split(","))
    if options.signal_number is not None:
        fields["warn_signal"] = options.signal_number
        fields["warn_time"] = options.signal_seconds
        fields["warn_flags"] = lib.KILL_JOB_BATCH  # B: the batch shell alone
    return fields


def module_dir(cache: Path) -> Path:
    """Where the built binding lives: one directory per Slurm version and declaration set."""
    version = (HEADER_DIR / "slurm_version.h").read_text() if HEADER_DIR.exists() else "none"
    key = hashlib.sha256((version + CDEF + SOURCE).encode()).hexdigest()[:16]
    return cache / key


def build(cache: Path) -> Path:
    """Compile the binding into `cache` (if it is not there yet); its directory is returned."""
    import cffi  # type: ignore[import-untyped]  # only needed to build

    target = module_dir(cache)
    if any(target.glob(f"{MODULE}.*.so")):
        return target
    if not (HEADER_DIR / "slurm.h").exists():
        raise BackendUnavailable(
            f"{HEADER_DIR}/slurm.h is missing: install Slurm's headers (Debian: apt install "
            "libslurm-dev) for in-process submission, or set slurm.client = 'commands'"
        )
    full = libslurmfull()
    cache.mkdir(parents=True, exist_ok=True)
    # Built aside and renamed into place: two processes building at once cannot mix files.
    work = Path(tempfile.mkdtemp(dir=cache, prefix=".build-"))
    try:
        try:
            ffi = cffi.FFI()
            ffi.cdef(CDEF)
            ffi.set_source(
                MODULE,
                SOURCE,
                libraries=["slurmfull"],
                library_dirs=[str(full.parent)],
                runtime_library_dirs=[str(full.parent)],
            )
            ffi.compile(tmpdir=str(work))
        except Exception as exc:  # the compiler's own message says what is missing
            raise BackendUnavailable(
                f"could not build the libslurm binding ({exc}); install gcc and libslurm-dev, "
                "or set slurm.client = 'commands'"
            ) from exc
        for leftover in work.glob(f"{MODULE}.[co]"):
            leftover.unlink()
        with contextlib.suppress(OSError):  # another process got there first: use theirs
            work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def libslurmfull() -> Path:
    """The library sbatch itself links (Debian and RPM layouts)."""
    for candidate in LIBSLURMFULL:
        if candidate.exists():
            return candidate
    raise BackendUnavailable(
        "libslurmfull.so is not where Slurm's packages put it ("
        + ", ".join(str(c) for c in LIBSLURMFULL)
        + "); set slurm.client = 'commands'"
    )


_load_lock = threading.Lock()


class Libslurm:
    """The loaded binding. One per process: `slurm_init` reads slurm.conf once."""

    _instance: Libslurm | None = None

    def __init__(self, module: Any, env: Mapping[str, str]) -> None:
        self.ffi, self.lib = module.ffi, module.lib
        self.version = _version(self.lib.SLURM_VERSION_NUMBER)
        self._env = dict(env)
        self._host = socket.gethostname().split(".", 1)[0]
        # The last job records slurmctld sent: asked again with their time, it answers "no
        # change" in a few bytes instead of packing every job it remembers.
        self._jobs_lock = threading.Lock()
        self._jobs_msg: Any = None
        self._users: dict[int, str] = {}

    @classmethod
    def load(cls, cache: Path, env: Mapping[str, str]) -> Libslurm:
        """Build (once) and load the binding; BackendUnavailable says what to install."""
        with _load_lock:
            if cls._instance is None:
                target = build(cache)
                try:
                    ctypes.CDLL(str(libslurmfull()), mode=ctypes.RTLD_GLOBAL)
                except OSError as exc:
                    raise BackendUnavailable(f"could not load libslurmfull: {exc}") from exc
                path = next(target.glob(f"{MODULE}.*.so"))
                spec = importlib.util.spec_from_file_location(MODULE, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                module.lib.slurm_init(module.ffi.NULL)
                cls._instance = cls(module, env)
            return cls._instance

    def environment(
        self, user: pwd.struct_passwd, job_name: str | None
    ) -> tuple[dict[str, str], str]:
        """What sbatch run as `user` by bai's runner would send, and the directory it runs in."""
        session, home = user_session(self._env, user)
        named = {"SLURM_JOB_NAME": job_name} if job_name is not None else {}
        return {
            **session,
            "SLURM_PRIO_PROCESS": "0",
            "SLURM_SUBMIT_DIR": home,
            "SLURM_SUBMIT_HOST": self._host,
            "SLURM_UMASK": "0022",
            **named,
        }, home

    def submit(self, options: SlurmOptions, script: str, user: str) -> int:
        """Submit as `user`; blocks until slurmctld answers (run it in a thread)."""
        try:
            entry = pwd.getpwnam(user)
        except KeyError as exc:
            raise BackendUnavailable(f"no Unix user {user!r} on this host") from exc
        ffi, lib = self.ffi, self.lib
        keep: list[Any] = []

        def text(value: str) -> Any:
            buf = ffi.new("char[]", value.encode())
            keep.append(buf)
            return buf

        variables, home = self.environment(entry, options.job_name)
        env = [text(f"{k}={v}") for k, v in variables.items()]
        env_array = ffi.new("char *[]", env)
        desc = ffi.new("job_desc_msg_t *")
        lib.slurm_init_job_desc_msg(desc)
        desc.script = text(script)
        desc.environment, desc.env_size = env_array, len(env)
        desc.user_id, desc.group_id = entry.pw_uid, entry.pw_gid
        fields: dict[str, str | int] = {"work_dir": home, **job_desc_fields(options, lib)}
        for attr, value in fields.items():
            setattr(desc, attr, text(value) if isinstance(value, str) else value)
        response = ffi.new("submit_response_msg_t **")
        if lib.slurm_submit_batch_job(desc, response) != 0:
            raise self._error("slurm_submit_batch_job", ffi.errno)
        try:
            return int(response[0].job_id)
        finally:
            lib.slurm_free_submit_response_response_msg(response[0])

    def jobs(self, partitions: Collection[str]) -> list[SlurmJob]:
        """Every job Slurm remembers in these partitions (one RPC; blocks, run it in a thread)."""
        ffi, lib = self.ffi, self.lib
        wanted = {p.encode() for p in partitions}
        with self._jobs_lock:
            since = self._jobs_msg.last_update if self._jobs_msg is not None else 0
            reply = ffi.new("job_info_msg_t **")
            if lib.slurm_load_jobs(since, reply, lib.SHOW_ALL) == 0:
                if self._jobs_msg is not None:
                    lib.slurm_free_job_info_msg(self._jobs_msg)
                self._jobs_msg = reply[0]
            else:
                code = ffi.errno
                if code != lib.SLURM_NO_CHANGE_IN_DATA or self._jobs_msg is None:
                    raise self._error("slurm_load_jobs", code)
            msg = self._jobs_msg
            records = msg.job_array
            return [
                self._job(records[i])
                for i in range(msg.record_count)
                if records[i].partition != ffi.NULL and ffi.string(records[i].partition) in wanted
            ]

    def _job(self, rec: Any) -> SlurmJob:
        ffi, lib = self.ffi, self.lib

        def text(ptr: Any) -> str:
            return ffi.string(ptr).decode(errors="replace") if ptr != ffi.NULL else ""

        return job_from_fields(
            job_id=rec.job_id,
            name=text(rec.name),
            user=self._user(rec.user_id),
            partition=text(rec.partition),
            state=text(lib.slurm_job_state_string(rec.job_state)),
            state_reason=text(lib.bai_job_reason_string(rec.state_reason)),
            comment=text(rec.comment),
            restart_count=rec.restart_cnt,
            nodes=text(rec.nodes),
            node_count=rec.num_nodes,
            submit_time=rec.submit_time,
            start_time=rec.start_time,
            end_time=rec.end_time,
            time_limit=rec.time_limit,
            exit_code=rec.exit_code,
            requeue=bool(rec.requeue),
            batch_host=text(rec.batch_host),
            array_job_id=rec.array_job_id,
            array_task_id=task_index(rec.array_task_id),
            array_pending=text(rec.array_task_str),
        )

    def _user(self, uid: int) -> str:
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                return str(uid)
        return self._users[uid]

    def _error(self, call: str, code: int) -> BackendError:
        """Slurm's own words for `code`; a controller that cannot be reached is unavailable."""
        lib = self.lib
        message = self.ffi.string(lib.slurm_strerror(code)).decode(errors="replace")
        unreachable = code in (
            lib.SLURM_COMMUNICATIONS_CONNECTION_ERROR,
            lib.SLURM_PROTOCOL_SOCKET_IMPL_TIMEOUT,
        ) or (
            lib.SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR
            <= code
            <= lib.SLURMCTLD_COMMUNICATIONS_SHUTDOWN_ERROR
        )
        error = BackendUnavailable if unreachable or is_unavailable(message) else BackendError
        what = "Batch job submission failed" if call == "slurm_submit_batch_job" else call
        return error(f"{what}: {message}", argv=(call,), returncode=code)


def _version(number: int) -> str:
    return f"{number >> 16}.{(number >> 8) & 0xFF:02d}.{number & 0xFF}"


class LibslurmBackend(CliBackend):
    """`CliBackend` that submits and reads jobs in-process through libslurm; everything else is
    unchanged."""

    def __init__(
        self, runner: Runner, libslurm: Libslurm, *, include_path: str = DEFAULT_INCLUDE
    ) -> None:
        super().__init__(runner, include_path=include_path)
        self.libslurm = libslurm

    async def submit_job(self, options: SlurmOptions, script: str, *, user: str) -> int:
        check_script(options, script)  # what sbatch would read from it is `options`
        return await asyncio.to_thread(self.libslurm.submit, options, script, user)

    async def submit(self, script: str, *, user: str, args: Sequence[str] = ()) -> int:
        options = read_options(script, args)
        return await asyncio.to_thread(self.libslurm.submit, options, script, user)

    async def jobs(self, partitions: Collection[str]) -> list[SlurmJob]:
        return await asyncio.to_thread(self.libslurm.jobs, partitions)
