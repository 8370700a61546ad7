"""Checks of the option values bai translates, with the messages sbatch 22.05 prints.

Each function follows the C code that checks the value (src/common/parse_time.c, proc_args.c,
slurm_opt.c on the sbatch side; job_mgr.c and job_scheduler.c for what slurmctld refuses, whose
messages come as "Batch job submission failed: ..."), quirks included.
"""

from __future__ import annotations

from typing import NamedTuple

from adapter.sbatch.options import SbatchError

_SPACE = " \t\n\v\f\r"
_LONG_MAX = 2**63 - 1
_LONG_MIN = -(2**63)
# slurm.h: NICE_OFFSET; sbatch allows +/- (NICE_OFFSET - 3).
_NICE_LIMIT = 0x80000000 - 3
_SIGNALS = {
    "HUP": 1,
    "INT": 2,
    "QUIT": 3,
    "ABRT": 6,
    "KILL": 9,
    "ALRM": 14,
    "TERM": 15,
    "USR1": 10,
    "USR2": 12,
    "URG": 23,
    "CONT": 18,
    "STOP": 19,
    "TSTP": 20,
    "TTIN": 21,
    "TTOU": 22,
    "XCPU": 24,
}
_MAIL_TYPES = frozenset(
    {
        "ARRAY_TASKS",
        "BEGIN",
        "END",
        "FAIL",
        "INVALID_DEPEND",
        "REQUEUE",
        "ALL",
        "STAGE_OUT",
        "TIME_LIMIT",
        "TIME_LIMIT_90",
        "TIME_LIMIT_80",
        "TIME_LIMIT_50",
    }
)
_SUBMIT = "sbatch: error: Batch job submission failed: "


def _error(text: str, code: int = 255) -> SbatchError:
    return SbatchError(f"sbatch: error: {text}", code=code)


def strtol(text: str, start: int = 0) -> tuple[int, int]:
    """C's strtol(base 10) from `start`: the value and where it stopped (`start` if no digits)."""
    i = start
    while i < len(text) and text[i] in _SPACE:
        i += 1
    sign = 1
    if i < len(text) and text[i] in "+-":
        sign = -1 if text[i] == "-" else 1
        i += 1
    j = i
    while j < len(text) and "0" <= text[j] <= "9":
        j += 1
    if j == i:
        return 0, start
    return max(_LONG_MIN, min(_LONG_MAX, sign * int(text[i:j]))), j


def _int32(value: int) -> int:
    """A C int cast (wraps)."""
    return (value + 2**31) % 2**32 - 2**31


class ArraySpec(NamedTuple):
    """The task indices of --array and its %N limit on running tasks."""

    indices: tuple[int, ...]
    max_running: int | None


class SignalSpec(NamedTuple):
    """--signal: the signal, how many seconds before the end, and its R and B flags."""

    signal: int
    seconds: int
    batch_only: bool
    reservation: bool


def _valid_timespec(text: str) -> bool:
    digit = dash = colon = 0
    in_digit = False
    for char in text:
        if "0" <= char <= "9":
            if not in_digit:
                digit += 1
                in_digit = True
        elif char == "-":
            in_digit = False
            dash += 1
            if colon:
                return False
        elif char == ":":
            in_digit = False
            colon += 1
        else:
            return False
    if not digit or dash > 1 or colon > 2:
        return False
    least = {1: 3, 2: 4} if dash else {1: 2, 2: 3}
    return digit >= least.get(colon, 0)


def _scan(text: str, separators: str) -> list[int]:
    """sscanf("%d<sep>%d<sep>...") over a valid timespec: the integers it converts."""
    values: list[int] = []
    i = 0
    for k in range(len(separators) + 1):
        if k:
            if i >= len(text) or text[i] != separators[k - 1]:
                break
            i += 1
        value, end = strtol(text, i)
        if end == i:
            break
        values.append(_int32(value))
        i = end
    return values


