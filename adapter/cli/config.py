"""The client's settings: the site's defaults in /etc/bai/client.conf, the environment on top.

The file (another path in `BAI_CLIENT_CONF`) holds `KEY=VALUE` lines for `BAI_URL` and
`BAI_CA`; `#` starts a comment line. Ansible writes it on the cluster's hosts, so users there
need no setting at all: with no `BAI_TOKEN` the CLI proves the user with munge. Standard
library only: the lean `bai sbatch` client imports it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from adapter.errors import BaiError

DEFAULT_PATH = Path("/etc/bai/client.conf")
FILE_KEYS = ("BAI_URL", "BAI_CA")


class ConfigError(BaiError):
    """The client configuration file cannot be read or says something unknown."""


class ClientConfig(NamedTuple):
    """Where the service is, the CA to verify it with, and the token if the user has one."""

    url: str | None
    ca: str | None
    token: str | None
    path: Path  # the file the defaults came from (it may not exist)


def parse_conf(text: str, path: Path) -> dict[str, str]:
    """The settings of a client.conf text; ConfigError names the line of anything else."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise ConfigError(f"{path}:{number}: {stripped[:80]!r} is not KEY=VALUE")
        if key == "BAI_TOKEN":
            # A token is one user's: a file every user reads must not hold one.
            raise ConfigError(
                f"{path}:{number}: BAI_TOKEN does not belong in the site's client file; "
                "remove it (users without munge set BAI_TOKEN themselves)"
            )
        if key not in FILE_KEYS:
            raise ConfigError(
                f"{path}:{number}: unknown setting {key[:40]!r}; the file may set "
                f"{', '.join(FILE_KEYS)}"
            )
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def load(environ: Mapping[str, str] | None = None) -> ClientConfig:
    """The file's defaults with the environment's non-empty values on top. A missing default
    file is no error (a remote client has none); a missing `BAI_CLIENT_CONF` file is."""
    env = os.environ if environ is None else environ
    named = env.get("BAI_CLIENT_CONF")
    path = Path(named) if named else DEFAULT_PATH
    try:
        values = parse_conf(path.read_text(encoding="utf-8"), path)
    except FileNotFoundError:
        if named:
            raise ConfigError(
                f"BAI_CLIENT_CONF names {path}, which does not exist; fix the path or unset it"
            ) from None
        values = {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read {path} ({exc}); ask the operator to make it readable (0644) UTF-8 text"
        ) from None

    def get(key: str) -> str | None:
        return env.get(key) or values.get(key) or None

    return ClientConfig(url=get("BAI_URL"), ca=get("BAI_CA"), token=get("BAI_TOKEN"), path=path)
