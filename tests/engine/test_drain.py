"""Drain: a running job is cancelled, its devices get time to finish, then it is deleted.

As the Provider runs the handler (``run_delete``), against the emulator, whose executions
in progress finish at a set time after a cancel without force.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from hypothesis import given, settings
from hypothesis import strategies as st

import iot_job_cleanup_handler as handler
from iot_job_cleanup.emulator import DeletionTime
from iot_job_cleanup_handler.draining import (
    DRAIN_CHECK_INTERVAL,
    DRAIN_LOOKS_AT_ONCE,
    DRAIN_LOOKS_PER_SECOND,
    DrainChecks,
)
from support import THING_ARN, TIMING, Handler, Iot, SimClock, event, fail_calls, run_delete


def running(
    iot: Iot, job_id: str, *, devices: int = 1, finish_in: float = float("inf"), **kwargs: Any
) -> str:
    targets = [f"{THING_ARN}-{index}" for index in range(devices)]
    iot.lifecycle.create_job(
        job_id, targets=targets, status="IN_PROGRESS", executions_finish_in=finish_in, **kwargs
    )
    return job_id


def cancels(iot: Iot) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    iot.client.meta.events.register(
        "before-call.iot.CancelJob", lambda params, **_: sent.append(params) and None
    )
    return sent


def deletions_started_at(iot: Iot, clock: SimClock) -> dict[str, float]:
    started: dict[str, float] = {}

    def record(params: dict[str, Any], **_: Any) -> None:  # a value returned would be the response
        started.setdefault(params["url_path"].rsplit("/", 1)[-1], clock())

    iot.client.meta.events.register("before-call.iot.DeleteJob", record)
    return started


def test_devices_that_finish_within_the_drain_time_are_waited_for_without_force(
    iot: Iot, clock: SimClock
) -> None:
    running(iot, "rollout-running", devices=3, finish_in=240)
    sent = cancels(iot)
    started = deletions_started_at(iot, clock)
    begin = clock()

    outcome = run_delete(iot, clock, event("Delete", ["rollout-running"], DrainSeconds="600"))

    assert outcome.complete, outcome.error
    assert iot.existing() == set()
    assert started["rollout-running"] >= begin + 240  # after its devices finished
    assert started["rollout-running"] <= begin + 240 + 2 * TIMING.poll_interval
    ((cancel,),) = [sent]
    assert cancel["query_string"].get("force") in (None, "false", False)
    body = json.loads(cancel["body"]) if isinstance(cancel["body"], (str, bytes)) else cancel["body"]
    assert body["reasonCode"] == "IOT_JOB_CLEANUP"
    assert "stack OtaFleet" in body["comment"] and "OtaJobsCleanup" in body["comment"]


def test_devices_still_busy_after_the_drain_time_fail_the_cleanup_without_force(
    iot: Iot, clock: SimClock
) -> None:
    running(iot, "rollout-stuck", devices=2)

    outcome = run_delete(iot, clock, event("Delete", ["rollout-stuck"], DrainSeconds="300"))

    assert isinstance(outcome.error, handler.DrainTimeoutError)
    message = str(outcome.error)
    assert "Job 'rollout-stuck' was cancelled, but 2 of its devices were still running it" in message
    assert "drain time of 300 s" in message and "sensor-1-0, sensor-1-1" in message
    assert "force=True" in message
    assert 300 <= outcome.elapsed <= 300 + 2 * TIMING.query_interval
    assert iot.existing() == {"rollout-stuck"}
    assert iot.status("rollout-stuck") == "CANCELED"


def test_devices_still_busy_after_the_drain_time_are_deleted_under_with_force(
    iot: Iot, clock: SimClock
) -> None:
    running(iot, "rollout-stuck")
    started = deletions_started_at(iot, clock)
    begin = clock()

    outcome = run_delete(iot, clock, event("Delete", ["rollout-stuck"], DrainSeconds="300", Force="true"))

    assert outcome.complete, outcome.error
    assert iot.existing() == set()
    assert begin + 300 <= started["rollout-stuck"] <= begin + 300 + 2 * TIMING.query_interval


def test_the_cancel_is_not_repeated_across_invocations(iot: Iot, clock: SimClock) -> None:
    for n in range(3):
        running(iot, f"rollout-{n}", finish_in=500)
    sent = cancels(iot)
    short_windows = handler.Timing(query_interval=10, total_timeout=3600, poll_interval=2, poll_window=20)

    outcome = run_delete(
        iot, clock, event("Delete", [f"rollout-{n}" for n in range(3)], DrainSeconds="900"), short_windows
    )

    assert outcome.complete, outcome.error
    assert outcome.invocations > 10  # many is_complete invocations while the devices worked
    assert sorted(params["url_path"].rsplit("/", 2)[-2] for params in sent) == [
        "rollout-0",
        "rollout-1",
        "rollout-2",
    ]


def test_terminal_jobs_keep_the_slots_busy_while_others_drain(iot: Iot, clock: SimClock) -> None:
    running(iot, "rollout-running", finish_in=600)
    finished = [f"done-{n:02d}" for n in range(20)]
    iot.create_jobs(*finished)
    started = deletions_started_at(iot, clock)
    begin = clock()

    outcome = run_delete(iot, clock, event("Delete", ["rollout-running", *finished], DrainSeconds="900"))

    assert outcome.complete, outcome.error
    assert max(started[job_id] for job_id in finished) < begin + 120  # 2 rounds of 30 s, long before 600 s
    assert started["rollout-running"] >= begin + 600


def test_a_scheduled_job_is_cancelled_and_deleted_at_once(iot: Iot, clock: SimClock) -> None:
    iot.lifecycle.create_job("rollout-later", targets=[f"{THING_ARN}-0"], status="SCHEDULED")

    outcome = run_delete(iot, clock, event("Delete", ["rollout-later"], DrainSeconds="600"))

    assert outcome.complete, outcome.error
    assert outcome.elapsed < 60


def test_a_later_destroy_drains_a_job_cancelled_before_by_its_executions(iot: Iot, clock: SimClock) -> None:
    """A cancelled job is terminal to IoT: with drain, the executions tell, not the status."""
    running(iot, "rollout-cancelled", finish_in=200)
    iot.client.cancel_job(jobId="rollout-cancelled")
    started = deletions_started_at(iot, clock)
    begin = clock()

    outcome = run_delete(iot, clock, event("Delete", ["rollout-cancelled"], DrainSeconds="600"))

    assert outcome.complete, outcome.error
    assert started["rollout-cancelled"] >= begin + 200


def test_the_event_stays_small_while_jobs_drain(iot: Iot, clock: SimClock) -> None:
    ids = [running(iot, f"rollout-{n:03d}", finish_in=100) for n in range(100)]

    result = Handler(iot, clock).on_event(event("Delete", ids, DrainSeconds="600"))

    extra = {key: value for key, value in result.items() if key != "PhysicalResourceId"}
    calls = extra.pop(handler.RECENT_CALLS_KEY)
    assert len(json.dumps(extra)) < 150 + 4 * len(ids), extra  # positions, not ids
    assert len(json.dumps(calls)) < 40 * len(calls), calls  # a count and a time per operation
    assert iot.lifecycle.calls["CancelJob"] == 100


def test_jobs_drained_out_of_order_are_deleted_as_their_devices_finish(iot: Iot, clock: SimClock) -> None:
    """They finish in no set order: each new invocation looks at every one of them, rather
    than trusting the order the named jobs are deleted in."""
    # The middle one finishes first: a search for the first job not yet deleted would
    # land behind the three before it.
    finish = {f"rollout-{n}": seconds for n, seconds in enumerate([150, 160, 170, 50, 180, 190, 200])}
    for job_id, seconds in finish.items():
        running(iot, job_id, finish_in=seconds)
    started = deletions_started_at(iot, clock)
    begin = clock()
    short_windows = handler.Timing(query_interval=10, total_timeout=3600, poll_interval=2, poll_window=20)

    outcome = run_delete(iot, clock, event("Delete", list(finish), DrainSeconds="900"), short_windows)

    assert outcome.complete, outcome.error
    late = {job_id: started[job_id] - begin - seconds for job_id, seconds in finish.items()}
    assert all(0 <= delay <= 10 + 10 + 2 for delay in late.values()), late  # a drain check, a waiter pause


def test_a_running_job_the_filters_find_is_cancelled_at_once_even_with_every_slot_busy(
    iot: Iot, clock: SimClock
) -> None:
    for n in range(12):
        iot.lifecycle.create_job(f"rollout-done-{n:02d}", targets=[f"{THING_ARN}-0"], tags={"fleet": "demo"})
    running(iot, "rollout-zz-running", tags={"fleet": "demo"}, finish_in=100)
    cancelled_at: list[float] = []
    iot.client.meta.events.register(
        "before-call.iot.CancelJob", lambda **_: cancelled_at.append(clock()) and None
    )
    begin = clock()
    request = event("Delete", [], JobTags=[{"Key": "fleet", "Value": "demo"}], DrainSeconds="600")
    del request["ResourceProperties"]["JobIds"]

    outcome = run_delete(iot, clock, request)

    assert outcome.complete, outcome.error
    assert len(cancelled_at) == 1 and cancelled_at[0] - begin < 30  # before the first slot frees


def test_a_cancel_that_fails_for_now_is_made_again_before_any_deletion(iot: Iot, clock: SimClock) -> None:
    """Never delete a running job that was not cancelled, even with force."""
    running(iot, "rollout-running", finish_in=120)
    # on_event cannot learn the stack's status, so is_complete is first to look at the job,
    # and its CancelJob fails once.
    fail_calls(iot.cloudformation, "DescribeStacks", "Throttling", 400, times=4)
    failed = fail_calls(iot.client, "CancelJob", "ServiceUnavailableException", 503, times=1)
    started = deletions_started_at(iot, clock)
    begin = clock()

    outcome = run_delete(iot, clock, event("Delete", ["rollout-running"], DrainSeconds="600", Force="true"))

    assert outcome.complete, outcome.error
    # The first CancelJob's answer was lost (IoT acted, then 503 came back: moto answers
    # before the injected error); the retry finds the job cancelled and looks at it again.
    assert failed == [1]
    assert iot.lifecycle.calls["CancelJob"] <= 2
    assert started["rollout-running"] >= begin + 120  # after its devices finished, not under them


def looks_at(iot: Iot, clock: SimClock, prefix: str) -> list[float]:
    """When each DescribeJob of a job whose id starts with ``prefix`` was sent."""
    sent: list[float] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params["url_path"].rsplit("/", 1)[-1].startswith(prefix):
            sent.append(clock())

    iot.client.meta.events.register("before-call.iot.DescribeJob", record)
    return sent


def test_many_draining_jobs_take_about_one_look_a_second_not_one_each_every_ten_seconds(
    iot: Iot, clock: SimClock
) -> None:
    """40 jobs draining for 200 s: each looked at every 10 s would be 4 DescribeJob a second,
    twice the calls budget; the drain checks' looks are spread so that each job still gets one
    every 40 s. As deployed, one is_complete runs 300 s: its survey looks at each job once, at
    its start."""
    drained = [running(iot, f"rollout-running-{n:02d}", finish_in=200) for n in range(40)]
    looks = looks_at(iot, clock, "rollout-running-")
    started = deletions_started_at(iot, clock)
    begin = clock()

    outcome = run_delete(iot, clock, event("Delete", drained, DrainSeconds="600"), handler.Timing())

    assert outcome.complete, outcome.error
    while_draining = [at for at in looks if begin + 15 <= at < begin + 195]
    assert len(while_draining) <= 180 * handler.draining.DRAIN_LOOKS_PER_SECOND + 10, len(while_draining)
    first_batch = sorted(started[job_id] - begin for job_id in drained)[:10]
    assert first_batch[0] >= 200
    assert first_batch[-1] <= 200 + 10 + 10 + 2, first_batch  # a drain check, a waiter pause


@pytest.mark.parametrize("selected_by", ["JobIds", "JobIdPrefix"])
def test_many_draining_jobs_past_their_drain_time_fail_the_cleanup_in_time(
    iot: Iot, clock: SimClock, selected_by: str
) -> None:
    """150 jobs whose devices never finish: the looks before each cancel and at each
    invocation's start do not spend the drain checks' pace, so the checks of jobs past their
    drain time are not held back (they were, by about a second a job beyond ten)."""
    stuck = [running(iot, f"rollout-stuck-{n:03d}") for n in range(150)]
    request = event("Delete", stuck, DrainSeconds="60")
    if selected_by == "JobIdPrefix":
        request = event("Delete", [], JobIdPrefix="rollout-", DrainSeconds="60")
        del request["ResourceProperties"]["JobIds"]

    outcome = run_delete(iot, clock, request, handler.Timing())  # as deployed: 300 s windows

    assert not outcome.complete
    assert "rollout-stuck-" in str(outcome.error)
    assert 60 <= outcome.elapsed <= 60 + handler.draining.DRAIN_CHECK_INTERVAL + 10 + 5, outcome.elapsed


def test_a_cancel_that_fails_for_now_is_made_again_soon_while_jobs_wait(iot: Iot, clock: SimClock) -> None:
    """A CancelJob that could not be sent leaves its job draining but never seen cancelled: it is
    looked at again at the next drain check, even while enough jobs wait to fill the slots
    (not only once few are left, minutes later)."""
    finished = [f"done-{n:03d}" for n in range(150)]
    iot.create_jobs(*finished)
    running(iot, "rollout-running")  # its devices never finish: deleted with force after the drain
    cancels: list[float] = []

    def unreachable(**_: Any) -> None:  # on_event's tries, then is_complete's first
        cancels.append(clock())
        if len(cancels) <= 10:
            raise EndpointConnectionError(endpoint_url="https://iot.eu-west-1.amazonaws.com")

    iot.client.meta.events.register("before-call.iot.CancelJob", unreachable)
    started = deletions_started_at(iot, clock)
    begin = clock()

    request = event("Delete", ["rollout-running", *finished], DrainSeconds="60", Force="true")
    outcome = run_delete(iot, clock, request)

    assert outcome.complete, outcome.error
    assert len(cancels) == 11 and cancels[-1] - begin <= 30, [round(at - begin) for at in cancels]
    assert started["rollout-running"] - begin <= 60 + handler.draining.DRAIN_CHECK_INTERVAL + 35


def test_a_long_drained_job_found_ready_starts_before_the_short_jobs_waiting(
    iot: Iot, clock: SimClock
) -> None:
    """The drain checks go on while jobs wait for the slots: a drained job found ready goes to
    the front of the line. Drained jobs have devices and tend to be the longest deletions;
    skipping the checks while enough jobs waited started this one after the short ones."""
    iot.lifecycle.deletion_time = DeletionTime(base_seconds=5, per_target_seconds=1)
    big = [f"big-{n}" for n in range(10)]  # 205 s each: they hold every slot first
    small = [f"small-{n:02d}" for n in range(15)]  # 15 s each
    for job_id in big:
        iot.lifecycle.create_job(job_id, targets=[f"{THING_ARN}-{i}" for i in range(200)])
    for job_id in small:
        iot.lifecycle.create_job(job_id, targets=[f"{THING_ARN}-{i}" for i in range(10)])
    running(iot, "rollout-running", devices=400, finish_in=30)  # 405 s, ready after 30 s
    started = deletions_started_at(iot, clock)
    begin = clock()

    request = event("Delete", [*big, *small, "rollout-running"], DrainSeconds="900")
    outcome = run_delete(iot, clock, request, handler.Timing())

    assert outcome.complete, outcome.error
    first_freed = min(started[job_id] for job_id in small) - begin
    assert first_freed >= 205
    assert started["rollout-running"] - begin <= first_freed + 1, (
        started["rollout-running"] - begin,
        first_freed,
    )


def test_with_others_deleting_it_polls_every_interval_while_only_draining(iot: Iot, clock: SimClock) -> None:
    """Every slot is held by other stacks, and our only job drains: a freed slot would be of no
    use yet, so the handler does not poll every second as it does while it waits for one."""
    iot.lifecycle.hold_slots(10, seconds=1e9)
    running(iot, "rollout-running", finish_in=1e9)
    polls: list[float] = []
    iot.client.meta.events.register(
        "before-call.iot.ListJobs",
        lambda params, **_: (
            polls.append(clock()) if params["query_string"].get("status") == "DELETION_IN_PROGRESS" else None
        ),
    )
    begin = clock()
    timing = handler.Timing(
        query_interval=10, total_timeout=120, poll_interval=2, poll_window=60, report_margin=30
    )

    outcome = run_delete(iot, clock, event("Delete", ["rollout-running"], DrainSeconds="3000"), timing)

    assert not outcome.complete
    within = [at for at in polls if begin + 5 <= at < begin + 55]
    assert 20 <= len(within) <= 26, len(within)  # every 2 s, not every second


# --------------------------------------------------------------------------- the drain's pace


def check_round(checks: DrainChecks, jobs: list[str], ends: Any) -> list[str]:
    """What ``draining.check`` does with the pace: a look at each job due, each spent."""
    due = checks.due(jobs, ends, DRAIN_CHECK_INTERVAL)
    for job_id in due:
        checks.spend()
        checks.looked(job_id)
    return due


def test_the_pace_starts_with_ten_looks_then_earns_one_a_second() -> None:
    clock = SimClock()
    checks = DrainChecks(clock)
    jobs = [f"rollout-{n:02d}" for n in range(40)]
    ends = {job_id: clock() + 600 for job_id in jobs}.__getitem__

    assert check_round(checks, jobs, ends) == jobs[:DRAIN_LOOKS_AT_ONCE]
    clock.sleep(3)
    assert checks.due(jobs, ends, DRAIN_CHECK_INTERVAL) == jobs[10:13]  # 3 s earned 3 looks


def test_looks_made_elsewhere_make_a_job_not_due_but_spend_nothing() -> None:
    """The plan's look before a cancel, a survey's, a walk's: the drain checks keep their pace."""
    clock = SimClock()
    checks = DrainChecks(clock)
    jobs = [f"rollout-{n:03d}" for n in range(150)]
    ends = {job_id: clock() + 60 for job_id in jobs}.__getitem__
    for job_id in jobs:
        checks.looked(job_id)
    assert checks.due(jobs, ends, DRAIN_CHECK_INTERVAL) == []  # each seen just now
    clock.sleep(60)  # every drain time is over
    assert checks.due(jobs, ends, DRAIN_CHECK_INTERVAL) == jobs[:DRAIN_LOOKS_AT_ONCE]