def parse_time(text: str, option: str = "--time") -> int | None:
    """Minutes of a Slurm time (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S); None for no limit.

    Seconds round up to a minute; 0, -1, INFINITE and UNLIMITED mean no limit, as in sbatch.
    """
    if text.lower() in ("-1", "infinite", "unlimited"):
        return None
    if not text or not _valid_timespec(text):
        raise _error(f"Invalid {option} specification")
    d = h = m = s = 0
    if "-" in text:
        got = _scan(text, "-::") + [0, 0, 0, 0]
        d, h, m, s = (_int32(got[0] * 86400), _int32(got[1] * 3600), _int32(got[2] * 60), got[3])
    else:
        got = _scan(text, "::")
        if len(got) == 3:
            h, m, s = _int32(got[0] * 3600), _int32(got[1] * 60), got[2]
        else:
            got += [0, 0]
            m, s = _int32(got[0] * 60), got[1]
    rounded = _int32(_int32(d + h + m + s) + 59)
    # Rounds seconds up; C's division truncates toward zero.
    minutes = rounded // 60 if rounded >= 0 else -(-rounded // 60)
    if minutes == 0:
        return None
    if minutes < 0:
        raise SbatchError(
            _SUBMIT + "Requested time limit is invalid (missing or exceeds some limit)"
        )
    return minutes


def _array_token(token: str, limit: int, indices: set[int]) -> bool:
    """slurmctld's _parse_array_tok: one comma-separated piece of --array."""
    i = 1 if token.startswith("[") else 0
    first, i = strtol(token, i)
    i += token.startswith("]", i)
    if first < 0:
        return False
    last, step = first, 1
    rest = token[i:]
    if rest.startswith("-"):
        last, i = strtol(token, i + 1)
        i += token.startswith("]", i)
        if token.startswith(":", i):
            step, i = strtol(token, i + 1)
            i += token.startswith("]", i)
            if token[i : i + 1] not in ("", "%") or step <= 0 or step >= limit:
                return False
        elif token[i : i + 1] not in ("", "%"):
            return False
        if last < first:
            return False
    elif rest[:1] not in ("", "%"):
        return False
    if last >= limit:
        return False
    indices.update(range(first, last + 1, step))
    return True


def parse_array(text: str, *, max_array_size: int = 1001) -> ArraySpec:
    """The indices of --array (`0-15`, `0,6,16-32`, `0-15:4`, `%4`), as slurmctld reads them.

    `max_array_size` is the cluster's MaxArraySize (Slurm's default 1001). An empty value
    means no array: no indices.
    """
    if not text:
        return ArraySpec((), None)
    indices: set[int] = set()
    for token in text.split(","):
        if token and not _array_token(token, max_array_size, indices):
            raise SbatchError(_SUBMIT + "Invalid job array specification")
    limit: int | None = None
    if "%" in text:
        after = text.partition("%")[2]
        value, _ = strtol(after)
        limit = _int32(value) if _int32(value) > 0 else None
    return ArraySpec(tuple(sorted(indices)), limit)


def _node_count(text: str) -> tuple[int, str]:
    value, end = strtol(text)
    if end == 0:
        return -1, text
    for suffix, factor in (("kK", 1024), ("mM", 1024 * 1024)):
        if text[end : end + 1] and text[end] in suffix:
            value *= factor
            end += 1
    return _int32(value), text[end:]


def parse_nodes(text: str) -> tuple[int, int | None]:
    """The minimum and maximum of --nodes (`2`, `2-4`, `1k`); None: no maximum."""
    if "-" in text:
        low_text, _, high_text = text.partition("-")
        low, left = _node_count(low_text)
        if left.strip(_SPACE):
            raise _error(f'"{low_text}" is not a valid node count')
        low = max(low, 1) if low < 0 else low
        high, left = _node_count(high_text)
        if left.strip(_SPACE):
            raise _error(f'"{high_text}" is not a valid node count')
    else:
        low, left = _node_count(text)
        high = low
        if left.strip(_SPACE) or low < 0:
            raise _error(f'"{text}" is not a valid node count')
    if high != 0 and high < low:
        raise _error(f"Maximum node count {high} is less than minimum node count {low}")
    return low, (high or None)


def _signal_number(text: str) -> int:
    value, end = strtol(text)
    if end:
        return _int32(value) if not text[end:].strip(_SPACE) else 0
    name = text.lstrip(_SPACE)
    if name[:3].upper() == "SIG":
        name = name[3:]
    for known, number in _SIGNALS.items():
        if name[: len(known)].upper() == known and not name[len(known) :].strip(_SPACE):
            return number
    return 0


def parse_signal(text: str) -> SignalSpec:
    """--signal=[{R|B}:]<sig_num>[@sig_time]; a name (USR1, SIGUSR1) or a number."""
    bad = _error("Invalid --signal specification")
    reservation = batch = False
    rest = text
    if rest[:1].upper() == "R":
        reservation, rest = True, rest[1:]
    if rest[:1].upper() == "B":
        batch, rest = True, rest[1:]
    if rest[:1].upper() == "R":
        reservation, rest = True, rest[1:]
    if rest.startswith(":"):
        rest = rest[1:]
    name, at, when = rest.partition("@")
    number = _signal_number(name) & 0xFFFF
    if number < 1:
        raise bad
    if not at:
        return SignalSpec(number, 60, batch, reservation)
    seconds, end = strtol(when)
    if seconds < 0 or seconds > 0xFFFF or end != len(when):
        raise bad
    return SignalSpec(number, seconds, batch, reservation)


