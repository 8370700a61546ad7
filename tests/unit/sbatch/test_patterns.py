"""Output file names, as the dev cluster's slurmd (22.05.8) made them for real jobs.

Jobs submitted as alice from /tmp/sbt, each running on gpu-t4-1, whose slurmd runs on the host
"vm" (so %N is "vm"); the expected names are the files those jobs left.
"""

from __future__ import annotations

import pytest

from adapter.sbatch.patterns import NO_VAL, default_output, expand


def job(pattern: str, job_id: int, name: str, task: int | None = None, array: int = 0) -> str:
    return expand(
        pattern,
        job_id=job_id,
        array_job_id=array or None,
        array_task_id=task,
        user="alice",
        job_name=name,
        node="vm",
    )


@pytest.mark.parametrize(
    ("pattern", "job_id", "name", "expected"),
    [
        # sbatch -J pj -o 'out/%x-%j-%4a.%N.log' -e 'out/e-%J-%s-%u-%b-%n-%t-%A-%a.err' a.sh
        ("out/%x-%j-%4a.%N.log", 25207, "pj", "out/pj-25207-4294967294.vm.log"),
        (
            "out/e-%J-%s-%u-%b-%n-%t-%A-%a.err",
            25207,
            "pj",
            "out/e-25207-batch-alice-%b-0-0-25207-4294967294.err",
        ),
        # sbatch -J 'weird name' -o 'out/%%j-%%%j-%z-%4z-%12q-%j%' -e 'out/x\\\\y%j' a.sh
        ("out/%%j-%%%j-%z-%4z-%12q-%j%", 25209, "weird name", "out/%j-%25209-%z-4z-2q-25209%"),
        ("out/x\\\\\\\\y%j", 25209, "weird name", "out/x\\\\y%j"),
        # sbatch -J single -o 'out/\s-%j' a.sh
        ("out/\\s-%j", 25214, "single", "out/s-%j"),
    ],
)
def test_a_job(pattern: str, job_id: int, name: str, expected: str) -> None:
    assert job(pattern, job_id, name) == expected


@pytest.mark.parametrize(
    ("task", "job_id", "expected"),
    [
        (3, 25212, "out/pa-25208_3-0003-%b-0000025212-0000025208.log"),
        (4, 25213, "out/pa-25208_4-0004-%b-0000025213-0000025208.log"),
        # The last task keeps the array's own job id.
        (12, 25208, "out/pa-25208_12-0012-%b-0000025208-0000025208.log"),
    ],
)
def test_an_array(task: int, job_id: int, expected: str) -> None:
    # sbatch -J pa -a 3-4,12 -o 'out/%x-%A_%a-%4a-%b-%10j-%12A.log' -e 'out/\\e-%j\\.txt' a.sh
    pattern = "out/%x-%A_%a-%4a-%b-%10j-%12A.log"
    assert job(pattern, job_id, "pa", task=task, array=25208) == expected
    assert job("out/\\\\e-%j\\\\.txt", job_id, "pa", task=task, array=25208) == "out/\\e-%j\\.txt"


def test_defaults() -> None:
    # Jobs 25210 (no -o) and 25211 (-a 7) wrote slurm-25210.out and slurm-25211_7.out.
    assert job(default_output(False), 25210, "pd") == "slurm-25210.out"
    assert job(default_output(True), 25211, "pd2", task=7, array=25211) == "slurm-25211_7.out"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("%", "%"),
        ("a%4", "a4"),  # a width at the end keeps its last digit
        ("%3n-%2t", "000-00"),
        ("%5s", "batch"),  # no padding for words
        ("%x%u%N", "nalicevm"),
        ("plain", "plain"),
        ("\\", ""),
    ],
)
def test_edges(pattern: str, expected: str) -> None:
    assert job(pattern, 7, "n") == expected


def test_node_index_and_task() -> None:
    name = expand(
        "%n.%t.%2n",
        job_id=1,
        array_job_id=None,
        array_task_id=None,
        user="u",
        job_name="j",
        node="h",
        node_index=3,
        task=1,
    )
    assert name == "3.1.03"
    assert NO_VAL == 4294967294
