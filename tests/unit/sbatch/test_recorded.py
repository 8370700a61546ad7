"""adapter.sbatch.parse against what the real sbatch 22.05.8 printed for the same input.

recorded.json holds cases.json as run by record.py on the dev cluster (as alice): every prefix
of every long option, every short letter, the script checks, #SBATCH quirks, value checks,
SBATCH_* variables. Where sbatch refuses, bai must print the same bytes with the same exit
code; where sbatch's client accepts (it submits, or only slurmctld says no for reasons bai
does not check, such as a partition's limits), bai must accept. Regenerate: record.py.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from adapter.sbatch.parse import SbatchError, parse

RECORDED: list[dict[str, Any]] = json.loads(
    (pathlib.Path(__file__).parent / "recorded.json").read_text()
)

# Options bai gives to sbatch as they are whose values sbatch checks itself: bai accepts them,
# and sbatch's refusal reaches the user when the client runs sbatch.
LEFT_TO_SBATCH = {
    "--begin=",
    "--cpu-freq=",
    "--deadline=",
    "--delay-boot=",
    "--distribution=",
    "--gpu-bind=",
    "--gpu-freq=",
    "--gres-flags=",
    "--kill-on-invalid-dep=",
    "--mem-bind=",
    "--profile=",
    "--switches=",
}
# Where bai says no on purpose (refused options, hetjob separators) or has its own option.
BAI_OWN: dict[tuple[str, ...], str] = {
    ("--cluster-constraint=",): "refused",
    ("--cluster=",): "refused",
    ("--clusters=",): "refused",
    ("--gid=",): "refused",
    ("--uid=",): "refused",
    **{(f"--{'test-only'[:n]}",): "refused" for n in range(2, 10)},
    ("-J", ":", "empty.sh"): "hetjob",
    ("--experiment",): "requires an argument",
    ("--experiment=x", "--ex"): "ambiguous",
}
# slurmctld's refusals that bai does not check: the dev partition's limits, no partition.
NOT_CHECKED = (
    "sbatch: error: Batch job submission failed: No partition specified",
    "sbatch: error: Batch job submission failed: Requested time limit is invalid",
    "sbatch: error: Batch job submission failed: Invalid --nice value",  # negative, not root
)


def _ours(case: dict[str, Any]) -> tuple[str, int] | None:
    files: dict[str, bytes] = {
        k: v.encode("utf-8", "surrogateescape") for k, v in case.get("files", {}).items()
    }

    def read_file(path: str) -> bytes:
        if path not in files:
            raise FileNotFoundError(path)
        return files[path]

    def read_stdin() -> bytes:
        return str(case.get("stdin", "")).encode()

    try:
        parse(case["argv"], case.get("env", {}), read_stdin, read_file)
    except SbatchError as exc:
        return "".join(f"{line}\n" for line in exc.lines), exc.code
    return None


def _id(case: dict[str, Any]) -> str:
    env = " ".join(f"{k}={v}" for k, v in case.get("env", {}).items())
    return f"{env} sbatch {' '.join(case['argv'])}".strip()


def test_the_corpus_is_large() -> None:
    assert len(RECORDED) > 900
    assert sum(case["submitted"] for case in RECORDED) > 30


@pytest.mark.parametrize("case", RECORDED, ids=_id)
def test_as_sbatch(case: dict[str, Any]) -> None:
    ours = _ours(case)
    argv = tuple(case["argv"])
    if argv in BAI_OWN:
        assert ours is not None and ours != (case["stderr"], case["code"])
        assert BAI_OWN[argv] in ours[0] or "bai sbatch does not support" in ours[0]
        return
    if case["stderr"] and set(argv) & LEFT_TO_SBATCH:
        assert ours is None or ours[0] == "sbatch: error: Batch script is empty!\n"
        return
    if ours is None:
        assert case["code"] == 0 or case["stderr"].startswith(NOT_CHECKED), case["stderr"]
    else:
        assert ours == (case["stderr"], case["code"])
