"""The `bai` console script. `bai sbatch` is a drop-in for sbatch, run in job scripts and loops, so
it starts without the rest of the CLI (typer, rich, httpx, pydantic); every other command is the
typer CLI of adapter.cli."""

from __future__ import annotations

import sys


def main() -> int:
    """Dispatch on the first argument; the exit code is the process's."""
    if sys.argv[1:2] == ["sbatch"]:
        from adapter.sbatch import client

        return client.main(sys.argv[2:])
    from adapter import cli

    cli.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
