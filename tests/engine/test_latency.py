"""Close to the floor when calls take time: the first deletions start at once, polls land when
a slot frees (the deletion time learned from our own deletions, and remembered while the
container is warm), and an invocation ends at a quiet moment, not just before a finish."""

from __future__ import annotations

import iot_job_cleanup_handler as handler
from iot_job_cleanup_handler import JobCleanup, Timing
from support import Handler, Iot, SimClock, event, job_ids, run_delete


def test_the_first_deletions_start_before_any_job_is_described(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(40)
    iot.create_jobs(*ids)
    calls_at_first_delete: list[dict[str, int]] = []
    iot.client.meta.events.register(
        "before-call.iot.DeleteJob",
        lambda **_: (
            calls_at_first_delete.append(dict(iot.lifecycle.calls)) if not calls_at_first_delete else None
        ),
    )

    Handler(iot, clock).on_event(event("Delete", ids))

    (before,) = calls_at_first_delete
    assert before.get("DescribeJob", 0) == 0
    assert before["ListJobs"] == 3  # the slots in use, then the running and the scheduled jobs
    assert len(iot.lifecycle.deleting) == 10  # on_event filled every slot


def test_a_running_named_job_still_fails_before_anything_is_deleted(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(20)
    iot.create_jobs(*ids)
    iot.create_jobs("ota-live", status="IN_PROGRESS")

    outcome = run_delete(iot, clock, event("Delete", [*ids, "ota-live"]))

    assert "'ota-live' is IN_PROGRESS" in str(outcome.error)
    assert iot.lifecycle.calls["DeleteJob"] == 0


def test_before_our_first_finish_it_polls_every_second_unless_told_slower(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs(*job_ids(3))
    assert run_delete(iot, clock, event("Delete", job_ids(3))).complete
    assert clock.sleeps[:25] == [1.0] * 25  # deletions take 30 s: a poll a second until one ends

    iot.create_jobs(*job_ids(3, "slow"))
    handler.forget_cached_facts()
    before = len(clock.sleeps)
    assert run_delete(iot, clock, event("Delete", job_ids(3, "slow"), QueryIntervalSeconds="5")).complete
    assert clock.sleeps[before : before + 5] == [5.0] * 5


def test_a_warm_container_remembers_the_deletion_time_and_when_our_deletions_began(
    iot: Iot, clock: SimClock
) -> None:
    ids = job_ids(25)
    iot.create_jobs(*ids)
    timing = Timing(query_interval=10, total_timeout=3600, poll_interval=2, poll_window=40, report_margin=30)
    steps = Handler(iot, clock, timing)
    request = {**event("Delete", ids), **steps.on_event(event("Delete", ids))}
    assert steps.is_complete(request) == {"IsComplete": False}  # one finish seen, the next batch started

    def next_invocation() -> JobCleanup:
        cleanup = JobCleanup(
            handler.IotJobs(iot.client, None, clock=clock, sleep=clock.sleep),
            handler.CleanupRequest.from_properties(request["ResourceProperties"]),
            clock=clock,
            sleep=clock.sleep,
            marker="OtaJobsCleanup@OtaFleet",
        )
        cleanup.survey()
        return cleanup

    warm = next_invocation()
    assert warm.duration is not None and 28 <= warm.duration[0] <= 30 <= warm.duration[1] <= 33
    assert warm.finish_expected_before(clock() + 30)  # the adopted deletions have their starts
    handler.forget_cached_facts()
    cold = next_invocation()
    assert cold.duration is None and not cold.finish_expected_before(clock() + 3600)


def test_an_invocation_does_not_end_just_before_a_slot_frees(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(30)  # three rounds of 30 s deletions
    iot.create_jobs(*ids)
    timing = Timing(query_interval=10, total_timeout=3600, poll_interval=2, poll_window=50, report_margin=30)
    steps = Handler(iot, clock, timing)
    started = clock()
    request = {**event("Delete", ids), **steps.on_event(event("Delete", ids))}

    assert steps.is_complete(request) == {"IsComplete": False}

    # Its window ended about 51 s in; the second round was due to end 9 s later, within the
    # waiter's 10 s: it went on, saw it end, started the third round, and only then returned.
    assert clock() - started >= 55  # past its 50 s window
    assert len(iot.lifecycle.deleted) == 20 and len(iot.lifecycle.deleting) == 10
