"""`bai sbatch` against Slurm's own `sbatch`, call for call, in one run.

Run after `make dev`, as root:   .venv/bin/python bench/sbatch.py [-n 40]

As alice, in one working directory, the same scripts are submitted N times each through
`sbatch` and through `bai sbatch` (munge, no token: as a user on a login host), taking turns
call by call so both see the same Slurm. Each call's wall time is measured from outside (the
process started and ended); it prints p50 and p99 of each and the ratio bai/raw. The target:
`bai sbatch` costs at most 3x a raw sbatch call. It also prints the start-up floor: `python -c
pass`, `bai version` and `bai sbatch --usage` (which reads its arguments and runs
`sbatch --usage`) against `sbatch --usage` itself.
"""

from __future__ import annotations

import argparse
import os
import pwd
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devapi import dev_cluster, env

USER = "alice"
BAI = str(Path(sys.executable).parent / "bai")
SCRIPTS = {
    "plain": "#!/bin/bash\ntrue\n",
    "directives": (
        "#!/bin/bash\n"
        "#SBATCH --job-name=bench -N 1 --ntasks-per-node=1   # several on one line\n"
        "#SBATCH --output=/dev/null --comment='bench run'\n"
        "#SBATCH --time=10\n"
        "true\n"
    ),
    "array": "#!/bin/bash\n#SBATCH --array=0-3 -o /dev/null\ntrue\n",
}


def user_env(extra: dict[str, str]) -> dict[str, str]:
    entry = pwd.getpwnam(USER)
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": entry.pw_dir, "USER": USER}
    return {**base, "LANG": "C.UTF-8", **extra}


def timed(argv: list[str], cwd: str, environ: dict[str, str]) -> float:
    switch = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "--"]
    started = time.perf_counter()
    result = subprocess.run(switch + argv, cwd=cwd, env=environ, capture_output=True, text=True)
    took = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return took


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(label: str, raw: list[float], bai: list[float]) -> str:
    p50r, p50b = statistics.median(raw), statistics.median(bai)
    p99r, p99b = pct(raw, 0.99), pct(bai, 0.99)
    return (
        f"{label:<12} {p50r * 1000:7.1f} {p99r * 1000:7.1f}   {p50b * 1000:7.1f} "
        f"{p99b * 1000:7.1f}   {p50b / p50r:5.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40, help="calls of each kind per script")
    args = parser.parse_args()
    e = env()
    # As an installed bai is: its modules compiled (users cannot write the checkout's caches).
    subprocess.run([sys.executable, "-m", "compileall", "-q", "adapter"], check=True)
    bai_env = user_env({"BAI_URL": e["BAI_URL"], "BAI_CA": e["BAI_CA"]})
    raw_env = user_env({})
    with dev_cluster("t4x1") as dev, tempfile.TemporaryDirectory(dir="/tmp") as work:
        os.chown(work, pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid)
        for name, text in SCRIPTS.items():
            Path(work, f"{name}.sh").write_text(text)
        part = ["-p", dev.partition]
        print(f"{args.n} calls of each, as {USER}, partition {dev.partition}\n")
        print(f"{'':<12} {'sbatch (ms)':>15}   {'bai sbatch (ms)':>15}   bai/raw")
        print(f"{'script':<12} {'p50':>7} {'p99':>7}   {'p50':>7} {'p99':>7}   (p50)")
        everything_raw: list[float] = []
        everything_bai: list[float] = []
        for name in SCRIPTS:
            raw: list[float] = []
            bai: list[float] = []
            timed(["sbatch", *part, f"{name}.sh"], work, raw_env)  # warm both paths once
            timed([BAI, "sbatch", *part, f"{name}.sh"], work, bai_env)
            for _ in range(args.n):
                raw.append(timed(["sbatch", *part, f"{name}.sh"], work, raw_env))
                bai.append(timed([BAI, "sbatch", *part, f"{name}.sh"], work, bai_env))
            subprocess.run(["scancel", "-p", dev.partition], check=False)
            print(row(name, raw, bai))
            everything_raw += raw
            everything_bai += bai
        print(row("all", everything_raw, everything_bai))
        print("\nstart-up (p50 of 20, ms)")
        floor = [timed([sys.executable, "-c", "pass"], work, raw_env) for _ in range(20)]
        version = [timed([BAI, "version"], work, bai_env) for _ in range(20)]
        usage_raw = [timed(["sbatch", "--usage"], work, raw_env) for _ in range(20)]
        usage_bai = [timed([BAI, "sbatch", "--usage"], work, bai_env) for _ in range(20)]
        print(f"  python -c pass      {statistics.median(floor) * 1000:7.1f}")
        print(f"  bai version         {statistics.median(version) * 1000:7.1f}")
        print(f"  sbatch --usage      {statistics.median(usage_raw) * 1000:7.1f}")
        print(f"  bai sbatch --usage  {statistics.median(usage_bai) * 1000:7.1f}")
        ratio = statistics.median(everything_bai) / statistics.median(everything_raw)
        verdict = "meets" if ratio <= 3 else "misses"
        print(f"\nbai sbatch costs {ratio:.2f}x a raw sbatch call (p50): {verdict} the 3x target")


if __name__ == "__main__":
    main()
