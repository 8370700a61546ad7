"""Parsing of Slurm command output: the only place that knows Slurm's output formats.

Keyed on the format the output names, because JSON shapes change between releases
(reference/slurm-versions.md): Slurm 22.05 prints openapi/v0.0.38 from `squeue --json` and
`sinfo --json`; 24.11 prints data_parser/v0.0.42, whose numbers are `{set, infinite, number}`
objects, job and node states lists, exit codes objects, and whose per-node dump is
`scontrol show nodes --json` (from 23.02). `scontrol show partition -o` is text in both.
Unknown shapes raise `BackendError` showing the raw text instead of guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from adapter.backends.base import TERMINAL_JOB_STATES, SlurmJob, SlurmNode, SlurmPartition
from adapter.backends.hostlist import expand_hostlist
from adapter.errors import BackendError

# The formats bai reads, by the name the output gives itself (meta.plugin.type in 22.05,
# meta.plugin.data_parser from 23.02), and the release that prints each.
FORMATS = {"openapi/v0.0.38": "v0.0.38", "data_parser/v0.0.42": "v0.0.42"}
# Node states that are the base state; the rest of a v0.0.42 state list are flags.
_BASE_NODE_STATES = frozenset(
    {"IDLE", "ALLOCATED", "MIXED", "DOWN", "ERROR", "FUTURE", "UNKNOWN", "INVALID"}
)
_VERSION = re.compile(r"^slurm(?:-wlm)? (\d+)\.(\d+)\.")

# stderr phrases meaning "Slurm is not reachable", as opposed to "Slurm refused the request".
_UNAVAILABLE = re.compile(
    r"Unable to contact slurm controller|Socket timed out|Connection refused|"
    r"Zero Bytes were transmitted|Communication connection failure|"
    r"Munge (?:en|de)code failed|munge\.socket|Unable to establish controller",
    re.IGNORECASE,
)
_GRES = re.compile(r"^gpu(?::(?P<type>[^:(,]+))?:(?P<count>\d+)")

T = TypeVar("T")


def is_unavailable(stderr: str) -> bool:
    """True when a command's stderr says Slurm (or its authentication) cannot be reached."""
    return bool(_UNAVAILABLE.search(stderr))


def parse_sbatch_parsable(stdout: str) -> int:
    """The job id from `sbatch --parsable` output (`123` or `123;cluster`)."""
    first = stdout.strip().splitlines()[0] if stdout.strip() else ""
    job_id = first.split(";", 1)[0]
    if not job_id.isdigit():
        raise BackendError(f"sbatch printed no job id: {stdout.strip()!r}")
    return int(job_id)


def parse_version(text: str) -> tuple[int, int]:
    """(major, minor) from `sinfo --version` (`slurm-wlm 22.05.8`, `slurm 24.11.5`)."""
    m = _VERSION.match(text.strip())
    if not m:
        raise BackendError(f"sinfo --version printed no Slurm release: {text.strip()[:200]!r}")
    return int(m.group(1)), int(m.group(2))


def nodes_argv(release: tuple[int, int]) -> list[str]:
    """The command that lists every node, one entry each, in a release: `sinfo --json` until
    23.02 reworked it (one entry per node and partition), `scontrol show nodes --json` after."""
    return ["sinfo", "--json"] if release < (23, 2) else ["scontrol", "show", "nodes", "--json"]


def parse_squeue_json(text: str) -> list[SlurmJob]:
    """Jobs from `squeue --json --states=all` (every job Slurm still remembers, finished ones
    included; 22.05 ignores the filter and prints them all anyway)."""
    what = "squeue --json"
    doc, fmt = _load(text, what)
    return [_wrap(partial(_job, fmt=fmt), raw, what) for raw in _list(doc, "jobs", what)]


def parse_nodes_json(text: str) -> list[SlurmNode]:
    """Nodes from `sinfo --json` (v0.0.38) or `scontrol show nodes --json` (v0.0.42)."""
    what = "the node list"
    doc, fmt = _load(text, what)
    return [_wrap(partial(_node, fmt=fmt), raw, what) for raw in _list(doc, "nodes", what)]


