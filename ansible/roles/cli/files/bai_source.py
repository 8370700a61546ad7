"""The checkout the cli role installs, seen from the Ansible host (roles/cli/tasks/main.yml).

    bai_source.py digest SOURCE editable|wheel   what an install of SOURCE depends on: for an
        editable install its pyproject.toml only (the code is read in place), for a wheel the
        package's files too; the role reinstalls when it differs from the installed one's
    bai_source.py wheel SOURCE OUTDIR            build bai's wheel into OUTDIR, print its path

The wheel is built from a copy of the package's files: a build in the checkout would leave
build/ there, and stale files in build/ would end up in the wheel.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# What a wheel of bai is made of (pyproject.toml names README.md as its readme).
TOP_FILES = ("pyproject.toml", "README.md")
PACKAGE = "adapter"


def package_files(source: Path) -> list[Path]:
    found = [p for p in (source / PACKAGE).rglob("*") if p.is_file() and p.suffix != ".pyc"]
    return [source / name for name in TOP_FILES] + sorted(found)


def digest(source: Path, mode: str) -> str:
    files = [source / "pyproject.toml"] if mode == "editable" else package_files(source)
    h = hashlib.sha256()
    for path in files:
        h.update(f"{path.relative_to(source)}\0{path.stat().st_size}\0".encode())
        h.update(path.read_bytes())
    return f"{mode} {h.hexdigest()}"


def wheel(source: Path, outdir: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="bai-wheel-") as tmp:
        copy = Path(tmp) / "bai"
        skip = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(source / PACKAGE, copy / PACKAGE, ignore=skip)
        for name in TOP_FILES:
            shutil.copy2(source / name, copy / name)
        outdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(outdir), copy],
            check=True,
            stdout=sys.stderr,
        )
    (built,) = outdir.glob("bai-*.whl")
    return built


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "digest" and argv[2] in ("editable", "wheel"):
        print(digest(Path(argv[1]), argv[2]))
    elif len(argv) == 3 and argv[0] == "wheel":
        print(wheel(Path(argv[1]), Path(argv[2])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
