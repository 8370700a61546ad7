"""The one place where values become shell text. Nothing from a request reaches bash otherwise."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from adapter.errors import InvalidRequest

_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote(value: str) -> str:
    """A single shell word that bash reads back as exactly `value`."""
    return shlex.quote(value)


def export(name: str, value: str) -> str:
    """`export NAME='value'`, refusing names bash would not take as a variable."""
    if not _ENV_NAME.fullmatch(name):
        raise InvalidRequest(f"environment variable name {name!r} is not valid", target=name)
    return f"export {name}={quote(value)}"


def directive(option: str, value: str | int | None = None) -> str:
    """One `#SBATCH` line. Slurm reads these lines itself, so newlines are refused."""
    text = option if value is None else f"{option}={value}"
    if "\n" in text or "\r" in text:
        raise InvalidRequest(f"sbatch option {option} has a line break in its value")
    return f"#SBATCH {text}"


def expand_path(template: str, variables: Mapping[str, str], *, field: str) -> str:
    """Replace `$VAR`/`${VAR}` of the known variables in a path; anything else is refused.

    Batch AI paths name variables such as `$AZ_BATCHAI_MOUNT_ROOT`. bai expands them itself
    instead of letting bash do it, so a path can never run a command.
    """

    def sub(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain")
        if name not in variables:
            known = ", ".join(f"${v}" for v in sorted(variables))
            raise InvalidRequest(
                f"{field} uses ${name}, which bai does not know here; use an absolute path or "
                f"one of {known}",
                target=field,
            )
        return variables[name]

    expanded = _VAR.sub(sub, template)
    if "$" in expanded or "`" in expanded or "\n" in expanded:
        raise InvalidRequest(f"{field} {template!r} is not a plain path", target=field)
    if not expanded.startswith("/"):
        raise InvalidRequest(f"{field} {template!r} must be an absolute path", target=field)
    return expanded