def parse_scontrol_partitions(text: str) -> list[SlurmPartition]:
    """Partitions from `scontrol show partition -o` (one `Key=Value ...` line each)."""
    if text.strip() == "No partitions in the system":
        return []
    partitions = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = _key_values(line)
        if "PartitionName" not in fields:
            raise BackendError(f"unreadable `scontrol show partition -o` line: {line!r}")
        nodes = fields.get("Nodes", "(null)")
        partitions.append(
            SlurmPartition(
                name=fields["PartitionName"],
                nodes=tuple(expand_hostlist(nodes)) if nodes != "(null)" else (),
                state=fields.get("State", ""),
                priority_tier=int(fields.get("PriorityTier", "1")),
                preempt_mode=fields.get("PreemptMode", ""),
                grace_time_seconds=int(fields.get("GraceTime", "0")),
                max_time=fields.get("MaxTime", "UNLIMITED"),
                raw=fields,
            )
        )
    return partitions


def decode_exit_code(raw: int) -> tuple[int | None, int | None]:
    """Split a wait(2) status as Slurm stores it into (exit status, terminating signal)."""
    signal = raw & 0x7F
    if signal:
        return None, signal
    return (raw >> 8) & 0xFF, None


def _key_values(line: str) -> dict[str, str]:
    # Values never contain spaces in -o output except OS= and Reason=, which partitions lack.
    fields: dict[str, str] = {}
    for token in line.split():
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    return fields


def _load(text: str, what: str) -> tuple[Mapping[str, Any], str]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BackendError(f"{what} printed something that is not JSON: {text[:500]!r}") from exc
    if not isinstance(doc, dict):
        raise BackendError(f"{what} printed JSON that is not an object: {text[:500]!r}")
    plugin = doc.get("meta", {}).get("plugin", {})
    named = (plugin.get("data_parser") or plugin.get("type")) if isinstance(plugin, dict) else None
    fmt = FORMATS.get(str(named))
    if fmt is None:
        meta = doc.get("meta", {})
        slurm = meta.get("Slurm") or meta.get("slurm") or {}
        release = slurm.get("release", "?") if isinstance(slurm, dict) else "?"
        raise BackendError(
            f"{what} printed format {named!r} (Slurm {release}); bai reads "
            f"{', '.join(sorted(FORMATS))}: add a parser for it in {__name__}"
        )
    errors = doc.get("errors") or []
    if errors:
        raise BackendError(f"{what} reported errors: {errors!r}")
    return doc, fmt


def _list(doc: Mapping[str, Any], key: str, what: str) -> list[Mapping[str, Any]]:
    items = doc.get(key)
    if not isinstance(items, list):
        raise BackendError(f"{what} output has no {key!r} list: {json.dumps(doc)[:500]!r}")
    return items


