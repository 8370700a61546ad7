"""Names in request paths: ASCII only, bounded, and a refusal that names the parameter, what
is wrong and the rule."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adapter.errors import InvalidRequest
from adapter.models.common import check_name, check_resource_group, check_subscription

NAME_RULE = "use 1 to 64 letters, digits, '-' or '_'"
RG_RULE = "use 1 to 90 letters, digits, '-', '_' or '.'"
SUB_RULE = "use a GUID, or a name of 1 to 90 letters, digits, '-', '_' or '.'"


def job_name(value: str) -> str:
    return check_name("jobName", value)


CHECKS: dict[str, Callable[[str], str]] = {
    "jobName": job_name,
    "resourceGroupName": check_resource_group,
    "subscriptionId": check_subscription,
}


@pytest.mark.parametrize(
    ("target", "value"),
    [
        ("jobName", "a"),
        ("jobName", "job-1_A"),
        ("jobName", "x" * 64),
        ("jobName", "-"),
        ("resourceGroupName", "rg.prod-1_a"),
        ("resourceGroupName", "r" * 90),
        ("subscriptionId", "00000000-0000-0000-0000-000000000000"),
        ("subscriptionId", "6F3A9C2E-1B4D-4E8F-9A7B-0C5D2E1F3A4B"),
        ("subscriptionId", "team-a"),
        ("subscriptionId", "lab.gpu_2"),
        ("subscriptionId", "s" * 90),
    ],
)
def test_accepted(target: str, value: str) -> None:
    assert CHECKS[target](value) == value


@pytest.mark.parametrize(
    ("target", "value", "message"),
    [
        ("jobName", "", f"jobName '' is not valid: it is empty; {NAME_RULE}"),
        ("jobName", "a.b", f"jobName 'a.b' is not valid: it contains '.'; {NAME_RULE}"),
        ("jobName", "jöb", f"jobName 'j\\xf6b' is not valid: it contains '\\xf6'; {NAME_RULE}"),
        (
            "jobName",
            "名前",
            f"jobName '\\u540d\\u524d' is not valid: it contains '\\u540d'; {NAME_RULE}",
        ),
        ("jobName", "a\x00", f"jobName 'a\\x00' is not valid: it contains '\\x00'; {NAME_RULE}"),
        ("jobName", "a\n", f"jobName 'a\\n' is not valid: it contains '\\n'; {NAME_RULE}"),
        ("jobName", "a b", f"jobName 'a b' is not valid: it contains ' '; {NAME_RULE}"),
        ("jobName", "a/../b", f"jobName 'a/../b' is not valid: it contains '/'; {NAME_RULE}"),
        (
            "jobName",
            "x" * 65,
            f"jobName '{'x' * 64}'… is not valid: it is 65 characters long; {NAME_RULE}",
        ),
        (
            "jobName",
            "x" * 10_000,
            f"jobName '{'x' * 64}'… is not valid: it is 10000 characters long; {NAME_RULE}",
        ),
        ("resourceGroupName", "", f"resourceGroupName '' is not valid: it is empty; {RG_RULE}"),
        (
            "resourceGroupName",
            "rg(1)",
            f"resourceGroupName 'rg(1)' is not valid: it contains '('; {RG_RULE}",
        ),
        (
            "resourceGroupName",
            "grüppe",
            f"resourceGroupName 'gr\\xfcppe' is not valid: it contains '\\xfc'; {RG_RULE}",
        ),
        (
            "resourceGroupName",
            "rg\x00",
            f"resourceGroupName 'rg\\x00' is not valid: it contains '\\x00'; {RG_RULE}",
        ),
        (
            "resourceGroupName",
            "rg\r\n",
            f"resourceGroupName 'rg\\r\\n' is not valid: it contains '\\r'; {RG_RULE}",
        ),
        (
            "resourceGroupName",
            "r" * 10_000,
            f"resourceGroupName '{'r' * 64}'… is not valid: it is 10000 characters long; {RG_RULE}",
        ),
        ("subscriptionId", "", f"subscriptionId '' is not valid: it is empty; {SUB_RULE}"),
        (
            "subscriptionId",
            "{00000000-0000-0000-0000-000000000000}",
            f"subscriptionId '{{00000000-0000-0000-0000-000000000000}}' is not valid: it "
            f"contains '{{'; {SUB_RULE}",
        ),
        (
            "subscriptionId",
            "sub scription",
            f"subscriptionId 'sub scription' is not valid: it contains ' '; {SUB_RULE}",
        ),
        (
            "subscriptionId",
            "ｓub",  # a fullwidth letter
            f"subscriptionId '\\uff53ub' is not valid: it contains '\\uff53'; {SUB_RULE}",
        ),
        (
            "subscriptionId",
            "s\x00",
            f"subscriptionId 's\\x00' is not valid: it contains '\\x00'; {SUB_RULE}",
        ),
        (
            "subscriptionId",
            "s\n",
            f"subscriptionId 's\\n' is not valid: it contains '\\n'; {SUB_RULE}",
        ),
        (
            "subscriptionId",
            "s" * 91,
            f"subscriptionId '{'s' * 64}'… is not valid: it is 91 characters long; {SUB_RULE}",
        ),
    ],
)
def test_refused(target: str, value: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        CHECKS[target](value)
    assert (info.value.status, info.value.target, info.value.message) == (400, target, message)
