"""`bai dev init`: after `make dev`, point a shell at the dev service (writes .dev/env)."""

from __future__ import annotations

import os
import ssl
import time
from pathlib import Path
from typing import Annotated

import typer

from adapter.cli.admin import ConfigOption
from adapter.errors import BaiError, RequestError

app = typer.Typer(help="Dev machine helpers (used by make dev).", no_args_is_help=True)


def _read_env(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines())
    return {k: v.strip("'\"") for k, v in (p for p in pairs if len(p) == 2)}


@app.command("init")
def init(
    env_file: Annotated[Path, typer.Option("--env-file")] = Path(".dev/env"),
    config: ConfigOption = None,
) -> None:
    """Write BAI_URL, BAI_TOKEN, BAI_CA and BAI_DEV_STORAGE_ROOT to .dev/env (token kept)."""
    # Imported here, not for every `bai` command: they are most of the CLI's start-up time.
    from adapter.auth import authenticate, create_token
    from adapter.clock import now
    from adapter.settings import load_settings
    from adapter.store import Store

    settings = load_settings(config)
    store = Store(settings.db_path)
    try:
        old = _read_env(env_file).get("BAI_TOKEN", "")
        # An admin token bound to the dev cluster's user alice: jobs run as alice, not root. It
        # never expires; one revoked (or an older one that expired) is made again.
        try:
            found = authenticate(store, old, policy=settings.auth) if old else None
        except RequestError:
            found = None
        token = (
            old
            if found and found.user == "alice" and found.admin
            else create_token(
                store,
                "alice",
                policy=settings.auth,
                at=now(),
                expires=None,
                admin=True,
                label="make dev",
            )
        )
    finally:
        store.close()
    url = f"https://127.0.0.1:{settings.port}"
    ca = str(settings.tls_cert or settings.state_dir / "tls" / "cert.pem")
    values = {
        "BAI_URL": url,
        "BAI_TOKEN": token,
        "BAI_CA": ca,
        "BAI_DEV_STORAGE_ROOT": str(settings.dev_storage_root or ""),
        "BAI_RESOURCE_GROUP": "dev",
    }
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.touch(mode=0o600)
    env_file.write_text("".join(f"export {k}={v}\n" for k, v in values.items()))
    _wait_for(url, ca)
    print(f"wrote {env_file}: run `. {env_file}` to use the bai CLI against the dev service")


def _wait_for(url: str, ca: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.path.exists(ca):
                httpx.get(url + "/", verify=ssl.create_default_context(cafile=ca), timeout=2)
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise BaiError(f"the bai service did not answer at {url}; see /var/log/bai/bai.log")
