"""Drain: a running job is cancelled, its devices get time to finish, then it is deleted.

As the Provider runs the handler (``run_delete``), against the emulator, whose executions
in progress finish at a set time after a cancel without force.
"""

from __future__ import annotations

import json
from typing import Any

import iot_job_cleanup_handler as handler
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
