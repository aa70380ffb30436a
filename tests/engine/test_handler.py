"""The handler against moto's IoT with the documented DeleteJob lifecycle, in simulated time.

Each test drives the handler the way the Provider framework does: ``on_event`` once, then
``is_complete`` every query interval until it is complete or raises.
"""

from __future__ import annotations

from typing import Any

import pytest

import iot_job_cleanup_handler as handler
from iot_job_cleanup_handler import (
    DEADLINE_KEY,
    Backoff,
    CleanupTimeoutError,
    ForceRequiredError,
    InvalidPropertiesError,
    Timing,
)
from support import (
    STACK_ID,
    TIMING,
    Handler,
    Iot,
    SimClock,
    event,
    fail_calls,
    job_ids,
    lambda_clients,
    planned,
    run_delete,
)

# --------------------------------------------------------------------------- Create / Update


def test_create_returns_a_physical_id_and_touches_no_job(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("ota-1")
    result = Handler(iot, clock).on_event(event("Create", ["ota-1"]))

    assert result == {"PhysicalResourceId": "iot-job-cleanup:OtaJobsCleanup"}
    assert iot.lifecycle.calls["DeleteJob"] == 0
    assert iot.status("ota-1") == "COMPLETED"


def test_update_keeps_the_physical_id_and_deletes_no_dropped_job(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("ota-1", "ota-2")
    update = event("Update", ["ota-2"])
    update["OldResourceProperties"] = {"JobIds": ["ota-1", "ota-2"], "Force": "false"}

    result = Handler(iot, clock).on_event(update)
    complete = Handler(iot, clock).is_complete({**update, **result})

    assert result["PhysicalResourceId"] == update["PhysicalResourceId"]
    assert complete == {"IsComplete": True}
    assert iot.existing() == {"ota-1", "ota-2"}
    assert iot.lifecycle.calls["DeleteJob"] == 0


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({}, "None of JobIds, JobTags, ThingGroupNames and JobIdPrefix is set: a cleanup needs at least one"),
        ({"JobIds": "ota-1"}, "must be a list of job ids"),
        ({"JobIds": ["ota-1", None]}, "JobIds contains None"),
        ({"JobIds": ["ota 1"]}, "1 to 64 characters"),
        ({"JobIds": ["x" * 65]}, "1 to 64 characters"),
        ({"JobIds": ["ota-1", "ota-1"]}, "twice"),
        ({"JobIds": ["ota-1"], "Force": "yes"}, '"true" or "false"'),
        ({"JobIds": ["ota-1"], "NamespaceId": "bad/ns"}, "NamespaceId"),
        ({"JobIds": ["ota-1"], "TotalTimeoutSeconds": "7200"}, "TotalTimeoutSeconds is '7200'.*60 to 3600"),
        ({"JobIds": ["ota-1"], "QueryIntervalSeconds": "soon"}, "QueryIntervalSeconds is 'soon'.*1 to 300"),
        ({"JobIds": ["x" * 500]}, r"JobIds contains 'x{30,40}\.\.\.x+': a job id"),
    ],
)
def test_properties_that_break_the_contract_fail_with_the_value_and_the_fix(
    iot: Iot, clock: SimClock, properties: dict[str, Any], message: str
) -> None:
    request = event("Create", ["placeholder"])
    request["ResourceProperties"] = {"ServiceToken": "arn:token", **properties}

    with pytest.raises(InvalidPropertiesError, match=message):
        Handler(iot, clock).on_event(request)


# --------------------------------------------------------------------------- Delete


