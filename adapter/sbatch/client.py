"""`bai sbatch`: sbatch's command line, and the job becomes a bai job.

It reads the script and options as sbatch does (adapter.sbatch.parse), sends them to the bai
service, which records the job and answers with bai's wrapper script and the options for
sbatch's command line, then runs the real `sbatch` as the calling user, in this directory and
this environment, and prints what sbatch prints. Standard library only, imported lazily by
`bai`'s entry point: it runs once per submission, and its start-up is part of the cost.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from adapter.sbatch.parse import Parsed, SbatchError, parse

# Options sbatch answers without submitting: bai hands them to the real sbatch.
INFORMATIONAL = ("help", "usage", "version")
SBATCH = "sbatch"


def _read_stdin() -> bytes:
    return sys.stdin.buffer.read()


def _read_file(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _err(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def request_body(parsed: Parsed, environ: Mapping[str, str], workdir: str) -> dict[str, Any]:
    """What the service is sent: everything sbatch would read, bai's own choices apart."""
    partition = parsed.last("partition")
    experiment = parsed.last("experiment")
    return {
        "partition": partition.value if partition else None,
        "experiment": experiment.value if experiment else environ.get("BAI_EXPERIMENT") or None,
        "options": [
            {"name": g.option.name, "value": g.value, "source": g.source}
            for g in parsed.given
            if g.option.name not in ("partition", "experiment")
        ],
        "script": parsed.script,
        "scriptName": parsed.script_path,
        "args": list(parsed.args),
        "workdir": workdir,
    }


def main(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        parsed = parse(argv, environ, _read_stdin, _read_file)
    except SbatchError as exc:
        _err(*exc.lines)
        return exc.code
    _err(*parsed.warnings)
    for name in INFORMATIONAL:
        if parsed.last(name) is not None:
            os.execvp(SBATCH, [SBATCH, f"--{name}"])  # sbatch's own answer, and its exit code
    from adapter.sbatch.remote import ServiceError, connect

    try:
        service = connect(environ)
        plan = service.post("/bai/sbatch", request_body(parsed, environ, os.getcwd()))
    except ServiceError as exc:
        _err(*exc.lines)
        return 1
    return run_sbatch(parsed, plan, service)


def run_sbatch(parsed: Parsed, plan: dict[str, Any], service: Any) -> int:
    """The real sbatch, as this user, with bai's wrapper on its standard input."""
    from adapter.sbatch.remote import ServiceError

    me = pwd.getpwuid(os.getuid()).pw_name
    if plan.get("user") != me:  # sbatch submits as whoever runs it: the job must be theirs
        _err(
            f"sbatch: error: BAI_TOKEN is {plan.get('user')}'s, but this is {me}'s shell; "
            "bai sbatch submits as the user who runs it: unset BAI_TOKEN (munge proves who "
            f"you are) or use a token of {me}'s"
        )
        with contextlib.suppress(ServiceError):
            service.post(f"/bai/sbatch/{plan['uid']}", {"error": "not the token's user"})
        return 1
    wait = parsed.last("wait") is not None
    argv = [SBATCH, "--parsable", *(["--wait"] if wait else []), *plan["arguments"]]
    try:
        proc = Sbatch(argv, plan["script"])
    except FileNotFoundError:
        _err("sbatch: error: bai sbatch runs Slurm's sbatch, which is not on this host's PATH")
        with contextlib.suppress(ServiceError):
            service.post(f"/bai/sbatch/{plan['uid']}", {"error": "sbatch not found"})
        return 1
    first = proc.readline()
    job_id = first.strip().split(";", 1)[0]
    if not job_id.isdigit():
        rest = proc.read()
        code = proc.wait()
        sys.stdout.write(first + rest)
        # Unsaid, the service marks the job failed once it has waited long enough.
        with contextlib.suppress(ServiceError):
            service.post(f"/bai/sbatch/{plan['uid']}", {"error": f"sbatch exited {code}"})
        return code or 1
    try:
        service.post(f"/bai/sbatch/{plan['uid']}", {"slurmJobId": int(job_id)})
    except ServiceError as exc:  # the job runs; the service adopts it on its next pass
        _err(f"bai: the service did not confirm job {job_id} now: {exc.lines[-1]}")
    if parsed.last("quiet") is None:
        print(job_id if parsed.last("parsable") is not None else f"Submitted batch job {job_id}")
    sys.stdout.flush()
    sys.stdout.write(proc.read())
    return proc.wait()


class Sbatch:
    """sbatch as a child with its standard input and output on pipes. posix_spawn and os
    pipes: the subprocess module would cost more to import than sbatch takes to start."""

    def __init__(self, argv: list[str], stdin: str) -> None:
        read_in, write_in = os.pipe()
        read_out, write_out = os.pipe()
        try:
            self.pid = os.posix_spawnp(
                argv[0],
                argv,
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, read_in, 0),
                    (os.POSIX_SPAWN_DUP2, write_out, 1),
                ],
                setsigdef=(signal.SIGPIPE,),  # Python ignores it; sbatch must not
            )
        except BaseException:
            for fd in (read_in, write_in, read_out, write_out):
                os.close(fd)
            raise
        os.close(read_in)
        os.close(write_out)
        self.out = os.fdopen(read_out, "r", encoding="utf-8", errors="replace")
        with os.fdopen(write_in, "wb") as pipe, contextlib.suppress(BrokenPipeError):
            pipe.write(stdin.encode("utf-8", errors="surrogateescape"))

    def readline(self) -> str:
        return self.out.readline()

    def read(self) -> str:
        return self.out.read()

    def wait(self) -> int:
        self.out.close()
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)