def _wrap(parse: Callable[[Mapping[str, Any]], T], raw: Mapping[str, Any], what: str) -> T:
    try:
        return parse(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(
            f"unreadable entry in {what} output ({exc!r}): {json.dumps(raw)[:500]}"
        ) from exc


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _number(value: Any) -> int:
    """A v0.0.42 number (`{set, infinite, number}`; 0 when unset or infinite) or a plain one."""
    if isinstance(value, dict):
        return int(value["number"]) if value.get("set") and not value.get("infinite") else 0
    return int(value or 0)


def _plain(value: Any) -> int:
    """A v0.0.38 number (0 when absent); anything but an integer is unreadable."""
    return int(value or 0)


def _wait_status(exit_code: Any) -> int:
    """A v0.0.42 exit code object as the wait(2) status job_from_fields decodes."""
    signal = _number(exit_code.get("signal", {}).get("id"))
    return signal if signal else (_number(exit_code.get("return_code")) & 0xFF) << 8


def _job(raw: Mapping[str, Any], fmt: str) -> SlurmJob:
    """A job of either format: they differ in the state, the exit code and the task index;
    numbers are plain in v0.0.38 and `{set, infinite, number}` in v0.0.42."""
    v42 = fmt == "v0.0.42"
    number = _number if v42 else _plain
    task = raw.get("array_task_id")
    return job_from_fields(
        job_id=int(raw["job_id"]),
        name=str(raw.get("name", "")),
        user=str(raw.get("user_name", "")),
        partition=str(raw.get("partition", "")),
        # v0.0.42: a list, the base state first and its flags (REQUEUED, ...) after it
        state=str(raw["job_state"][0] if v42 else raw["job_state"]),
        state_reason=str(raw.get("state_reason", "")),
        comment=str(raw.get("comment") or ""),
        restart_count=int(raw.get("restart_cnt") or 0),
        nodes=str(raw.get("nodes") or ""),
        node_count=number(raw.get("node_count")),
        submit_time=number(raw.get("submit_time")),
        start_time=number(raw.get("start_time")),
        end_time=number(raw.get("end_time")),
        time_limit=number(raw.get("time_limit")),
        exit_code=_wait_status(raw["exit_code"]) if v42 else int(raw["exit_code"]),
        requeue=bool(raw.get("requeue")),
        batch_host=str(raw.get("batch_host") or ""),
        array_job_id=number(raw.get("array_job_id")),
        array_task_id=(_number(task) if isinstance(task, dict) and task.get("set") else None)
        if v42
        else task_index(task),
        array_pending=str(raw.get("array_task_string") or ""),
    )


def task_index(value: Any) -> int | None:
    """An array task index as Slurm reports it, None when the record is not one task."""
    # libslurm says NO_VAL (0xfffffffe) for "not a task"; squeue --json says null.
    return None if value is None or int(value) >= 0xFFFFFFFE else int(value)


def job_from_fields(
    *,
    job_id: int,
    name: str,
    user: str,
    partition: str,
    state: str,
    state_reason: str,
    comment: str,
    restart_count: int,
    nodes: str,
    node_count: int,
    submit_time: int,
    start_time: int,
    end_time: int,
    time_limit: int,
    exit_code: int,
    requeue: bool,
    batch_host: str,
    array_job_id: int = 0,
    array_task_id: int | None = None,
    array_pending: str = "",
) -> SlurmJob:
    """A job from Slurm's own values (epoch seconds, 0 for unset; a raw wait status), however
    they were read: `squeue --json` or libslurm's job records."""
    state = state.upper()
    # Before a job ends, end_time is a forecast and exit_code is meaningless.
    ended = state in TERMINAL_JOB_STATES
    exit_status, term_signal = decode_exit_code(exit_code) if ended else (None, None)
    return SlurmJob(
        job_id=job_id,
        name=name,
        user=user,
        partition=partition,
        state=state,
        state_reason=state_reason,
        comment=comment,
        restart_count=restart_count,
        nodes=tuple(expand_hostlist(nodes)) if nodes else (),
        node_count=node_count,
        submit_time=_time(submit_time),
        # A job cancelled while pending reports its cancel time as start time, and no nodes.
        start_time=_time(start_time) if state != "PENDING" and nodes else None,
        end_time=_time(end_time) if ended else None,
        time_limit_minutes=time_limit or None,
        exit_status=exit_status,
        term_signal=term_signal,
        requeue=requeue,
        batch_host=batch_host,
        array_job_id=array_job_id,
        array_task_id=array_task_id,
        array_pending=array_pending,
    )


def _gpus(gres: str) -> tuple[str | None, int]:
    for item in gres.split(","):
        m = _GRES.match(item)
        if m:
            return m.group("type"), int(m.group("count"))
    return None, 0


def _node(raw: Mapping[str, Any], fmt: str) -> SlurmNode:
    """A node of either format: v0.0.38 gives a state and its flags apart and features as one
    comma-separated string; v0.0.42 one list of states (the base state among its flags) and
    lists of features."""
    number = _plain if fmt == "v0.0.38" else _number
    if fmt == "v0.0.38":
        state = str(raw["state"]).upper()
        flags = frozenset(str(f).upper() for f in raw.get("state_flags") or ())
        features = str(raw.get("active_features") or raw.get("features") or "").split(",")
    else:
        states = [str(s).upper() for s in raw["state"]]
        state = next((s for s in states if s in _BASE_NODE_STATES), states[0] if states else "")
        flags = frozenset(s for s in states if s != state)
        features = [str(f) for f in raw.get("active_features") or raw.get("features") or []]
    gres = str(raw.get("gres") or "")
    gpu_type, gpus = _gpus(gres)
    _, gpus_used = _gpus(str(raw.get("gres_used") or ""))
    port = raw.get("port")
    return SlurmNode(
        name=str(raw["name"]),
        address=str(raw.get("address") or raw["name"]),
        hostname=str(raw.get("hostname") or raw["name"]),
        port=int(port) if port else None,
        state=state,
        flags=flags,
        gres=gres,
        gpu_type=gpu_type,
        gpus=gpus,
        gpus_used=gpus_used,
        cpus=number(raw.get("cpus")),
        real_memory_mb=number(raw.get("real_memory")),
        features=tuple(f for f in features if f),
        partitions=tuple(str(p) for p in raw.get("partitions") or ()),
        reason=str(raw.get("reason") or ""),
    )