def _expand_task_ranges(text: str, max_array_size: int) -> str | None:
    """slurmctld's _xlate_array_dep: `afterok:7_[1-3]` -> `afterok:7_1:7_2:7_3`."""
    if "_[" not in text:
        return None
    out: list[str] = []
    job_start: int | None = None
    i = 0
    while i < len(text):
        char = text[i]
        out.append(char)
        if "0" <= char <= "9":
            job_start = i if job_start is None else job_start
        elif char == "_" and text.startswith("[", i + 1) and job_start is not None:
            job = int(strtol(text, job_start)[0])
            inside, found, _ = text[i + 2 :].partition("]")
            tasks = _task_ranges(inside, max_array_size) if found else None
            if not tasks:
                return None
            out.append(str(tasks[0]))
            out.extend(f":{job}_{task}" for task in tasks[1:])
            i += 2 + len(inside)
            job_start = None
        else:
            job_start = None
        i += 1
    return "".join(out)


def _task_ranges(text: str, limit: int) -> list[int] | None:
    """Slurm's bit_unfmt: `1-3,7` (other characters are skipped) or `1-9:2` (end excluded)."""
    pairs: list[tuple[int, int]] = []
    if ":" in text:
        first, i = strtol(text)
        last, j = strtol(text, i + 1) if text.startswith("-", i) else (0, -1)
        step, k = strtol(text, j + 1) if text.startswith(":", j) else (0, -1)
        if k != len(text) or last < first or step <= 0:
            return None
        pairs = [(task, task) for task in range(first, last, step)]
    else:
        total, low = 0, -1
        for i, char in enumerate(text + "\0"):
            if "0" <= char <= "9":
                total = total * 10 + int(char)
            elif char == "-":
                low, total = total, 0
            elif char in ",\0":
                if i == 0:
                    break
                pairs.append((total if low == -1 else low, total))
                low, total = -1, 0
    tasks: set[int] = set()
    for low, high in pairs:
        if not (0 <= low < limit and 0 <= high < limit):
            return None
        tasks.update(range(low, high + 1))
    return sorted(tasks) or None


_DEPEND_TYPES = ("afternotok:", "aftercorr:", "afterany:", "afterok:", "afterburstb", "after:")


def _job_ids(text: str, i: int, ids: list[int], old: bool) -> int:
    """Job ids from `i` (slurmctld's _parse_dependency_jobid_*): where they stop."""
    ends = ",\0" if old else ",?:+(\0"
    while True:
        job, i = strtol(text, i)
        if text.startswith("_", i):
            i = i + 2 if text.startswith("*", i + 1) else strtol(text, i + 1)[1]
        job &= 0xFFFFFFFF  # a uint32_t in slurmctld
        if job == 0 or (text[i : i + 1] or "\0") not in ends:
            raise SbatchError(_SUBMIT + "Job dependency problem")
        ids.append(job)
        if old:
            return i
        if text.startswith("+", i):
            delay, i = strtol(text, i + 1)
            if delay <= 0:
                raise SbatchError(_SUBMIT + "Job dependency problem")
        i = _depend_state(text, i)
        if not text.startswith(":", i):
            return i
        i += 1


def _depend_state(text: str, i: int) -> int:
    """Skips a `(state)` suffix; slurmctld looks for it anywhere in the rest."""
    if "(" not in text[i:]:
        return i
    close = text.find(")", i)
    if close < 0:
        raise SbatchError(_SUBMIT + "Job dependency problem")
    return close + 1


