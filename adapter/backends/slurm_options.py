"""A batch job's Slurm options as data (`SlurmOptions`), and the `#SBATCH` lines they render to.

Both ways of submitting take the same value: sbatch reads it from the script's `#SBATCH` lines,
rendered here and nowhere else; the in-process path fills libslurm's `job_desc_msg_t` from it
and never reads the script. `check_script` refuses a script whose lines are not exactly the
value's, and a value sbatch would read back differently from such a line, so the two ways
cannot give different jobs.
"""

from __future__ import annotations

import signal as signals
from dataclasses import dataclass
from typing import TypedDict

from adapter.errors import BackendError
from adapter.scripts.shell import directive

# What sbatch's `#SBATCH` reader does not take literally: word breaks, quotes, escapes and
# comments (reference/sbatch.md). A value with one would not reach Slurm as it is here.
_UNREAD = frozenset(" \t'\"\\#")


class SlurmOptionsJson(TypedDict):
    """SlurmOptions as plain JSON values, as a job's record keeps them."""

    job_name: str | None
    partition: str | None
    nodelist: str | None
    reservation: str | None
    nodes: int | None
    exclusive: bool
    gres: str | None
    time_minutes: int | None
    nice: int | None
    comment: str | None
    chdir: str | None
    output: str | None
    error: str | None
    requeue: bool | None
    signal: str | None
    signal_seconds: int


@dataclass(frozen=True, slots=True)
class SlurmOptions:
    """The sbatch options of one batch job. None (or False) leaves it to Slurm's default."""

    job_name: str | None = None
    partition: str | None = None
    nodelist: str | None = None
    reservation: str | None = None
    nodes: int | None = None
    exclusive: bool = False
    gres: str | None = None  # gpu:t4:1
    time_minutes: int | None = None
    nice: int | None = None
    comment: str | None = None
    chdir: str | None = None
    output: str | None = None
    error: str | None = None  # None: with the output
    requeue: bool | None = None  # None: as slurm.conf's JobRequeue says
    # A signal (USR1, without SIG) for the batch shell alone (sbatch's `B:`), this long before
    # the time limit; slurmctld sends it on preemption too (preempt_send_user_signal).
    signal: str | None = None
    signal_seconds: int = 60

    def __post_init__(self) -> None:
        if self.signal is not None and not isinstance(
            getattr(signals, f"SIG{self.signal}", None), signals.Signals
        ):
            raise ValueError(f"{self.signal!r} is not a signal name (USR1, TERM, ...)")
        if not 0 <= self.signal_seconds <= 0xFFFF:
            raise ValueError(f"signal_seconds {self.signal_seconds} is not 0 to 65535")

    @property
    def signal_number(self) -> int | None:
        return int(getattr(signals, f"SIG{self.signal}")) if self.signal is not None else None

    def words(self) -> list[tuple[str, str | int | None]]:
        """The sbatch options, in the order bai's scripts list them; None: a flag."""
        valued: list[tuple[str, str | int | None]] = [
            ("--job-name", self.job_name),
            ("--partition", self.partition),
            ("--nodelist", self.nodelist),
            ("--reservation", self.reservation),
            ("--nodes", self.nodes),
        ]
        words: list[tuple[str, str | int | None]] = [(o, v) for o, v in valued if v is not None]
        if self.exclusive:
            words.append(("--exclusive", None))
        valued = [
            ("--gres", self.gres),
            ("--time", self.time_minutes),
            ("--nice", self.nice),
            ("--comment", self.comment),
            ("--chdir", self.chdir),
            ("--output", self.output),
            ("--error", self.error),
        ]
        words += [(o, v) for o, v in valued if v is not None]
        if self.requeue is not None:
            words.append(("--requeue" if self.requeue else "--no-requeue", None))
        if self.signal is not None:
            words.append(("--signal", f"B:{self.signal}@{self.signal_seconds}"))
        return words

    def directives(self) -> list[str]:
        """The `#SBATCH` lines sbatch reads these options from."""
        return [directive(option, value) for option, value in self.words()]

    def to_json(self) -> SlurmOptionsJson:
        """Plain JSON values, for a job's record (`from_json` reads them back)."""
        return SlurmOptionsJson(
            job_name=self.job_name,
            partition=self.partition,
            nodelist=self.nodelist,
            reservation=self.reservation,
            nodes=self.nodes,
            exclusive=self.exclusive,
            gres=self.gres,
            time_minutes=self.time_minutes,
            nice=self.nice,
            comment=self.comment,
            chdir=self.chdir,
            output=self.output,
            error=self.error,
            requeue=self.requeue,
            signal=self.signal,
            signal_seconds=self.signal_seconds,
        )

    @classmethod
    def from_json(cls, data: SlurmOptionsJson) -> SlurmOptions:
        return cls(**data)


def script_directives(script: str) -> list[str]:
    """The script's `#SBATCH` (and `#SLURM`) lines up to its first command, where sbatch stops
    reading them."""
    found = []
    for line in script.splitlines()[1:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if stripped.startswith(("#SBATCH", "#SLURM")):
            found.append(line)
    return found


def check_script(options: SlurmOptions, script: str) -> None:
    """Refuse (BackendError) a script from which sbatch would read other options than
    `options`: its `#SBATCH` lines must be `options.directives()`, and each value one that
    sbatch takes literally from such a line."""
    for option, value in options.words():
        if value is not None and _UNREAD & set(str(value)):
            raise BackendError(
                f"sbatch would not read {option}={value!r} from an #SBATCH line as it is "
                "(a space, quote, backslash or '#' in it)"
            )
    lines, wanted = script_directives(script), options.directives()
    if lines != wanted:
        raise BackendError(
            f"the script's #SBATCH lines {lines} are not those of its options {wanted}"
        )
