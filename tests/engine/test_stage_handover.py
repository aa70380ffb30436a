"""A cleanup longer than an hour runs as stages, one resource after another: a stage that is
not the last hands what is left on when its time runs out; the last one fails as ever, saying
how many selected jobs are left, how long it ran and what finishes the rest."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from iot_job_cleanup_handler import CleanupRequest, CleanupTimeoutError, InvalidPropertiesError, Timing
from support import Handler, Iot, SimClock, event, job_ids, run_delete

TIMING = Timing(query_interval=10, total_timeout=3600, poll_interval=2, poll_window=300, report_margin=30)


def stage(number: int, of: int, ids: list[str], seconds: float, **properties: Any) -> dict[str, Any]:
    """Stage ``number`` of ``of``'s Delete: its own resource, the cleanup's properties."""
    request = event(
        "Delete",
        ids,
        Cleanup="Fleet/OtaCleanup",
        Stage=str(number),
        Stages=str(of),
        TotalTimeoutSeconds=f"{seconds:g}",
        **properties,
    )
    suffix = "" if number == 1 else f"Stage{number}"
    request["LogicalResourceId"] = f"OtaJobsCleanup{suffix}"
    request["PhysicalResourceId"] = f"iot-job-cleanup:OtaJobsCleanup{suffix}"
    return request


def test_a_stage_out_of_time_with_jobs_left_hands_over_and_the_next_finishes(
    iot: Iot, clock: SimClock, caplog: pytest.LogCaptureFixture
) -> None:
    ids = job_ids(60)  # 60 deletions of 30 s through 10 slots: 180 s, more than stage 1's 120 s
    iot.create_jobs(*ids)
    caplog.set_level(logging.INFO, logger="iot_job_cleanup")

    first = run_delete(iot, clock, stage(1, 2, ids, 120), TIMING)

    assert first.complete, first.error  # a hand-over succeeds: CloudFormation goes on to stage 2
    assert first.elapsed <= 120 - TIMING.report_margin + TIMING.poll_interval
    left_to_stage_2 = iot.existing()
    assert left_to_stage_2, "stage 1 had time for only part of the jobs"
    assert any(iot.status(job_id) == "DELETION_IN_PROGRESS" for job_id in left_to_stage_2)
    handed = [r for r in caplog.records if "hands over" in r.getMessage()]
    assert len(handed) == 1 and handed[0].stage == 1 and handed[0].jobsLeft == len(left_to_stage_2)

    second = run_delete(iot, clock, stage(2, 2, ids, 3600), TIMING)

    assert second.complete, second.error
    assert iot.existing() == set()
    assert sorted(iot.lifecycle.deleted) == sorted(ids)  # each deleted once, across both stages
    # The deletions under way went on in IoT during the hand-over: the whole took about the
    # bound (180 s) plus a hand-over, not a restart.
    assert first.elapsed + second.elapsed < 180 + 40


def test_a_stage_whose_cleanup_is_already_done_completes_at_once(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(5)
    iot.create_jobs(*ids)
    assert run_delete(iot, clock, stage(1, 3, ids, 3600), TIMING).complete

    for number in (2, 3):
        outcome = run_delete(iot, clock, stage(number, 3, ids, 3600), TIMING)
        assert outcome.complete and outcome.elapsed < 10, outcome
    assert sorted(iot.lifecycle.deleted) == sorted(ids)  # the later stages deleted nothing more


def test_the_last_stage_fails_with_the_count_left_how_long_and_what_finishes_it(
    iot: Iot, clock: SimClock
) -> None:
    ids = job_ids(30)
    iot.create_jobs(*ids)
    iot.lifecycle.hold_slots(10, seconds=7200)  # other stacks hold every slot

    outcome = run_delete(iot, clock, stage(3, 3, ids, 600), TIMING)

    message = str(outcome.error)
    assert isinstance(outcome.error, CleanupTimeoutError), message
    assert message.startswith(
        f"Stage 3 of 3, the last, timed out after {outcome.elapsed:.0f} s (about 2.2 h with the stages "
        "before it) with 30 of 30 jobs not deleted: "
    ), message
    assert "run cdk destroy again, or iot-job-cleanup resume --stack OtaFleet (no time limit)" in message


def test_a_single_stage_cleanup_fails_as_before_and_names_resume(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(3)
    iot.create_jobs(*ids)
    iot.lifecycle.hold_slots(10, seconds=7200)

    outcome = run_delete(iot, clock, event("Delete", ids, TotalTimeoutSeconds="120"), TIMING)

    message = str(outcome.error)
    assert message.startswith(f"Timed out after {outcome.elapsed:.0f} s with 3 of 3 jobs not deleted: ")
    assert "iot-job-cleanup resume --stack OtaFleet" in message


@pytest.mark.parametrize("status", ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"])
def test_updates_adding_or_removing_stages_touch_no_job(iot: Iot, clock: SimClock, status: str) -> None:
    ids = job_ids(3)
    iot.create_jobs(*ids)
    iot.stack_status(status)
    handler = Handler(iot, clock, TIMING)
    added = stage(2, 6, ids, 3600)
    added["RequestType"] = "Create"
    first = stage(1, 6, ids, 3600)  # the first stage gains Stage and Stages: an Update
    first["RequestType"] = "Update"
    first["OldResourceProperties"] = event("Delete", ids)["ResourceProperties"]

    assert handler.on_event(added)["PhysicalResourceId"]
    assert handler.on_event(first)["PhysicalResourceId"] == "iot-job-cleanup:OtaJobsCleanup"  # kept
    removed = stage(4, 6, ids, 3600)  # an update from 6 hours to 3 removes stages 4 to 6
    assert run_delete(iot, clock, removed, TIMING).complete

    assert iot.existing() == set(ids)
    assert iot.lifecycle.calls["DeleteJob"] == 0


@pytest.mark.parametrize(
    ("stage_value", "stages_value"),
    [("0", "2"), ("3", "2"), ("1", "25"), ("one", "2"), ("1", None), (None, "2"), ("1.5", "2"), ("-1", "2")],
)
def test_stage_numbers_outside_the_rule_are_refused_naming_it(
    stage_value: str | None, stages_value: str | None
) -> None:
    properties: dict[str, Any] = {"JobIds": ["ota-1"]}
    if stage_value is not None:
        properties["Stage"] = stage_value
    if stages_value is not None:
        properties["Stages"] = stages_value

    with pytest.raises(InvalidPropertiesError, match=r"1 <= Stage <= Stages <= 24"):
        CleanupRequest.from_properties(properties)


def test_stage_numbers_within_the_rule_say_which_stages_hand_on() -> None:
    def request(stage_value: str, stages_value: str) -> CleanupRequest:
        return CleanupRequest.from_properties({"JobIds": ["a"], "Stage": stage_value, "Stages": stages_value})

    assert request("1", "2").hands_on and not request("2", "2").hands_on
    assert not CleanupRequest.from_properties({"JobIds": ["a"]}).hands_on  # one stage: today's resource
    assert (request("24", "24").stage, request("24", "24").stages) == (24, 24)