def parse_dependency(text: str, *, max_array_size: int = 1001) -> tuple[int, ...]:
    """The job ids --dependency names, in order; its syntax checked as slurmctld checks it.

    `type:id[:id][,type:id]` (`?` for any), `singleton`, or old-style `id,id`; ids may be
    `id_task`, `id_*` or `id_[1-3]`. Whether the jobs exist is slurmctld's to say.
    """
    if text in ("", "0"):
        return ()
    text = _expand_task_ranges(text, max_array_size) or text
    ids: list[int] = []
    i = 0
    while True:
        rest = text[i:]
        if rest[:9].lower() == "singleton":
            i = _depend_state(text, i + 9)
            if text.startswith((",", "?"), i):
                i += 1
                continue
            if i < len(text):
                raise SbatchError(_SUBMIT + "Job dependency problem")
            break
        if ":" not in rest and "0" <= rest[:1] <= "9":
            i = _job_ids(text, i, ids, old=True)
            if text.startswith(",", i):
                i += 1
                continue
            break
        if ":" in rest and rest[:7].lower() == "expand:":
            # Only with SchedulerParameters=permit_job_expansion, which bai does not set.
            raise SbatchError(_SUBMIT + "Requested operation not supported on this system")
        if ":" not in rest or not rest.lower().startswith(_DEPEND_TYPES):
            raise SbatchError(_SUBMIT + "Job dependency problem")
        # slurmctld goes on after the first ':' of the rest (it compares only 11 characters
        # of "afterburstbuffer:").
        i += rest.index(":") + 1
        i = _job_ids(text, i, ids, old=False)
        if text.startswith((",", "?"), i):
            i += 1
            continue
        break
    return tuple(dict.fromkeys(ids))


def parse_count(text: str, option: str, *, positive: bool = True) -> int:
    """sbatch's parse_int for --ntasks, --cpus-per-task and the like (exits 1)."""
    value, end = strtol(text)
    if end != len(text) or value < 0 or (positive and value <= 0):
        raise _error(f'Invalid numeric value "{text}" for {option}.', code=1)
    if value == _LONG_MAX:
        raise _error(f"Numeric argument ({value}) to big for {option}.", code=1)
    return _int32(value)


def parse_wait_all_nodes(text: str) -> int:
    """--wait-all-nodes: 0 or 1."""
    value = parse_count(text, "--wait-all-nodes", positive=False) & 0xFFFF  # a uint16_t
    if value > 1:
        raise _error("Invalid --wait-all-nodes specification")
    return value


def parse_memory(text: str, option: str = "--mem") -> int:
    """Megabytes of --mem, --mem-per-cpu, --mem-per-gpu (`4096`, `4G`, `512K`, `1TB`)."""
    value, end = strtol(text)
    unit = text[end:]
    key = unit[:1].upper()
    if end == 0 or value < 0 or value == _LONG_MAX or key not in ("", "K", "M", "G", "T"):
        raise _error(f"Invalid {option} specification")
    if unit[1:] not in ("", "B", "b"):
        raise _error(f"Invalid {option} specification")
    if key == "K":
        return (value + 1023) // 1024
    return value * {"": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[key]


def parse_mail_type(text: str) -> tuple[str, ...]:
    """The --mail-type events (NONE: none); unknown names are skipped unless all are."""
    events: list[str] = []
    for token in (t for t in text.split(",") if t):
        if token.upper() == "NONE":
            return ()
        if token.upper() in _MAIL_TYPES:
            events.append(token.upper())
    if not events:
        raise _error("Invalid --mail-type specification")
    return tuple(events)


def parse_nice(text: str | None) -> int:
    """--nice[=adjustment]: 100 without a value; sbatch reads the number as strtoll does."""
    value = 100 if text is None else strtol(text)[0]
    if abs(value) > _NICE_LIMIT:
        raise _error(f"Invalid --nice value, out of range (+/- {_NICE_LIMIT})")
    return value


def parse_no_kill(text: str | None) -> bool:
    """-k, --no-kill[=off]: whether the job survives a node failure."""
    value = "set" if text is None else text.lower()
    if value not in ("set", "off", "no"):
        raise _error("Invalid --no-kill specification")
    return value == "set"


def parse_get_user_env(text: str | None) -> tuple[int, str]:
    """--get-user-env[=timeout][S|L]: the timeout (0: sbatch's default) and the su mode."""
    if text is None:
        return 0, ""
    timeout, end = strtol(text)
    mode = text[end : end + 1].upper()
    if mode not in ("", "S", "L"):
        raise _error("Invalid --get-user-env specification")
    return _int32(timeout), mode


def parse_open_mode(text: str) -> str:
    """--open-mode: "append" or "truncate" (sbatch reads the first letter only)."""
    mode = {"a": "append", "t": "truncate"}.get(text[:1].lower())
    if mode is None:
        raise _error("Invalid --open-mode specification")
    return mode


def parse_exclusive(text: str | None) -> str:
    """--exclusive[=user|mcs|oversubscribe]: the sharing it asks for ("exclusive" alone)."""
    value = "exclusive" if text is None else text.lower()
    if value not in ("exclusive", "user", "mcs", "oversubscribe"):
        raise _error("Invalid --exclusive specification")
    return value
