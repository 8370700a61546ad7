"""Property-based fuzzing of the live service against its own OpenAPI document (schemathesis).

Every operation of /openapi.json gets EXAMPLES generated requests in each of three ways:
schema-valid ones with generated names, schema-violating ones (negative), and valid ones
aimed at real resources made for the run (a workspace, an experiment, two clusters, a queued
job), so that bodies reach the services instead of stopping at a 404. Every answer must be no
5xx, a declared status, content type and headers, and a body that fits its schema; a
schema-violating request must be refused, and one without its token must get 401.

Everything happens in a subscription no other test uses, and no generated command runs: node
counts in generated bodies are capped (0 nodes, or 1 where 0 is not allowed), and the one
cluster aimed jobs may use has a single low-priority node that a `sleep` job holds for the
whole run, so they stay queued. The workspaces of the subscription are deleted before and
after, as an admin. docs/api.md has the why.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapter.models.jobs import TOOLKITS
from tests.e2e.service import Api, Service

FUZZ_SUB = "f0220000-0000-4000-8000-00000000f022"
EXAMPLES = int(os.environ.get("BAI_FUZZ_EXAMPLES", "6"))  # per operation and way
SEED = int(os.environ.get("BAI_FUZZ_SEED", str(random.randrange(2**32))))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]
# A schema-violating request must get one of these (the refusals the document declares).
REFUSALS = ["400", "401", "403", "404", "409", "413", "415"]
CONFIG = {
    "checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}},
    "generation": {
        # The session carries the token on every request (ignored_auth sends none by itself):
        # a "missing Authorization" negative would go out with it and be wrongly accepted.
        "with-security-parameters": False,
        # Query parameters the document does not name are ignored, as ARM does (docs/api.md):
        # an SDK or tool adding one must not break; so they are no negative data either.
        "allow-extra-parameters": False,
    },
}
NODE_CAPS = {
    "targetNodeCount": 0,
    "initialNodeCount": 0,
    "minimumNodeCount": 0,
    "maximumNodeCount": 1,
    "nodeCount": 1,
}
ADMIN = {"adminUserName": "alice"}
SCALED = {"vmSize": "t4x1", "scaleSettings": {"manual": {"targetNodeCount": 0}}}
JOBS = {
    "vmSize": "t4x1",
    "vmPriority": "lowpriority",
    "scaleSettings": {"manual": {"targetNodeCount": 1}},
}


@dataclass
class Targets:
    """The real resources the aimed requests name."""

    rg: str = "fuzz"
    ws: str = "ws"
    exp: str = "exp"
    cluster: str = "scaled"  # the cluster PATCH, GET and DELETE name: no nodes
    jobs_cluster: str = "jobs"  # every aimed job's: one node, held by the blocker job
    blocker: str = "blocker"  # never named by a generated request
    job: str = "queued"  # queued behind the blocker
    operation: str | None = None

    def path(self, path: str, method: str) -> dict[str, str]:
        """Path parameters naming them; a PUT names new children of them."""
        leaf = {"experiments": self.exp, "clusters": self.cluster, "jobs": self.job}
        names = {"sub": FUZZ_SUB, "rg": self.rg, "ws": self.ws, "exp": self.exp}
        names["location"] = "onprem"
        if self.operation:
            names["op_id"] = self.operation
        parts = path.split("/")
        if "{name}" in parts and method != "PUT":
            names["name"] = leaf[parts[parts.index("{name}") - 1]]
        return {k: v for k, v in names.items() if "{" + k + "}" in path}

    def cluster_id(self) -> str:
        return (
            f"/subscriptions/{FUZZ_SUB}/resourceGroups/{self.rg}/providers/Microsoft.BatchAI"
            f"/workspaces/{self.ws}/clusters/{self.jobs_cluster}"
        )


@dataclass
class Tally:
    """What the run sent and saw."""

    operations: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)
    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"fuzz (seed {SEED}): {len(self.operations)} operations, {self.examples} examples "
            f"in {time.monotonic() - self.started:.0f} s, "
            f"{self.server_errors} 5xx, {len(self.failures)} failing operation runs "
            f"[{statuses}]"
        )


def cap_nodes(value: Any) -> None:
    """Node counts in a generated body lowered to NODE_CAPS, in place (98.0 is an integer to
    JSON Schema and to pydantic alike)."""
    if isinstance(value, dict):
        for key, item in value.items():
            cap = NODE_CAPS.get(key)
            number = isinstance(item, int | float) and not isinstance(item, bool)
            if cap is not None and number and item > cap:
                value[key] = cap
            else:
                cap_nodes(item)
    elif isinstance(value, list):
        for item in value:
            cap_nodes(item)


def aim_body(case: Case[Any], targets: Targets) -> Case[Any]:
    """A valid body made to pass the rules JSON Schema does not carry (one toolkit, one kind of
    scaling, an existing user, an absolute path), so it reaches the services: jobs go to the
    blocked cluster, clusters ask for a real node type."""
    props = case.body.get("properties") if isinstance(case.body, dict) else None
    if not isinstance(props, dict) or case.method.upper() != "PUT":
        return case
    if case.path.endswith("/jobs/{name}"):
        props["cluster"] = {"id": targets.cluster_id()}
        props["stdOutErrPathPrefix"] = "$AZ_BATCHAI_MOUNT_ROOT/fuzz"
        given = [key for key in TOOLKITS if props.get(key) is not None]
        for key in given[1:]:
            del props[key]
        if not given:
            props["customToolkitSettings"] = {"commandLine": "true"}
    elif case.path.endswith("/clusters/{name}"):
        props["vmSize"] = "t4x1"
        props["userAccountSettings"] = {"adminUserName": "alice"}
        scale = props.get("scaleSettings")
        if isinstance(scale, dict) and scale.get("manual") is not None:
            scale.pop("autoScale", None)
        elif isinstance(scale, dict) and scale.get("autoScale") is not None:
            scale.pop("manual", None)
        else:
            props["scaleSettings"] = {"manual": {"targetNodeCount": 0}}
    return case


def fuzz_operation(
    operation: Any,
    strategy: st.SearchStrategy[Case[Any]],
    way: str,
    base_url: str,
    session: requests.Session,
    tally: Tally,
) -> None:
    """EXAMPLES generated requests of one operation, one way; failures are recorded, not
    raised, so every operation is fuzzed whatever another one did."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,  # no .hypothesis/ in the tree
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    @seed(SEED)
    @given(case=strategy)
    def run(case: Case[Any]) -> None:
        cap_nodes(case.body)
        sent: dict[str, Any] = {
            "base_url": base_url,
            "session": session,
            "verify": session.verify,
            "timeout": 30,
        }
        response = case.call(**sent)
        tally.examples += 1
        tally.statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, transport_kwargs=sent)

    tally.operations.add(operation.label)
    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # reported at the end, with the others
        tally.failures.append(f"{operation.label} ({way}):\n{describe(exc)}")


def describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "\n".join(describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def order(operation: Any) -> tuple[bool, int, str]:
    """Deletions last, children before parents, so the aimed resources live until then."""
    return (operation.method.upper() == "DELETE", -operation.path.count("/"), operation.label)


def fuzz(service: Service, token: str, targets: Targets, doc: dict[str, Any]) -> Tally:
    """Every operation of `doc`, fuzzed against the service with the token."""
    schema = schemathesis.openapi.from_dict(doc, config=schemathesis.Config.from_dict(CONFIG))
    session = requests.Session()
    session.verify = service.ca
    session.headers["Authorization"] = f"Bearer {token}"
    tally = Tally()
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"an operation of the document is invalid: {result.err()}"
        operations.append(result.ok())
    operations.sort(key=order)
    for operation in operations:
        method, path = operation.method.upper(), operation.path
        free = {"sub": FUZZ_SUB} if "{sub}" in path else {}
        aimed = operation.as_strategy(
            path_parameters=targets.path(path, method),
            query={"outputdirectoryid": "stdouterr"} if "listOutputFiles" in path else None,
        )
        ways = {
            "valid": operation.as_strategy(path_parameters=free),
            "negative": operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=free),
            "aimed": aimed.map(lambda case: aim_body(case, targets)),
        }
        for way, strategy in ways.items():
            fuzz_operation(operation, strategy, way, service.url, session, tally)
    session.close()
    return tally


