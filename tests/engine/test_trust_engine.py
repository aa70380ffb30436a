"""Regression tests of the engine's trust findings (issue 12) that need no fault harness:
nested stacks follow their root (5), the drain time counts from our own cancel record (10),
malformed properties fail with a message (12), and the timeout message counts only the jobs
really left (13)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

import iot_job_cleanup_handler as handler
from support import STACK_ID, THING_ARN, TIMING, Handler, Iot, SimClock, event, fail_calls, run_delete

ROOT_ID = STACK_ID.replace("OtaFleet", "Root")


class NestedStackRecords:
    """DescribeStacks for a nested stack (``STACK_ID``) under a root stack, as CloudFormation
    answers it: the nested stack names its ``RootId`` and ``ParentId``."""

    def __init__(self, nested: str, root: str, *, deny_root: bool = False) -> None:
        self.statuses = {STACK_ID: nested, ROOT_ID: root}
        self.deny_root = deny_root
        self.asked: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        self.asked.append(StackName)
        if StackName == ROOT_ID and self.deny_root:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeStacks")
        record = {
            "StackId": StackName,
            "StackName": StackName.split("/")[1],
            "StackStatus": self.statuses[StackName],
        }
        if StackName == STACK_ID:
            record |= {"RootId": ROOT_ID, "ParentId": ROOT_ID}
        return {"Stacks": [record]}


def delete_with(iot: Iot, clock: SimClock, cloudformation: Any, job_ids: list[str]) -> Any:
    iot.cloudformation = cloudformation
    return run_delete(iot, clock, event("Delete", job_ids))


# --------------------------------------------------------------------------- (5) nested stacks


@pytest.mark.parametrize(
    "root_status",
    ["UPDATE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS"],
)
def test_a_nested_stack_removed_by_its_roots_update_deletes_no_job(
    iot: Iot, clock: SimClock, root_status: str
) -> None:
    """Renaming, moving or removing a NestedStack deletes the nested stack (its status
    DELETE_IN_PROGRESS) while the root lives on: its cleanup must leave the jobs."""
    iot.create_jobs("ota-1", "ota-2")
    stacks = NestedStackRecords("DELETE_IN_PROGRESS", root_status)

    outcome = delete_with(iot, clock, stacks, ["ota-1", "ota-2"])

    assert outcome.complete, outcome.error
    assert iot.existing() == {"ota-1", "ota-2"}
    assert ROOT_ID in stacks.asked


@pytest.mark.parametrize("root_status", ["DELETE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"])
def test_a_nested_stack_torn_down_with_its_root_deletes_its_jobs(
    iot: Iot, clock: SimClock, root_status: str
) -> None:
    iot.create_jobs("ota-1", "ota-2")

    outcome = delete_with(
        iot, clock, NestedStackRecords("DELETE_IN_PROGRESS", root_status), ["ota-1", "ota-2"]
    )

    assert outcome.complete, outcome.error
    assert iot.existing() == set()


def test_a_root_stack_the_handler_may_not_describe_fails_saying_what_to_grant(
    iot: Iot, clock: SimClock
) -> None:
    iot.create_jobs("ota-1")

    outcome = delete_with(
        iot, clock, NestedStackRecords("DELETE_IN_PROGRESS", "DELETE_IN_PROGRESS", deny_root=True), ["ota-1"]
    )

    assert isinstance(outcome.error, handler.CleanupError)
    assert "DescribeStacks" in str(outcome.error) and ROOT_ID in str(outcome.error)
    assert iot.existing() == {"ota-1"}


# --------------------------------------------------------------------------- (10) drain time


def moving_timestamps(iot: Iot, clock: SimClock) -> None:
    """IoT's completedAt and lastUpdatedAt of a cancelled job move while its devices report
    (undocumented either way): a drain timed from them would never end."""
    from datetime import UTC, datetime

    def now_stamped(parsed: dict[str, Any], **_: Any) -> None:
        job = parsed.get("job") or {}
        stamp = datetime.fromtimestamp(clock(), tz=UTC)
        job["completedAt"] = job["lastUpdatedAt"] = stamp

    iot.client.meta.events.register("after-call.iot.DescribeJob", now_stamped)


def running_job(iot: Iot, job_id: str) -> None:
    iot.lifecycle.create_job(job_id, targets=[f"{THING_ARN}-0"], status="IN_PROGRESS")  # devices never finish


def test_the_drain_time_counts_from_our_own_cancel_whatever_iots_timestamps_say(
    iot: Iot, clock: SimClock
) -> None:
    running_job(iot, "rollout-1")
    moving_timestamps(iot, clock)
    started: dict[str, float] = {}
    iot.client.meta.events.register(
        "before-call.iot.DeleteJob", lambda params, **_: started.setdefault("at", clock()) and None
    )
    begin = clock()

    outcome = run_delete(iot, clock, event("Delete", ["rollout-1"], DrainSeconds="60", Force="true"))

    assert outcome.complete, outcome.error
    assert 60 <= started["at"] - begin <= 60 + handler.draining.DRAIN_CHECK_INTERVAL + TIMING.query_interval


def test_without_force_the_drain_ends_in_a_failure_at_its_time(iot: Iot, clock: SimClock) -> None:
    running_job(iot, "rollout-1")
    moving_timestamps(iot, clock)
    begin = clock()

    outcome = run_delete(iot, clock, event("Delete", ["rollout-1"], DrainSeconds="60"))

    assert isinstance(outcome.error, handler.DrainTimeoutError)
    assert outcome.elapsed - 0 <= 60 + 2 * TIMING.query_interval + handler.draining.DRAIN_CHECK_INTERVAL
    assert clock() - begin < 600  # not waited on until the total timeout
    assert iot.status("rollout-1") == "CANCELED"


def test_a_job_cancelled_by_someone_else_drains_from_the_cleanups_start(iot: Iot, clock: SimClock) -> None:
    running_job(iot, "rollout-1")
    iot.client.cancel_job(jobId="rollout-1", comment="cancelled by an operator")
    moving_timestamps(iot, clock)
    begin = clock()
    started: dict[str, float] = {}
    iot.client.meta.events.register(
        "before-call.iot.DeleteJob", lambda params, **_: started.setdefault("at", clock()) and None
    )

    outcome = run_delete(iot, clock, event("Delete", ["rollout-1"], DrainSeconds="60", Force="true"))

    assert outcome.complete, outcome.error
    assert 60 <= started["at"] - begin <= 60 + handler.draining.DRAIN_CHECK_INTERVAL + TIMING.query_interval
    assert iot.lifecycle.calls["CancelJob"] == 1  # ours was not needed: it was cancelled already


# --------------------------------------------------------------------------- (12) malformed properties


def on_event(iot: Iot, clock: SimClock, request: dict[str, Any]) -> dict[str, Any]:
    return Handler(iot, clock).on_event(request)


@pytest.mark.parametrize(
    ("properties", "named"),
    [
        ({"JobTags": [{"Key": "fleet", "Value": "x"}, {"Key": 7, "Value": "x"}]}, "JobTags has the key 7"),
        ({"JobTags": [{"Key": "fleet", "Value": ["x"]}]}, "JobTags gives 'fleet' the value"),
        (
            {"JobTags": [{"Key": "fleet", "Value": "a"}, {"Key": "fleet", "Value": "b"}]},
            "JobTags has the key 'fleet' more than once",
        ),
        ({"JobIdPrefix": ""}, "JobIdPrefix is ''"),
        ({"JobIdPrefix": 5}, "JobIdPrefix is 5"),
    ],
)
def test_malformed_properties_fail_with_the_value_the_rule_and_the_fix(
    iot: Iot, clock: SimClock, properties: dict[str, Any], named: str
) -> None:
    request = event("Delete", [], **properties)
    del request["ResourceProperties"]["JobIds"]

    with pytest.raises(handler.InvalidPropertiesError) as failure:
        on_event(iot, clock, request)

    assert named in str(failure.value)


@pytest.mark.parametrize("key", ["StackId", "RequestType", "LogicalResourceId"])
def test_an_event_without_a_key_the_handler_reads_fails_naming_it(
    iot: Iot, clock: SimClock, key: str
) -> None:
    request = event("Delete", ["ota-1"])
    del request[key]

    with pytest.raises(handler.InvalidPropertiesError, match=f"The event's {key} is None"):
        on_event(iot, clock, request)


def test_a_non_mapping_resource_properties_fails_with_a_message(iot: Iot, clock: SimClock) -> None:
    request = event("Delete", ["ota-1"]) | {"ResourceProperties": ["JobIds"]}

    with pytest.raises(handler.InvalidPropertiesError, match="ResourceProperties is"):
        on_event(iot, clock, request)


# --------------------------------------------------------------------------- (13) the timeout message


def test_the_timeout_counts_only_the_jobs_really_left(iot: Iot, clock: SimClock) -> None:
    ids = [f"ota-{n:03d}" for n in range(25)]
    iot.create_jobs(*ids)
    iot.lifecycle.hold_slots(10, 10_000)  # every slot busy: the cleanup cannot start any

    def someone_deletes_every_other_one(**_: Any) -> None:  # once the cleanup has planned
        for job_id in ids[::2]:
            iot.lifecycle.remove_job(job_id)

    iot.client.meta.events.register("before-call.iot.ListJobs", someone_deletes_every_other_one)
    timing = handler.Timing(
        query_interval=10, total_timeout=120, poll_interval=2, poll_window=60, report_margin=30
    )

    outcome = run_delete(iot, clock, event("Delete", ids), timing)

    assert isinstance(outcome.error, handler.CleanupTimeoutError)
    message = str(outcome.error)
    assert "with 12 of 25 jobs not deleted" in message, message
    assert "(gone" not in message


def test_when_iot_never_answers_the_timeout_says_so_instead_of_an_empty_list(
    iot: Iot, clock: SimClock
) -> None:
    ids = [f"ota-{n:03d}" for n in range(25)]
    iot.create_jobs(*ids)
    for operation in ("DescribeJob", "ListJobs", "DeleteJob"):
        fail_calls(iot.client, operation, "ThrottlingException", 400, times=1_000_000)
    timing = handler.Timing(
        query_interval=10, total_timeout=120, poll_interval=2, poll_window=60, report_margin=30
    )

    outcome = run_delete(iot, clock, event("Delete", ids), timing)

    assert isinstance(outcome.error, handler.CleanupTimeoutError)
    message = str(outcome.error)
    assert "could not be counted" in message and "up to 25 named jobs may be left" in message, message
    assert ": ." not in message
    assert iot.existing() == set(ids)
