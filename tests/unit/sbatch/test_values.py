"""Value checks, as sbatch 22.05 and slurmctld make them (messages from the dev cluster)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adapter.sbatch import values
from adapter.sbatch.options import SbatchError
from adapter.sbatch.values import ArraySpec, SignalSpec

SUBMIT = "sbatch: error: Batch job submission failed: "


def error(
    call: Callable[..., object], *args: object, **kwargs: object
) -> tuple[tuple[str, ...], int]:
    with pytest.raises(SbatchError) as caught:
        call(*args, **kwargs)
    return caught.value.lines, caught.value.code


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("5", 5),
        ("0:30", 1),  # seconds round up
        ("1:00", 1),
        ("5:01", 6),
        ("1:02:03", 63),
        ("2-0", 2880),
        ("1-", 1440),  # job 25225 was accepted
        ("1-2", 1560),
        ("1-2:3", 1563),
        ("1-2:3:4", 1564),
        ("0", None),  # sbatch makes 0 no limit
        ("-1", None),
        ("UNLIMITED", None),
        ("infinite", None),
    ],
)
def test_parse_time(text: str, minutes: int | None) -> None:
    assert values.parse_time(text) == minutes


@pytest.mark.parametrize("text", ["abc", "1:2:3:4", "5:", "1-2:3:4:5", "", "1--2", "1:2-3", "1h"])
def test_parse_time_errors(text: str) -> None:
    assert error(values.parse_time, text) == (("sbatch: error: Invalid --time specification",), 255)
    assert error(values.parse_time, text, "--time-min")[0] == (
        "sbatch: error: Invalid --time-min specification",
    )


def test_parse_time_negative_is_slurmctld_s_refusal() -> None:
    assert error(values.parse_time, "-5") == (
        (SUBMIT + "Requested time limit is invalid (missing or exceeds some limit)",),
        1,
    )


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("0-15", ArraySpec(tuple(range(16)), None)),
        ("0,6,16-32", ArraySpec((0, 6, *range(16, 33)), None)),
        ("0-15:4", ArraySpec((0, 4, 8, 12), None)),
        ("0-15%4", ArraySpec(tuple(range(16)), 4)),
        ("0-15%", ArraySpec(tuple(range(16)), None)),  # accepted, no limit
        ("%4", ArraySpec((0,), 4)),  # slurmctld reads an empty index as 0
        ("[1-3]", ArraySpec((1, 2, 3), None)),
        ("1,,2", ArraySpec((1, 2), None)),
        ("1000", ArraySpec((1000,), None)),
        ("", ArraySpec((), None)),  # no array
    ],
)
def test_parse_array(text: str, spec: ArraySpec) -> None:
    assert values.parse_array(text) == spec


@pytest.mark.parametrize(
    "text", ["abc", "5-1", "0-15:0", "0-2000000", "1001", "0-10:1001", "-1", "1-"]
)
def test_parse_array_errors(text: str) -> None:
    assert error(values.parse_array, text) == ((SUBMIT + "Invalid job array specification",), 1)


def test_parse_array_follows_max_array_size() -> None:
    assert values.parse_array("1500", max_array_size=2000).indices == (1500,)


@pytest.mark.parametrize(
    ("text", "nodes"),
    [
        ("2", (2, 2)),
        ("2-4", (2, 4)),
        ("0", (0, None)),
        ("-1", (1, 1)),  # job 25173 was accepted: an empty minimum is 1
        ("2-0", (2, None)),
        ("1k", (1024, 1024)),
        (" 3", (3, 3)),
        ("3 ", (3, 3)),
    ],
)
def test_parse_nodes(text: str, nodes: tuple[int, int | None]) -> None:
    assert values.parse_nodes(text) == nodes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", '"abc" is not a valid node count'),
        ("", '"" is not a valid node count'),
        ("1-2-3", '"2-3" is not a valid node count'),
        ("x-3", '"x" is not a valid node count'),
        ("2-1", "Maximum node count 1 is less than minimum node count 2"),
        ("-", "Maximum node count -1 is less than minimum node count 1"),
    ],
)
def test_parse_nodes_errors(text: str, message: str) -> None:
    assert error(values.parse_nodes, text) == ((f"sbatch: error: {message}",), 255)


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("USR1", SignalSpec(10, 60, False, False)),
        ("SIGUSR2@90", SignalSpec(12, 90, False, False)),
        ("B:USR1@300", SignalSpec(10, 300, True, False)),
        ("R:10@5", SignalSpec(10, 5, False, True)),
        ("RB:sigusr1", SignalSpec(10, 60, True, True)),
        ("BR:TERM", SignalSpec(15, 60, True, True)),
        ("65537", SignalSpec(1, 60, False, False)),  # a uint16_t in sbatch
        ("USR1@", SignalSpec(10, 0, False, False)),
    ],
)
def test_parse_signal(text: str, spec: SignalSpec) -> None:
    assert values.parse_signal(text) == spec


@pytest.mark.parametrize("text", ["FOO", "B:USR1@abc", "65536", "USR1@70000", "", "0", "USR1@-1"])
def test_parse_signal_errors(text: str) -> None:
    assert error(values.parse_signal, text) == (
        ("sbatch: error: Invalid --signal specification",),
        255,
    )


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("afterok:20:21,afterany:23", (20, 21, 23)),
        ("afterok:5?afterany:6", (5, 6)),
        ("AFTEROK:5", (5,)),
        ("singleton", ()),
        ("singleton,afterok:5", (5,)),
        ("5,6", (5, 6)),
        ("afterok:5+3", (5,)),
        ("afterok:5+3x", (5,)),  # slurmctld stops there and takes it
        ("afterok:5_2", (5,)),
        ("afterok:5_*", (5,)),
        ("afterok:5_[1-3]", (5,)),
        ("afterok:5_[x]", (5,)),  # bit_unfmt skips what is not a digit: task 0
        ("afterok:5(failed)", (5,)),
        ("afterburstbuffer:5", (5,)),
        ("afternotok:7,aftercorr:8,after:9", (7, 8, 9)),
        ("0", ()),
        ("", ()),
    ],
)
def test_parse_dependency(text: str, ids: tuple[int, ...]) -> None:
    assert values.parse_dependency(text) == ids


@pytest.mark.parametrize(
    "text",
    ["foo", "afterok:abc", "afterok:5+0", "afterok:5,", "afterok:5:", "afterok:", "afterok:5("]
    + ["singleton,", "singletonx", "5,x", "5x", "afterok:5_[]", "afterok:5_[5000]"]
    + ["afterok:5_[3-3:1]", "afterok:5(failed),afterok:x", "after:5)("],
)
def test_parse_dependency_errors(text: str) -> None:
    assert error(values.parse_dependency, text) == ((SUBMIT + "Job dependency problem",), 1)


def test_parse_dependency_expand() -> None:
    assert error(values.parse_dependency, "expand:5")[0] == (
        SUBMIT + "Requested operation not supported on this system",
    )


@pytest.mark.parametrize(
    ("text", "count"), [("2", 2), ("+2", 2), (" 2", 2), ("99999999999", 1215752191)]
)
def test_parse_count(text: str, count: int) -> None:
    assert values.parse_count(text, "--ntasks") == count


@pytest.mark.parametrize("text", ["0", "abc", "2 ", "", "-1"])
def test_parse_count_errors(text: str) -> None:
    assert error(values.parse_count, text, "--ntasks") == (
        (f'sbatch: error: Invalid numeric value "{text}" for --ntasks.',),
        1,
    )
    assert error(values.parse_count, "99999999999999999999", "-n")[0] == (
        "sbatch: error: Numeric argument (9223372036854775807) to big for -n.",
    )


@pytest.mark.parametrize(
    ("text", "mb"), [("4096", 4096), ("4G", 4096), ("1KB", 1), ("1025k", 2), ("1t", 1048576)]
)
def test_parse_memory(text: str, mb: int) -> None:
    assert values.parse_memory(text) == mb


@pytest.mark.parametrize("text", ["abc", "1Kx", "-1", "", "1X", "1GiB"])
def test_parse_memory_errors(text: str) -> None:
    assert error(values.parse_memory, text, "--mem-per-cpu") == (
        ("sbatch: error: Invalid --mem-per-cpu specification",),
        255,
    )


def test_small_checks() -> None:
    assert values.parse_mail_type("begin,foo,END") == ("BEGIN", "END")
    assert values.parse_mail_type("BEGIN,NONE") == ()
    assert error(values.parse_mail_type, "FOO")[0] == (
        "sbatch: error: Invalid --mail-type specification",
    )
    assert error(values.parse_mail_type, "")[0] == (
        "sbatch: error: Invalid --mail-type specification",
    )
    assert values.parse_nice(None) == 100
    assert values.parse_nice("-2147483645") == -2147483645
    assert values.parse_nice("abc") == 0  # strtoll
    assert error(values.parse_nice, "3000000000") == (
        ("sbatch: error: Invalid --nice value, out of range (+/- 2147483645)",),
        255,
    )
    assert values.parse_open_mode("Append") == "append"
    assert values.parse_open_mode("t") == "truncate"
    assert error(values.parse_open_mode, "x")[0] == (
        "sbatch: error: Invalid --open-mode specification",
    )
    assert values.parse_exclusive(None) == "exclusive"
    assert values.parse_exclusive("USER") == "user"
    assert error(values.parse_exclusive, "")[0] == (
        "sbatch: error: Invalid --exclusive specification",
    )
    assert values.parse_no_kill("OFF") is False
    assert error(values.parse_no_kill, "x")[0] == (
        "sbatch: error: Invalid --no-kill specification",
    )
    assert values.parse_get_user_env("10L") == (10, "L")
    assert error(values.parse_get_user_env, "5x")[0] == (
        "sbatch: error: Invalid --get-user-env specification",
    )
    assert values.parse_wait_all_nodes("1") == 1
    assert error(values.parse_wait_all_nodes, "2")[0] == (
        "sbatch: error: Invalid --wait-all-nodes specification",
    )


def test_strtol() -> None:
    assert values.strtol("  -12x") == (-12, 5)
    assert values.strtol("x") == (0, 0)
    assert values.strtol("a+", 1) == (0, 1)
    assert values.strtol("9" * 30) == (2**63 - 1, 30)
