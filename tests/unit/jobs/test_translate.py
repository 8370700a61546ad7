"""translate(): a job.json, its cluster and the site's settings into a plan, with no service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from adapter.clusters.inventory import NodeType
from adapter.errors import InvalidRequest
from adapter.jobs.translate import JobKey, JobPlan, NodeFacts, translate
from adapter.models.jobs import JobCreateParameters
from adapter.records import Cluster
from adapter.settings import Settings
from tests.unit.clusters.factories import auto, cluster, manual

KEY = JobKey("sub", "rg", "ws", "exp", "job1")
UID = "0b5a3f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
T4 = NodeType("t4x1", ("n1", "n2"), "gpu:t4:1", "t4", 1, 2, 2048, None)
FACTS = NodeFacts(T4, {"n1": "10.0.0.1", "n2": "10.0.0.2"})
CID = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws/clusters/c1"


def plan(
    props: dict[str, Any],
    on: Cluster | None = None,
    settings: Settings | None = None,
    facts: NodeFacts = FACTS,
) -> JobPlan:
    body = JobCreateParameters.model_validate(
        {"properties": {"cluster": {"id": CID}, "stdOutErrPathPrefix": "/shared", **props}}
    )
    return translate(
        KEY,
        body.properties,
        body.wire()["properties"],
        on or cluster(scale=manual(2)),
        facts,
        settings or Settings(),
        uid=UID,
        user="alice",
        share_group=None,
    )


def hvd(**settings: Any) -> dict[str, Any]:
    return {"horovodSettings": {"pythonScriptFilePath": "/shared/train.py", **settings}}


def launch_line(p: JobPlan) -> str:
    return next(line for line in p.launch.lines if line.startswith("bai_run "))


def test_a_plan_lays_the_job_out_and_its_script_carries_its_options() -> None:
    p = plan({"nodeCount": 2, **hvd(processCount=4)})
    assert (p.uid, p.tool) == (UID, "horovod")
    assert p.segment == f"sub/rg/workspaces/ws/experiments/exp/jobs/job1/{UID}"
    assert p.layout.stdouterr == f"/shared/{p.segment}/stdouterr"
    assert (p.options.partition, p.options.nodes, p.options.gres) == ("c1-012345", 2, "gpu:t4:1")
    assert p.options.comment == f"bai:{UID}" and p.options.requeue and p.options.exclusive
    assert "#SBATCH --partition=c1-012345" in p.script and "#SBATCH --nodes=2" in p.script
    assert launch_line(p) in p.script
    # The defaults of a site: PMIx, python3 found on the node, 2 a node fits 2 CPUs.
    assert "--mpi=pmix" in launch_line(p) and "--overcommit" not in launch_line(p)
    assert 'exec "$(command -v python3 || command -v python || echo python3)"' in launch_line(p)
    assert (p.capped, p.limit) == (False, timedelta(days=7))


def test_the_site_settings_reach_the_launch() -> None:
    site = Settings.model_validate(
        {"jobs": {"srun_mpi": "pmi2", "python": "/opt/py/bin/python", "mpirun_toolkits": []}}
    )
    line = launch_line(plan({"nodeCount": 2, **hvd(processCount=6)}, settings=site))
    assert "--mpi=pmi2" in line and "--overcommit" in line  # 3 a node, 2 CPUs
    assert "exec /opt/py/bin/python /shared/train.py" in line
    mpirun = Settings.model_validate({"jobs": {"mpirun_toolkits": ["horovod"]}})
    line = launch_line(plan({"nodeCount": 2, **hvd(processCount=4)}, settings=mpirun))
    assert line.startswith("bai_run mpirun -np 4 --map-by ppr:2:node --oversubscribe bash -c")


def test_script_paths_may_name_the_jobs_inputs_and_outputs() -> None:
    p = plan(
        {
            "nodeCount": 1,
            "inputDirectories": [{"id": "CODE", "path": "/shared/code"}],
            "outputDirectories": [{"id": "MODEL", "pathPrefix": "/shared/out"}],
            "chainerSettings": {
                "pythonScriptFilePath": "$AZ_BATCHAI_INPUT_CODE/train.py",
                "commandLineArgs": "--out $AZ_BATCHAI_OUTPUT_MODEL",
            },
        }
    )
    assert " /shared/code/train.py --out $AZ_BATCHAI_OUTPUT_MODEL" in launch_line(p)
    with pytest.raises(InvalidRequest, match=r"chainerSettings.pythonScriptFilePath uses \$NOPE"):
        plan({"nodeCount": 1, "chainerSettings": {"pythonScriptFilePath": "$NOPE/x.py"}})


def test_an_image_keeps_its_own_python_and_a_named_interpreter_wins() -> None:
    site = Settings.model_validate({"containers": {"runtime": "host"}})
    image = {"containerSettings": {"imageSourceRegistry": {"image": "tensorflow/tensorflow"}}}
    p = plan({"nodeCount": 1, **image, **hvd()}, settings=site)
    assert "exec python /shared/train.py" in launch_line(p)
    p = plan({"nodeCount": 1, **hvd(pythonInterpreterPath="/usr/bin/python3.11")})
    assert "exec /usr/bin/python3.11 /shared/train.py" in launch_line(p)


def test_low_priority_jobs_are_capped() -> None:
    low = cluster(priority="lowpriority", scale=manual(2))
    p = plan({"nodeCount": 1, "constraints": {"maxWallClockTime": "P2D"}, **hvd()}, on=low)
    assert (p.capped, p.limit, p.cap) == (True, timedelta(hours=24), timedelta(hours=24))
    assert p.options.time_minutes == 24 * 60 and p.options.signal == "USR1"


def test_what_the_cluster_or_site_cannot_run_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidRequest, match="more than cluster c1 can ever have") as e:
        plan({"nodeCount": 5, **hvd()}, on=cluster(scale=auto(0, 3)))
    assert e.value.target == "properties.nodeCount"
    image = {"containerSettings": {"imageSourceRegistry": {"image": "x"}}}
    with pytest.raises(InvalidRequest, match="no container runtime") as e:
        plan({"nodeCount": 1, **image, **hvd()})
    assert e.value.target == "properties.containerSettings"