def test_the_pace_looks_at_jobs_past_their_drain_time_first_then_the_longest_unseen() -> None:
    clock = SimClock()
    checks = DrainChecks(clock)
    now = clock()
    ends = {"a": now + 100, "b": now + 50, "c": now - 1, "d": now + 100}.__getitem__
    checks.looked("d")
    clock.sleep(DRAIN_CHECK_INTERVAL)

    # c's drain time is over; a and b were never looked at, b's drain ends first; d was
    assert checks.due(["a", "b", "c", "d"], ends, DRAIN_CHECK_INTERVAL) == ["c", "b", "a", "d"]


def test_a_job_looked_at_is_not_due_again_before_the_interval() -> None:
    clock = SimClock()
    checks = DrainChecks(clock)
    ends = {"a": clock() + 600}.__getitem__
    checks.looked("a")
    clock.sleep(DRAIN_CHECK_INTERVAL - 0.1)
    assert checks.due(["a"], ends, DRAIN_CHECK_INTERVAL) == []
    clock.sleep(0.1)
    assert checks.due(["a"], ends, DRAIN_CHECK_INTERVAL) == ["a"]


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(
    jobs=st.integers(min_value=1, max_value=60),
    steps=st.lists(
        st.tuples(st.sampled_from(["wait", "check", "elsewhere"]), st.floats(min_value=0.0, max_value=15.0)),
        min_size=1,
        max_size=80,
    ),
)
def test_the_pace_keeps_its_rate_and_never_owes_looks(jobs: int, steps: list[tuple[str, float]]) -> None:
    """Over any run of waits, drain checks and looks made elsewhere: the checks' looks are at
    most the ten to start with plus one a second since, no job is looked at twice within the
    interval, and the allowance never goes below zero (looks made elsewhere do not spend it,
    so a job past its drain time is checked as soon as one look is earned)."""
    clock = SimClock()
    checks = DrainChecks(clock)
    ids = [f"rollout-{n:02d}" for n in range(jobs)]
    ends = {job_id: clock() + 30 for job_id in ids}.__getitem__
    begin, spent, last = clock(), 0, {}
    for kind, value in steps:
        if kind == "wait":
            clock.sleep(value)
        elif kind == "elsewhere":
            job_id = ids[int(value) % jobs]
            checks.looked(job_id)
            last[job_id] = clock()
        else:
            for job_id in check_round(checks, ids, ends):
                assert clock() - last.get(job_id, -1e9) >= DRAIN_CHECK_INTERVAL
                last[job_id] = clock()
                spent += 1
        assert spent <= DRAIN_LOOKS_AT_ONCE + (clock() - begin) * DRAIN_LOOKS_PER_SECOND + 1e-9
        assert checks.allowance >= 0
