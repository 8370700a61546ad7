"""Run inside the 24.11 cluster's Debian 13 root by its Python (test_libslurm_24_11.py): build
the in-process binding against 24.11's headers, submit jobs in every state through it, and read
them back through it and through `squeue --json`. Prints what it saw as JSON; the test asserts.

    python3 libslurm_in_root.py <partition> <workdir> <binding cache>
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from adapter.backends import CliBackend, LocalRunner, SlurmJob
from adapter.backends.libslurm import Libslurm, LibslurmBackend
from adapter.backends.slurm_options import SlurmOptions
from adapter.errors import BackendError


async def main(part: str, workdir: str, cache: str) -> dict[str, Any]:
    runner = LocalRunner()
    lib = Libslurm.load(Path(cache), runner.env)
    backend = LibslurmBackend(runner, lib)
    commands = CliBackend(runner)

    async def submit(body: str, *, user: str, **given: Any) -> int:
        options = SlurmOptions(partition=part, output=f"{workdir}/%j.out", **given)
        script = "\n".join(["#!/bin/bash", *options.directives(), body, ""])
        return await backend.submit_job(options, script, user=user)

    async def until(job_id: int, *states: str) -> None:
        deadline = time.monotonic() + 60
        while not any(j.job_id == job_id and j.state in states for j in await backend.jobs([part])):
            if time.monotonic() > deadline:
                raise SystemExit(f"job {job_id} never reached {states}")
            await asyncio.sleep(0.5)

    done = await submit("true", user="bob", job_name="done", comment="bai:done")
    await until(done, "COMPLETED")
    failed = await submit("exit 3", user="alice")
    await until(failed, "FAILED")
    running = await submit(
        "sleep 600",
        user="alice",
        time_minutes=30,
        requeue=True,
        gres="gpu:t4:1",
        signal="USR1",
        signal_seconds=60,
        nice=10,
    )
    await until(running, "RUNNING")
    pending = await submit("true", user="bob", nodes=1, exclusive=True)
    cancelled = await submit("true", user="alice")
    await backend.cancel(cancelled)
    await until(cancelled, "CANCELLED")
    try:
        await submit("true", user="alice", time_minutes=25 * 60)
        refused = ""
    except BackendError as exc:
        refused = str(exc)

    from_libslurm = await backend.jobs([part])
    again = await backend.jobs([part])
    from_squeue = await commands.jobs([part])
    await backend.cancel(running)
    await backend.cancel(pending)
    return {
        "version": lib.version,
        "ids": {
            "done": done,
            "failed": failed,
            "running": running,
            "pending": pending,
            "cancelled": cancelled,
        },
        "refused": refused,
        "libslurm": [_plain(j) for j in from_libslurm],
        "again": [_plain(j) for j in again],
        "squeue": [_plain(j) for j in from_squeue],
    }


def _plain(job: SlurmJob) -> dict[str, Any]:
    """The job as JSON has it (times as text, tuples as lists), as the test compares them."""
    plain: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(job), default=str))
    return plain


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