def make_targets(service: Service, token: str) -> Targets:
    targets = Targets()
    api = Api(service, token, rg=targets.rg, sub=FUZZ_SUB)
    api.workspace(targets.ws)
    api.experiment(targets.ws, targets.exp)
    api.cluster(targets.ws, targets.cluster, {**SCALED, "userAccountSettings": ADMIN})
    api.cluster(targets.ws, targets.jobs_cluster, {**JOBS, "userAccountSettings": ADMIN})
    job = {
        "cluster": {"id": targets.cluster_id()},
        "nodeCount": 1,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/fuzz",
        "customToolkitSettings": {"commandLine": "sleep 600"},
    }
    api.job(targets.ws, targets.exp, targets.blocker, job)
    api.wait_job(
        targets.ws, targets.exp, targets.blocker, lambda p: p["executionState"] == "running"
    )
    api.job(targets.ws, targets.exp, targets.job, job)
    # A finished operation, for the operation status endpoints.
    api.experiment(targets.ws, "gone")
    gone = api.call("DELETE", api.path("workspaces", targets.ws, "experiments", "gone"))
    status_url = gone.headers.get("Azure-AsyncOperation", "")
    targets.operation = status_url.split("?")[0].rsplit("/", 1)[-1] or None
    api.close()
    return targets


def remove_fuzz_workspaces(service: Service, admin_token: str, timeout: float = 120) -> None:
    """Every workspace of the fuzz subscription, deleted side by side."""
    api = Api(service, admin_token, sub=FUZZ_SUB)
    listing = api.call("GET", f"/subscriptions/{FUZZ_SUB}/providers/Microsoft.BatchAI/workspaces")
    pending = []
    for ws in listing.json()["value"]:
        response = api.call("DELETE", ws["id"], ok=(200, 202, 404))
        if response.status_code == 202:
            pending.append(response.headers["Azure-AsyncOperation"])
    deadline = time.monotonic() + timeout
    while pending:
        assert time.monotonic() < deadline, f"workspaces not deleted after {timeout} s"
        time.sleep(0.5)
        pending = [url for url in pending if api.http.get(url).json()["status"] == "InProgress"]
    api.close()


@pytest.fixture
def fuzz_subscription(service: Service) -> Iterator[None]:
    admin = service.token("root", admin=True)
    remove_fuzz_workspaces(service, admin)  # what an interrupted run left
    yield
    remove_fuzz_workspaces(service, admin)


@pytest.fixture
def hypothesis_home(tmp_path: Path) -> Iterator[None]:
    """Hypothesis keeps caches in ./.hypothesis; this run keeps them out of the tree."""
    set_hypothesis_home_dir(tmp_path / "hypothesis")
    yield
    set_hypothesis_home_dir(None)


def test_fuzz_every_operation(
    service: Service,
    fuzz_subscription: None,
    hypothesis_home: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = service.token("alice")
    doc = httpx.get(service.url + "/openapi.json", verify=service.tls(), timeout=30).json()
    tally = fuzz(service, token, make_targets(service, token), doc)
    with capsys.disabled():
        print(f"\n{tally.summary()}")
    assert tally.operations, "the document lists no operation"
    assert not tally.failures, "\n\n".join([tally.summary(), *tally.failures])