def test_delete_starts_deleting_in_on_event(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs(*job_ids(3))

    result = Handler(iot, clock).on_event(event("Delete", job_ids(3)))

    assert {iot.status(job_id) for job_id in job_ids(3)} == {"DELETION_IN_PROGRESS"}
    assert result["PhysicalResourceId"] == "iot-job-cleanup:OtaJobsCleanup"
    assert result[DEADLINE_KEY] == clock() + 3600 - 30


def test_delete_completes_only_when_every_job_is_gone(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs(*job_ids(3), "not-ours")
    request = event("Delete", job_ids(3))
    waiter_input = {**request, **Handler(iot, clock).on_event(request)}

    # Deletion takes 30 s: a window that ends sooner must not report complete.
    short = Timing(query_interval=10, total_timeout=3600, poll_interval=2, poll_window=20)
    assert Handler(iot, clock, short).is_complete(waiter_input) == {"IsComplete": False}
    assert iot.existing() == {*job_ids(3), "not-ours"}

    assert Handler(iot, clock).is_complete(waiter_input) == {"IsComplete": True}
    assert iot.existing() == {"not-ours"}


def test_a_job_that_does_not_exist_is_done(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("ota-real")

    outcome = run_delete(iot, clock, event("Delete", ["never-created", "ota-real"]))

    assert outcome.complete, outcome.error
    assert iot.existing() == set()


def test_a_job_already_being_deleted_by_someone_else_is_waited_for(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("ota-1", "ota-2")
    iot.client.delete_job(jobId="ota-1", force=False)  # someone else, 30 s before us
    clock.sleep(5)

    outcome = run_delete(iot, clock, event("Delete", ["ota-1", "ota-2"]))

    assert outcome.complete, outcome.error
    assert iot.existing() == set()
    assert iot.lifecycle.deleted.index("ota-1") < iot.lifecycle.deleted.index("ota-2")


def test_the_re_delete_error_of_a_job_being_deleted_is_not_a_failure(iot: Iot, clock: SimClock) -> None:
    """Someone else starts deleting the job between our look at it and our DeleteJob."""
    iot.create_jobs("ota-1", "ota-2")
    answers = []

    def someone_else_deletes_it_first(params: dict[str, Any], **_: Any) -> None:
        if params["url_path"].endswith("/ota-1") and not answers:
            iot.lifecycle.delete_job("ota-1", force=False, namespace_id=None)

    iot.client.meta.events.register("before-call.iot.DeleteJob", someone_else_deletes_it_first)
    iot.client.meta.events.register(
        "after-call.iot.DeleteJob", lambda parsed, **_: answers.append(parsed.get("Error", {}).get("Code"))
    )

    outcome = run_delete(iot, clock, event("Delete", ["ota-1", "ota-2"]))

    assert outcome.complete, outcome.error
    assert answers == ["InvalidStateTransitionException", None]
    assert iot.existing() == set()


def test_no_more_than_ten_deletions_of_ours_are_in_flight(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(35)
    iot.create_jobs(*ids)
    peak = 0
    original_delete = iot.lifecycle.delete_job

    def watched_delete(*args: Any, **kwargs: Any) -> None:
        nonlocal peak
        original_delete(*args, **kwargs)
        peak = max(peak, len(iot.lifecycle.deleting))

    iot.lifecycle.delete_job = watched_delete

    outcome = run_delete(iot, clock, event("Delete", ids))

    assert outcome.complete, outcome.error
    assert peak == 10
    assert iot.existing() == set()
    # 35 jobs of 30 s through 10 slots: 4 rounds, each seen within one poll interval.
    assert outcome.elapsed <= 4 * 30 + 4 * TIMING.poll_interval


def test_limit_exceeded_is_retried_later_with_backoff_and_jitter(iot: Iot, clock: SimClock) -> None:
    """Other stacks grab the free slots between our ListJobs and our DeleteJob."""
    ids = job_ids(4)
    iot.create_jobs(*ids)
    grabs = []
    attempts = []

    def other_stacks_take_every_free_slot(**_: Any) -> None:
        attempts.append(clock())
        if len(grabs) < 3:
            grabs.append(iot.lifecycle.hold_slots(10 - len(iot.lifecycle.deleting), seconds=1))

    iot.client.meta.events.register("before-call.iot.DeleteJob", other_stacks_take_every_free_slot)
    refused = []
    iot.client.meta.events.register(
        "after-call.iot.DeleteJob",
        lambda http_response, **_: refused.append(http_response.status_code == 410),
    )

    start = clock()
    outcome = run_delete(iot, clock, event("Delete", ids))

    assert outcome.complete, outcome.error
    assert not set(ids) & iot.existing()
    assert refused == [True, True, True, False, False, False, False]
    # on_event is refused at 0 s. is_complete sees every slot held until 1 s; while others
    # delete it polls every second: it tries at 1 s and is refused, backs off 1.5 s (2 s step,
    # equal jitter, random() = 0.5), is refused again at 3 s and backs off 3 s (until 6 s);
    # with no one else deleting from 5 s it polls every 2 s again and starts all four at 7 s.
    assert [round(at - start, 1) for at in attempts] == [0, 1, 3, 7, 7, 7, 7]


def test_backoff_doubles_up_to_its_cap_and_jitters_within_the_upper_half() -> None:
    low, high = Backoff(random=lambda: 0.0), Backoff(random=lambda: 0.999)

    assert [low.next_delay() for _ in range(6)] == [1, 2, 4, 8, 15, 15]
    assert [round(high.next_delay()) for _ in range(6)] == [2, 4, 8, 16, 30, 30]
    low.reset()
    assert low.next_delay() == 1


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [
        ("ListJobs", "ThrottlingException", 429),
        ("DescribeJob", "ServiceUnavailableException", 503),
        ("DeleteJob", "InternalFailureException", 500),
        ("DeleteJob", "ThrottlingException", 429),
    ],
)
def test_throttling_and_server_errors_are_retried_and_never_fail_is_complete(
    iot: Iot, clock: SimClock, operation: str, code: str, status: int
) -> None:
    ids = job_ids(12)
    iot.create_jobs(*ids)
    served = fail_calls(iot.client, operation, code, status, times=5)

    outcome = run_delete(iot, clock, event("Delete", ids))

    assert outcome.complete, outcome.error
    assert served == [5]
    assert iot.existing() == set()


def test_a_job_that_needs_force_fails_at_once_naming_job_status_and_fix(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("ota-running", status="IN_PROGRESS")

    outcome = run_delete(iot, clock, event("Delete", ["ota-running"]))

    assert isinstance(outcome.error, ForceRequiredError)
    assert "'ota-running' is IN_PROGRESS" in str(outcome.error)
    assert "force=True" in str(outcome.error)
    assert outcome.elapsed == 0
    assert iot.status("ota-running") == "IN_PROGRESS"


def test_force_deletes_jobs_that_are_still_running(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("ota-running", status="IN_PROGRESS")
    iot.create_jobs("ota-scheduled", status="SCHEDULED")

    outcome = run_delete(iot, clock, event("Delete", ["ota-running", "ota-scheduled"], Force="true"))

    assert outcome.complete, outcome.error
    assert iot.existing() == set()


def test_jobs_in_a_namespace_are_deleted_with_its_namespace_id(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("gg-deploy-1", "gg-deploy-2", namespace_id="greengrass")
    sent = []
    iot.client.meta.events.register(
        "before-call.iot.DeleteJob", lambda params, **_: sent.append(params["query_string"])
    )

    outcome = run_delete(
        iot, clock, event("Delete", ["gg-deploy-1", "gg-deploy-2"], NamespaceId="greengrass")
    )

    assert outcome.complete, outcome.error
    assert iot.existing() == set()
    assert all(query.get("namespaceId") == "greengrass" for query in sent) and len(sent) == 2


def test_a_namespace_mismatch_fails_with_the_iot_error(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("gg-deploy-1", namespace_id="greengrass")

    outcome = run_delete(iot, clock, event("Delete", ["gg-deploy-1"]))

    assert outcome.error is not None and "InvalidRequestException" in str(outcome.error)
    assert iot.status("gg-deploy-1") == "COMPLETED"


def test_is_complete_is_idempotent_under_re_invocation(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(15)
    iot.create_jobs(*ids)
    request = event("Delete", ids)
    short_windows = Timing(query_interval=10, total_timeout=3600, poll_interval=2, poll_window=20)
    lambda_handler = Handler(iot, clock, short_windows)
    waiter_input = {**request, **lambda_handler.on_event(request)}
    lambda_handler.on_event(request)  # a duplicate delivery: its 10 slots are busy

    results = []
    for _ in range(4):
        results.append(lambda_handler.is_complete(waiter_input)["IsComplete"])
        clock.sleep(short_windows.query_interval)
    # 0-20 s: the first 10 are deleting; 30 s: the last 5 start; 60 s: all gone.
    assert results == [False, False, True, True]
    assert iot.existing() == set()
    assert iot.lifecycle.calls["DeleteJob"] == 15  # no job was deleted twice


def test_hundreds_of_jobs_with_bounded_calls_per_job(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(300)
    iot.create_jobs(*ids)

    outcome = run_delete(iot, clock, event("Delete", ids))

    assert outcome.complete, outcome.error
    assert iot.existing() == set()
    assert outcome.elapsed <= 300 * 30 / 10 * 1.1
    calls = sum(iot.lifecycle.calls.values())
    assert calls / outcome.elapsed <= 2.0, f"{calls} IoT calls in {outcome.elapsed} s"


def test_a_job_deleted_out_of_order_by_someone_else_does_not_hide_the_others(
    iot: Iot, clock: SimClock
) -> None:
    ids = job_ids(40)
    iot.create_jobs(*ids)
    for job_id in ids[20:40:3]:  # holes in the untouched part of the list
        iot.lifecycle.remove_job(job_id)

    outcome = run_delete(iot, clock, event("Delete", ids))

    assert outcome.complete, outcome.error
    assert iot.existing() == set()


def test_timeout_names_the_jobs_left_and_a_second_destroy_resumes(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(25)
    iot.create_jobs(*ids)
    iot.lifecycle.hold_slots(7, seconds=600)  # other stacks hold 7 of the 10 slots
    # 3 slots, deletions of 30 s: it gives up at 105 s, halfway through its fourth round.
    timing = Timing(query_interval=10, total_timeout=135, poll_interval=2, poll_window=60, report_margin=30)

    first = run_delete(iot, clock, event("Delete", ids), timing)

    assert isinstance(first.error, CleanupTimeoutError)
    message = str(first.error)
    # It gives up 30 s (the report margin) before CloudFormation would; its last looks at the
    # jobs left, at IoT's rate per operation, take a moment of that margin.
    assert 135 - 30 <= first.elapsed <= 135 - 30 + 3
    assert "of 25 jobs not deleted" in message
    assert "(DELETION_IN_PROGRESS)" in message
    assert "(COMPLETED, waiting for a deletion slot)" in message
    assert "run cdk destroy again" in message
    in_flight = {job for job in ids if job in iot.lifecycle.deleting}
    untouched = {job for job in ids if job in iot.existing()} - in_flight
    assert in_flight and untouched
    deletes_before = iot.lifecycle.calls["DeleteJob"]

    second = run_delete(iot, clock, event("Delete", ids), TIMING)

    assert second.complete, second.error
    assert not set(ids) & iot.existing()
    # Deletions under way were waited for, not restarted: only untouched jobs got a DeleteJob.
    assert iot.lifecycle.calls["DeleteJob"] - deletes_before == len(untouched)


def test_create_and_update_need_no_waiting(iot: Iot, clock: SimClock) -> None:
    for request_type in ("Create", "Update"):
        request = event(request_type, ["ota-1"])
        assert Handler(iot, clock).is_complete(request) == {"IsComplete": True}
    assert sum(iot.lifecycle.calls.values()) == 0


def test_the_lambda_entry_points_read_their_timing_from_the_environment(
    iot: Iot, monkeypatch: pytest.MonkeyPatch
) -> None:
    iot.create_jobs("ota-1")
    monkeypatch.setenv("POLL_WINDOW_SECONDS", "0")
    monkeypatch.setattr(handler.entry, "_client_cache", lambda_clients(iot))

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 120_000

    request = event("Delete", ["ota-1"])
    result = handler.on_event(request, Context())
    assert iot.status("ota-1") == "DELETION_IN_PROGRESS"
    assert handler.is_complete({**request, **result}, Context()) == {"IsComplete": False}


# --------------------------------------------------------------------------- the plan


def deletions_in_order(iot: Iot) -> list[str]:
    order: list[str] = []
    iot.client.meta.events.register(
        "before-call.iot.DeleteJob", lambda params, **_: order.append(params["url_path"].rsplit("/", 1)[-1])
    )
    return order


def test_the_first_deletions_start_at_once_and_the_rest_go_longest_first(iot: Iot, clock: SimClock) -> None:
    """The free slots fill in list order before any job is described; while those deletions
    run, the rest are described and ordered by executions (deletion time grows with them),
    so no long one runs last."""
    ids = ["small-1", "big", "small-2", "medium", "huge"]
    for job_id, things in zip(ids, (1, 20, 1, 5, 30), strict=True):
        iot.create_jobs(job_id, things=things)
    iot.lifecycle.hold_slots(8, seconds=3600)  # two slots free
    order = deletions_in_order(iot)
    describes_before_first_delete: list[int] = []
    iot.client.meta.events.register(
        "before-call.iot.DeleteJob",
        lambda **_: describes_before_first_delete.append(iot.lifecycle.calls["DescribeJob"]),
    )
    request = event("Delete", ids)

    result = Handler(iot, clock).on_event(request)

    assert order == ["small-1", "big"]  # at once, in list order
    assert describes_before_first_delete[0] == 0  # no look per job before the first deletion
    assert planned(result, ids) == ["small-1", "big", "huge", "medium", "small-2"]


def test_is_complete_follows_the_planned_order(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(14)
    iot.create_jobs(*ids)
    iot.create_jobs("big-1", "big-2", things=10)
    order = deletions_in_order(iot)

    outcome = run_delete(iot, clock, event("Delete", [*ids, "big-1", "big-2"]))

    assert outcome.complete, outcome.error
    assert order[:10] == ids[:10]  # the free slots filled at once, in list order
    assert order[10:12] == ["big-1", "big-2"]  # then the longest first
    assert sorted(order) == sorted([*ids, "big-1", "big-2"])


def test_an_order_in_the_event_that_does_not_match_the_jobs_is_ignored(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("ota-1", "ota-2", "ota-3")
    request = event("Delete", ["ota-1", "ota-2", "ota-3"])
    waiter_input = {**request, handler.ORDER_KEY: [1, 7]}  # not positions of these jobs

    result = Handler(iot, clock).is_complete(waiter_input)

    assert result == {"IsComplete": True}
    assert iot.existing() == set()


def test_a_job_that_needs_force_fails_before_anything_is_deleted(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("ota-1", "ota-2")
    iot.create_jobs("ota-running", status="IN_PROGRESS")

    outcome = run_delete(iot, clock, event("Delete", ["ota-1", "ota-running", "ota-2"]))

    assert isinstance(outcome.error, ForceRequiredError)
    assert iot.lifecycle.calls["DeleteJob"] == 0
    assert iot.existing() == {"ota-1", "ota-2", "ota-running"}


def test_a_freed_slot_is_reused_before_the_finished_job_is_confirmed_gone(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(11)
    iot.create_jobs(*ids)
    calls: list[str] = []
    for operation in ("DeleteJob", "DescribeJob"):
        iot.client.meta.events.register(
            f"before-call.iot.{operation}",
            lambda params, model, **_: calls.append(f"{model.name} {params['url_path'].rsplit('/', 1)[-1]}"),
        )

    outcome = run_delete(iot, clock, event("Delete", ids))

    assert outcome.complete, outcome.error
    first_confirmation = calls.index("DescribeJob ota-000", calls.index("DeleteJob ota-009"))
    assert calls.index("DeleteJob ota-010") < first_confirmation


# --------------------------------------------------------------------------- the Lambda's own timeout


def slow_iot(iot: Iot, clock: SimClock, seconds_per_call: float) -> None:
    """Every IoT call takes this long, as a throttled or distant endpoint would."""
    iot.client.meta.events.register(
        "before-call.iot.*", lambda **_: setattr(clock, "now", clock.now + seconds_per_call)
    )


def test_on_event_never_runs_past_its_lambda_timeout_and_plans_every_job(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(60)
    iot.create_jobs(*ids)
    slow_iot(iot, clock, seconds_per_call=1.0)
    start = clock()

    result = Handler(iot, clock).on_event(event("Delete", ids), remaining_lambda_seconds=40)

    assert clock() - start <= 40 - handler.entry.LAMBDA_MARGIN + 1  # the call under way when it stopped
    assert sorted(planned(result, ids)) == sorted(ids)  # the jobs it could not describe keep list order
    assert planned(result, ids)[-10:] == ids[-10:]


def test_is_complete_never_runs_past_its_lambda_timeout(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(80)  # none exists: the final sweep alone would take 80 s
    slow_iot(iot, clock, seconds_per_call=1.0)
    start = clock()

    result = Handler(iot, clock).is_complete(event("Delete", ids), remaining_lambda_seconds=60)

    assert result == {"IsComplete": False}
    assert clock() - start <= 60 - handler.entry.LAMBDA_MARGIN + 1


def test_polls_fast_only_while_a_deletion_of_ours_is_expected_to_finish(clock: SimClock) -> None:
    cleanup = handler.JobCleanup(
        handler.IotJobs(None, None), handler.CleanupRequest(handler.Selection(("a",))), clock=clock
    )
    assert cleanup.next_poll_in(2.0) == 2.0  # nothing seen finish yet: the regular interval

    # The last deletion was still listed 29 s after it started and gone at 31 s.
    cleanup.duration = (29.0, 31.0)
    cleanup.ledger.start("a", cleanup.guard.clear_by_id("a"), at=clock.now)
    expected = [
        (clock.now + 27, 2.0),
        (clock.now + 28, 1.0),
        (clock.now + 29.5, 0.5),
        (clock.now + 33.5, 2.0),
    ]
    for now, pause in expected:
        clock.now = now
        assert cleanup.next_poll_in(2.0) == pause, now


# --------------------------------------------------------------------------- only at stack teardown


@pytest.mark.parametrize(
    "stack_status", ["UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"]
)
def test_a_delete_during_an_update_deletes_nothing_and_succeeds(
    iot: Iot, clock: SimClock, stack_status: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A renamed, moved or removed cleanup (or an update rolling back): the stack lives on."""
    iot.create_jobs("ota-1", "ota-2", status="COMPLETED")
    iot.stack_status(stack_status)

    with caplog.at_level("INFO", logger="iot_job_cleanup"):
        outcome = run_delete(iot, clock, event("Delete", ["ota-1", "ota-2"]))

    assert outcome.complete, outcome.error
    assert outcome.invocations == 2 and outcome.elapsed == 0
    assert iot.existing() == {"ota-1", "ota-2"}
    assert sum(iot.lifecycle.calls.values()) == 0  # not even a look at the jobs
    (record,) = [r for r in caplog.records if "not being torn down" in r.getMessage()]
    assert record.stackStatus == stack_status


@pytest.mark.parametrize("stack_status", ["DELETE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"])
def test_a_delete_at_stack_teardown_deletes_the_jobs(iot: Iot, clock: SimClock, stack_status: str) -> None:
    iot.create_jobs("ota-1", "ota-2")
    iot.stack_status(stack_status)

    outcome = run_delete(iot, clock, event("Delete", ["ota-1", "ota-2"]))

    assert outcome.complete, outcome.error
    assert iot.existing() == set()


def test_the_stack_status_call_is_retried_on_throttling(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("ota-1")
    throttled = fail_calls(iot.cloudformation, "DescribeStacks", "Throttling", 400, times=2)
    request = event("Delete", ["ota-1"])

    result = Handler(iot, clock).on_event(request)

    assert throttled == [2]
    assert result[handler.TEARDOWN_KEY] == "true"
    assert iot.status("ota-1") == "DELETION_IN_PROGRESS"
    assert clock.sleeps == [1.5, 3.0]  # backoff with equal jitter


def test_when_on_event_cannot_learn_the_stack_status_is_complete_asks_again(
    iot: Iot, clock: SimClock
) -> None:
    iot.create_jobs("ota-1")
    throttled = fail_calls(iot.cloudformation, "DescribeStacks", "Throttling", 400, times=6)

    outcome = run_delete(iot, clock, event("Delete", ["ota-1"]))

    assert throttled == [6]
    assert outcome.complete, outcome.error
    assert outcome.invocations >= 3  # on_event gave up asking; is_complete asked until answered
    assert iot.existing() == set()


def test_a_denied_stack_status_call_fails_saying_what_to_grant(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("ota-1")
    fail_calls(iot.cloudformation, "DescribeStacks", "AccessDenied", 403, times=1)

    outcome = run_delete(iot, clock, event("Delete", ["ota-1"]))

    assert isinstance(outcome.error, handler.CleanupError)
    message = str(outcome.error)
    assert f"CloudFormation denied DescribeStacks on {STACK_ID}" in message
    assert "Grant the handler's role cloudformation:DescribeStacks on this stack" in message
    assert "nothing was deleted" in message
    assert iot.status("ota-1") == "COMPLETED"


# --------------------------------------------------------------------------- per-resource timing, messages


def test_the_resource_sets_its_own_query_interval_and_total_timeout(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs(*job_ids(3))
    request = event("Delete", job_ids(3), QueryIntervalSeconds="7", TotalTimeoutSeconds="600")

    outcome = run_delete(iot, clock, request)

    assert outcome.complete, outcome.error
    assert clock.sleeps == [7.0] * 5  # every 7 s until the 30 s deletions are over
    started = Handler(iot, clock).on_event(request)
    assert started[DEADLINE_KEY] == clock() + 600 - 30


def test_the_timeout_says_the_time_that_really_passed_and_stays_small(iot: Iot, clock: SimClock) -> None:
    ids = [f"{index:02d}-" + "x" * 61 for index in range(40)]  # 64-character ids
    iot.create_jobs(*ids)
    iot.lifecycle.hold_slots(10, seconds=3600)  # no slot frees up
    clock.sleep(0)
    timing = Timing(query_interval=10, total_timeout=3600, poll_interval=2, poll_window=300, report_margin=30)

    outcome = run_delete(iot, clock, event("Delete", ids), timing)

    message = str(outcome.error)
    assert isinstance(outcome.error, CleanupTimeoutError)
    assert message.startswith(f"Timed out after {outcome.elapsed:.0f} s with 40 of 40 jobs not deleted: ")
    assert outcome.elapsed < 3600
    assert len(message.encode()) <= handler.MAX_MESSAGE_BYTES
    assert "more. Deletions under way go on in IoT" in message


def test_an_entry_point_failure_names_the_handler_log_group(
    iot: Iot, monkeypatch: pytest.MonkeyPatch
) -> None:
    iot.create_jobs("ota-running", status="IN_PROGRESS")
    monkeypatch.setenv("LOG_GROUP_NAME", "/iot-job-cleanup/Stack-Logs")
    monkeypatch.setattr(handler.entry, "_client_cache", lambda_clients(iot))

    with pytest.raises(ForceRequiredError) as failure:
        handler.on_event(event("Delete", ["ota-running"]), None)

    assert str(failure.value).endswith("Handler logs: CloudWatch log group /iot-job-cleanup/Stack-Logs.")


def test_empty_job_ids_from_an_empty_list_parameter_are_ignored(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("ota-1")

    outcome = run_delete(iot, clock, event("Delete", ["", "ota-1", ""]))

    assert outcome.complete, outcome.error
    assert iot.existing() == set()
