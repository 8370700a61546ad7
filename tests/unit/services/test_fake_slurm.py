"""FakeSlurm answers as the real backends do where the layers above depend on it: job records
as `job_from_fields` makes them, sbatch's refusals, idempotent cancel, counted requeues, and the
include file written before the live change."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from adapter.backends import partition_conf
from adapter.backends.base import PartitionSpec, SlurmBackend
from adapter.backends.fake import FakeSlurm
from adapter.backends.slurm_options import SlurmOptions
from adapter.errors import BackendError, BackendUnavailable

T0 = datetime(2026, 12, 1, 12, 0, 0, 700_000, tzinfo=UTC)
INCLUDE = "/etc/slurm/bai/partitions.conf"


def carrying(options: SlurmOptions) -> str:
    """A script whose `#SBATCH` lines are the options, as bai renders one."""
    return "#!/bin/bash\n" + "".join(f"{d}\n" for d in options.directives()) + "\necho hi\n"


async def submit(fake: FakeSlurm, *, user: str = "alice", **given: Any) -> int:
    """A job as bai submits one: its options as data, and a script carrying them."""
    options = SlurmOptions(**given)
    return await fake.submit_job(options, carrying(options), user=user)


def slurm(*partitions: PartitionSpec) -> FakeSlurm:
    fake = FakeSlurm(clock=lambda: T0, first_job_id=100)
    for name in ("n1", "n2", "n3"):
        fake.add_node(name, "a100", 2)
    fake.add_node("t1", "t4", 1)
    for spec in partitions:
        fake.add_partition(spec)
    return fake


P = PartitionSpec(name="p", nodes=("n1", "n2"), allow_groups=("alice",))
LOW = PartitionSpec(name="low", nodes=("n1", "n2"), preempt_mode="REQUEUE", max_time_minutes=1440)


def test_it_is_a_slurm_backend() -> None:
    backend: SlurmBackend = FakeSlurm()  # mypy checks the whole protocol here
    assert backend is not None


async def test_submit_gives_increasing_ids_and_records_what_was_sent() -> None:
    fake = slurm(P)
    first = await submit(fake, partition="p", comment="bai:u1")
    second = await submit(fake, partition="p", nodes=2)
    assert (first, second) == (100, 101)
    assert [(j.user, j.options.comment, j.options.nodes) for j in fake.submitted] == [
        ("alice", "bai:u1", None),
        ("alice", None, 2),
    ]
    (a, b) = await fake.jobs(["p"])
    assert (a.state, a.state_reason, a.comment, a.node_count, b.node_count) == (
        "PENDING",
        "None",
        "bai:u1",
        1,
        2,
    )
    # Slurm's times are whole seconds; a pending job has no start time and no exit status yet.
    assert a.submit_time == T0.replace(microsecond=0)
    assert (a.start_time, a.end_time, a.exit_status, a.requeue) == (None, None, None, True)
    assert await fake.jobs(["other"]) == []


async def test_submit_job_takes_the_options_as_data_and_checks_the_script_against_them() -> None:
    fake = slurm(P)
    options = SlurmOptions(partition="p", nodes=2, comment="bai:u2", requeue=False)
    text = "#!/bin/bash\n" + "\n".join(options.directives()) + "\necho hi\n"
    job_id = await fake.submit_job(options, text, user="alice")
    assert fake.job(job_id).options == options
    (job,) = await fake.jobs(["p"])
    assert (job.comment, job.node_count, job.requeue) == ("bai:u2", 2, False)
    with pytest.raises(BackendError, match="are not those of its options"):
        await fake.submit_job(options, carrying(SlurmOptions(partition="p")), user="alice")
    assert len(fake.submitted) == 1


async def test_a_script_that_comes_as_text_is_read_as_sbatch_reads_it() -> None:
    fake = slurm(P)
    job_id = await fake.submit(
        "#!/bin/bash\n#SBATCH -p p\ntrue\n", user="alice", args=["--nodes=2"]
    )
    sent = fake.job(job_id)
    assert (sent.args, sent.options) == (("--nodes=2",), SlurmOptions(partition="p", nodes=2))
    with pytest.raises(BackendError, match="does not handle the sbatch option"):
        await fake.submit("#!/bin/bash\n#SBATCH -p p\n#SBATCH --array=1-3\ntrue\n", user="alice")
    assert len(fake.submitted) == 1


@pytest.mark.parametrize(
    ("given", "user", "says"),
    [
        ({"partition": "nope"}, "alice", "Invalid partition name specified"),
        ({}, "alice", "Invalid partition name specified"),
        ({"partition": "p"}, "bob", "User's group not permitted to use this partition"),
        ({"partition": "p", "nodes": 3}, "alice", "Node count specification invalid"),
        ({"partition": "low", "time_minutes": 1441}, "alice", "Requested time limit is invalid"),
        ({"partition": "p", "reservation": "r"}, "alice", "Requested reservation is invalid"),
        ({"partition": "p", "nodelist": "n3"}, "alice", "Requested node configuration"),
    ],
)
async def test_sbatch_refuses_what_slurm_refuses(
    given: dict[str, Any], user: str, says: str
) -> None:
    fake = slurm(P, LOW)
    with pytest.raises(BackendError, match=says) as info:
        await submit(fake, user=user, **given)
    assert not isinstance(info.value, BackendUnavailable)
    assert fake.submitted == []


async def test_a_drained_partition_takes_no_new_job_and_an_unknown_user_is_unavailable() -> None:
    fake = slurm(PartitionSpec(name="p", nodes=("n1",), state="DRAIN"))
    with pytest.raises(BackendError, match="Required partition not available"):
        await submit(fake, partition="p")
    with pytest.raises(BackendUnavailable, match="no Unix user 'nobody-here'"):
        await submit(fake, partition="p", user="nobody-here")


async def test_a_job_runs_and_ends_as_squeue_reports_it() -> None:
    fake = slurm(P)
    ok = await submit(fake, partition="p", nodes=2)
    assert fake.start(ok) == ("n1", "n2")
    (running,) = await fake.jobs(["p"])
    assert (running.state, running.nodes, running.batch_host) == ("RUNNING", ("n1", "n2"), "n1")
    assert running.start_time is not None and running.exit_status is None
    nodes = {n.name: n for n in await fake.nodes()}
    assert (nodes["n1"].state, nodes["n1"].gpus_used, nodes["n3"].state) == ("ALLOCATED", 2, "IDLE")
    assert nodes["n1"].partitions == ("p",) and nodes["t1"].features == ("t4x1",)

    fake.finish(ok, 3)
    (failed,) = await fake.jobs(["p"])
    assert (failed.state, failed.exit_status, failed.term_signal) == ("FAILED", 3, None)
    assert failed.end_time is not None and failed.finished
    assert {n.state for n in await fake.nodes()} == {"IDLE"}

    fake.forget(ok)
    assert await fake.jobs(["p"]) == []


async def test_cancel_is_idempotent_and_says_how_the_job_ended() -> None:
    fake = slurm(P)
    pending = await submit(fake, partition="p")
    running = await submit(fake, partition="p")
    fake.start(running)
    for job_id in (pending, running, pending, 999):  # again, and one Slurm never knew
        await fake.cancel(job_id)
    by_id = {j.job_id: j for j in await fake.jobs(["p"])}
    # Cancelled while pending: no nodes, no start time, exit 0; while running: SIGTERM.
    assert (by_id[pending].state, by_id[pending].start_time) == ("CANCELLED", None)
    assert (by_id[pending].exit_status, by_id[pending].term_signal) == (0, None)
    assert (by_id[running].state, by_id[running].term_signal) == ("CANCELLED", 15)
    assert fake.cancelled == [pending, running, pending, 999]


async def test_requeue_and_preemption_count_restarts_and_wait_for_begin_time() -> None:
    fake = slurm(LOW)
    job_id = await submit(fake, partition="low", signal="USR1", signal_seconds=60)
    fake.start(job_id)
    fake.preempt(job_id)
    (job,) = await fake.jobs(["low"])
    assert (job.state, job.state_reason, job.restart_count, job.nodes) == (
        "PENDING",
        "BeginTime",
        1,
        (),
    )
    with pytest.raises(BackendError, match="Job is pending execution"):
        await fake.requeue(job_id)
    fake.start(job_id)
    fake.finish(job_id, 0)
    await fake.requeue(job_id)  # a finished job Slurm remembers may be requeued too
    (job,) = await fake.jobs(["low"])
    assert (job.state, job.restart_count, job.exit_status) == ("PENDING", 2, None)
    assert fake.requeued == [job_id]


async def test_a_job_that_may_not_requeue_ends_when_preempted_or_its_node_fails() -> None:
    fake = slurm(LOW)
    first = await submit(fake, partition="low", requeue=False)
    second = await submit(fake, partition="low", requeue=False)
    fake.start(first, ["n1"])
    fake.start(second, ["n2"])
    with pytest.raises(BackendError, match="presently disabled"):
        await fake.requeue(first)
    fake.preempt(first)
    assert fake.fail_node("n2") == [second]
    states = {j.job_id: (j.state, j.restart_count) for j in await fake.jobs(["low"])}
    assert states == {first: ("PREEMPTED", 0), second: ("NODE_FAIL", 0)}
    n2 = next(n for n in await fake.nodes() if n.name == "n2")
    assert n2.state == "DOWN" and not n2.usable


async def test_schedule_fills_free_nodes_oldest_first_and_leaves_held_jobs() -> None:
    fake = slurm(P)
    ids = [await submit(fake, partition="p") for _ in range(3)]
    fake.hold(ids[0])
    assert fake.schedule() == ids[1:]
    assert fake.schedule() == []  # both nodes are taken now
    with pytest.raises(ValueError, match="needs 1 free node"):
        fake.start(ids[0])
    with pytest.raises(ValueError, match="needs 1 free node"):
        fake.start(ids[0], ["n3"])  # not a node of its partition
    queued = await submit(fake, partition="p")
    fake.add_partition(dataclasses.replace(P, state="DRAIN"))
    fake.finish(ids[1])
    assert fake.schedule() == [queued]  # a drained partition still runs what was queued


async def test_a_reserved_node_runs_only_its_reservations_jobs() -> None:
    fake = slurm(P)
    await fake.reserve_node("setup-n1", "n1", "alice")
    await fake.reserve_node("setup-n1", "n1", "alice")  # idempotent
    plain = await submit(fake, partition="p")
    setup = await submit(fake, partition="p", reservation="setup-n1", nodelist="n1")
    assert fake.start(plain) == ("n2",)
    assert fake.start(setup) == ("n1",)
    await fake.release_reservation("setup-n1")
    await fake.release_reservation("setup-n1")  # one Slurm no longer knows is not an error
    assert fake.reservations == {}


async def test_partitions_go_to_the_include_file_first_and_leave_it_last() -> None:
    fake = slurm()
    low = PartitionSpec(
        name="c1-abc123", nodes=("n1",), preempt_mode="REQUEUE", max_time_minutes=1440
    )
    await fake.apply_partition(low)
    text = await fake.runner.read_text(INCLUDE)
    assert text == partition_conf.upsert_partition("", low)
    assert await fake.configured_partitions() == ["c1-abc123"]
    (live,) = await fake.partitions()
    assert (live.nodes, live.preempt_mode, live.max_time) == (("n1",), "REQUEUE", "1-00:00:00")

    job_id = await submit(fake, partition="c1-abc123")
    with pytest.raises(BackendError, match="Partition is in use"):
        await fake.remove_partition("c1-abc123")
    assert await fake.configured_partitions() == ["c1-abc123"]  # the file keeps it
    await fake.cancel(job_id)
    await fake.remove_partition("c1-abc123")
    await fake.remove_partition("c1-abc123")  # gone already: nothing to do
    assert await fake.partitions() == [] and await fake.configured_partitions() == []

    with pytest.raises(BackendError, match="Invalid node name specified"):
        await fake.apply_partition(PartitionSpec(name="bad", nodes=("n9",)))
    assert await fake.configured_partitions() == ["bad"]  # written first, as CliBackend does


async def test_drain_and_resume_set_the_flag_and_reason() -> None:
    fake = slurm()
    await fake.drain_node("n1", "bai: setup task failed")
    n1 = next(n for n in await fake.nodes() if n.name == "n1")
    assert ("DRAIN" in n1.flags, n1.reason, n1.usable) == (True, "bai: setup task failed", False)
    await fake.resume_node("n1")
    await fake.resume_node("n1")  # a node not drained: no error, as CliBackend
    n1 = next(n for n in await fake.nodes() if n.name == "n1")
    assert (n1.flags, n1.reason, n1.usable) == (frozenset(), "", True)
    with pytest.raises(BackendError, match="Invalid node name"):
        await fake.drain_node("n9", "x")


async def test_an_unreachable_slurm_fails_every_call_as_unavailable() -> None:
    fake = slurm(P)
    fake.unreachable = True
    with pytest.raises(BackendUnavailable, match="slurmctld is not answering"):
        await fake.nodes()
    with pytest.raises(BackendUnavailable):
        await submit(fake, partition="p")
    fake.unreachable = False
    assert len(await fake.nodes()) == 4
