"""What the `bai sbatch` client sends the service: what sbatch read, bai's own choices apart."""

from __future__ import annotations

from adapter.sbatch.client import request_body
from adapter.sbatch.parse import parse

SCRIPT = b"#!/bin/sh\n#SBATCH -N 2 --comment='a b'\ntrue\n"


def body(argv: list[str], environ: dict[str, str]) -> dict[str, object]:
    parsed = parse(argv, environ, lambda: SCRIPT, lambda path: SCRIPT)
    return request_body(parsed, environ, "/home/alice/run")


def test_the_partition_and_experiment_are_bais_and_the_rest_goes_as_read() -> None:
    sent = body(["-p", "ws/c", "--experiment=e1", "-t", "5", "job.sh", "x"], {})
    assert sent["partition"] == "ws/c" and sent["experiment"] == "e1"
    assert sent["options"] == [
        {"name": "nodes", "value": "2", "source": "directive"},
        {"name": "comment", "value": "a b", "source": "directive"},
        {"name": "time", "value": "5", "source": "command line"},
    ]
    assert (sent["scriptName"], sent["args"], sent["workdir"]) == (
        "job.sh",
        ["x"],
        "/home/alice/run",
    )
    assert sent["script"] == SCRIPT.decode()


def test_bai_experiment_and_sbatch_partition_come_from_the_environment() -> None:
    sent = body(["job.sh"], {"BAI_EXPERIMENT": "nightly", "SBATCH_PARTITION": "c"})
    assert (sent["partition"], sent["experiment"]) == ("c", "nightly")
    # The option wins over the variable, as sbatch's command line over its variables.
    assert body(["--experiment=e2", "job.sh"], {"BAI_EXPERIMENT": "n"})["experiment"] == "e2"
    assert body(["job.sh"], {})["experiment"] is None  # the service's default: sbatch
