"""Jobs selected by tags, thing groups and id prefix, found from IoT at Delete time.

The handler runs against the emulator through the real boto3 client, as the Provider runs
it (``run_delete``). Bystanders (untagged, in another group, namespace or prefix) stay.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

import iot_job_cleanup_handler as handler
from support import ACCOUNT, REGION, Handler, Iot, SimClock, event, fail_calls, run_delete

FLEET = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/fleet"
OTHER = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/other-fleet"
THING = f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/sensor-9"
OURS = {"fleet": "demo-ota"}


def job(
    iot: Iot,
    job_id: str,
    *,
    targets: list[str] | None = None,
    tags: dict[str, str] | None = None,
    **kwargs: Any,
) -> str:
    iot.lifecycle.create_job(job_id, targets=targets or [FLEET], tags=tags, **kwargs)
    return job_id


def selecting(**properties: Any) -> dict[str, Any]:
    request = event("Delete", [], **properties)
    del request["ResourceProperties"]["JobIds"]
    return request


TAGS = [{"Key": "fleet", "Value": "demo-ota"}]


def test_tags_select_exactly_the_jobs_carrying_every_tag(iot: Iot, clock: SimClock) -> None:
    ours = {job(iot, f"rollout-{n}", tags={**OURS, "wave": str(n)}) for n in range(12)}
    job(iot, "untagged")
    job(iot, "other-value", tags={"fleet": "someone-else"})
    job(iot, "half-tagged", tags={"wave": "1"})

    outcome = run_delete(iot, clock, selecting(JobTags=TAGS))

    assert outcome.complete, outcome.error
    assert iot.existing() == {"untagged", "other-value", "half-tagged"}
    assert set(iot.lifecycle.deleted) == ours


def test_thing_groups_select_jobs_targeting_any_of_them_scheduled_ones_included(
    iot: Iot, clock: SimClock
) -> None:
    job(iot, "in-fleet")
    job(iot, "in-fleet-scheduled", status="SCHEDULED")  # ListJobs(thingGroupName) leaves it out
    job(iot, "in-both", targets=[FLEET, OTHER])
    job(iot, "other-group", targets=[OTHER])
    job(iot, "other-scheduled", targets=[OTHER], status="SCHEDULED")
    job(iot, "a-thing", targets=[THING])

    outcome = run_delete(iot, clock, selecting(ThingGroupNames=["fleet"], Force="true"))

    assert outcome.complete, outcome.error
    assert iot.existing() == {"other-group", "other-scheduled", "a-thing"}


def test_a_prefix_selects_jobs_whose_id_starts_with_it(iot: Iot, clock: SimClock) -> None:
    job(iot, "ota-1")
    job(iot, "ota-2", targets=[OTHER])
    job(iot, "xota-3")
    job(iot, "OTA-4")

    outcome = run_delete(iot, clock, selecting(JobIdPrefix="ota-"))

    assert outcome.complete, outcome.error
    assert iot.existing() == {"xota-3", "OTA-4"}


def test_filters_combine_with_and_and_named_jobs_add_to_them(iot: Iot, clock: SimClock) -> None:
    job(iot, "ota-tagged-in-fleet", tags=OURS)
    job(iot, "ota-tagged-elsewhere", targets=[OTHER], tags=OURS)
    job(iot, "ota-untagged-in-fleet")
    job(iot, "cfg-tagged-in-fleet", tags=OURS)
    job(iot, "named-anyway", targets=[OTHER])

    request = event("Delete", ["named-anyway"], JobTags=TAGS, ThingGroupNames=["fleet"], JobIdPrefix="ota-")
    outcome = run_delete(iot, clock, request)

    assert outcome.complete, outcome.error
    assert iot.existing() == {"ota-tagged-elsewhere", "ota-untagged-in-fleet", "cfg-tagged-in-fleet"}


def test_jobs_in_a_namespace_match_only_when_the_cleanup_names_it(iot: Iot, clock: SimClock) -> None:
    job(iot, "ota-plain")
    job(iot, "ota-greengrass", namespace_id="greengrass")

    without = run_delete(iot, clock, selecting(JobIdPrefix="ota-"))
    assert without.complete, without.error
    assert iot.existing() == {"ota-greengrass"}

    with_namespace = run_delete(iot, clock, selecting(JobIdPrefix="ota-", NamespaceId="greengrass"))
    assert with_namespace.complete, with_namespace.error
    assert iot.existing() == set()


def test_hundreds_of_discovered_jobs_keep_ten_slots_busy_with_bounded_calls(
    iot: Iot, clock: SimClock
) -> None:
    for n in range(200):
        job(iot, f"rollout-{n:03d}", tags=OURS)
    for n in range(300):
        job(iot, f"bystander-{n:03d}")

    production = handler.Timing(query_interval=10, total_timeout=3600, poll_interval=2, poll_window=300)
    outcome = run_delete(iot, clock, selecting(JobTags=TAGS, JobIdPrefix="rollout-"), production)

    assert outcome.complete, outcome.error
    assert iot.existing() == {f"bystander-{n:03d}" for n in range(300)}
    assert outcome.elapsed <= 200 * 30 / 10 * 1.1
    calls = sum(iot.lifecycle.calls.values())
    assert calls / outcome.elapsed <= 2.0, f"{calls} IoT calls in {outcome.elapsed} s: {iot.lifecycle.calls}"


def test_a_job_created_during_the_delete_is_deleted_too(iot: Iot, clock: SimClock) -> None:
    for n in range(15):
        job(iot, f"rollout-{n:02d}", tags=OURS)
    late: list[str] = []

    def a_rollout_function_still_running(params: Any, **_: Any) -> None:
        if iot.lifecycle.calls["DeleteJob"] == 12 and not late:
            late.append(job(iot, "rollout-late", tags=OURS))

    iot.client.meta.events.register("before-call.iot.DeleteJob", a_rollout_function_still_running)

    outcome = run_delete(iot, clock, selecting(JobTags=TAGS))

    assert late and outcome.complete, outcome.error
    assert iot.existing() == set()
    assert "rollout-late" in iot.lifecycle.deleted


def test_throttled_discovery_is_retried_and_never_fails_is_complete(iot: Iot, clock: SimClock) -> None:
    for n in range(30):
        job(iot, f"rollout-{n:02d}", tags=OURS)
    throttled = fail_calls(iot.client, "ListTagsForResource", "ThrottlingException", 429, times=5)
    listed = fail_calls(iot.client, "ListJobs", "ThrottlingException", 429, times=3)

    outcome = run_delete(iot, clock, selecting(JobTags=TAGS))

    assert outcome.complete, outcome.error
    assert throttled == [5] and listed == [3]
    assert iot.existing() == set()


def test_a_look_refused_because_the_job_lost_our_tags_means_it_is_not_ours(iot: Iot, clock: SimClock) -> None:
    """IAM's aws:ResourceTag conditions answer AccessDenied for a job without our tags: when
    the job's tags, read afresh, lack ours, the refusal is that condition, and the job is left."""
    job(iot, "rollout-1", tags=OURS)
    job(iot, "rollout-2", tags=OURS)
    denied = []

    def tags_removed_then_denied(params: Any, **_: Any) -> None:
        if params["url_path"].endswith("/rollout-2"):
            iot.lifecycle.tags["rollout-2"] = {"fleet": "another"}  # someone re-tagged it
            denied.append(params["url_path"])
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeJob")

    iot.client.meta.events.register("before-call.iot.DescribeJob", tags_removed_then_denied)

    outcome = run_delete(iot, clock, selecting(JobTags=TAGS))

    assert outcome.complete, outcome.error
    assert denied
    assert iot.existing() == {"rollout-2"}


def test_a_look_refused_at_a_job_that_carries_our_tags_fails_naming_it(iot: Iot, clock: SimClock) -> None:
    """The tag conditions cannot explain the refusal: an SCP or a boundary denies it (I3)."""
    job(iot, "rollout-1", tags=OURS)
    job(iot, "rollout-2", tags=OURS)

    def deny_rollout_2(params: Any, **_: Any) -> None:
        if params["url_path"].endswith("/rollout-2"):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeJob")

    iot.client.meta.events.register("before-call.iot.DescribeJob", deny_rollout_2)

    outcome = run_delete(iot, clock, selecting(JobTags=TAGS))

    assert isinstance(outcome.error, handler.RefusedError)
    message = str(outcome.error)
    assert "'rollout-2'" in message and "DescribeJob" in message and "AccessDeniedException" in message
    assert "service control policy" in message
    assert "rollout-2" in iot.existing()


def test_a_discovered_running_job_needs_force_like_a_named_one(iot: Iot, clock: SimClock) -> None:
    job(iot, "rollout-running", tags=OURS, status="IN_PROGRESS")

    outcome = run_delete(iot, clock, selecting(JobTags=TAGS))

    assert isinstance(outcome.error, handler.ForceRequiredError)
    assert "'rollout-running' is IN_PROGRESS" in str(outcome.error)
    assert iot.existing() == {"rollout-running"}


def test_the_event_stays_small_whatever_discovery_finds(iot: Iot, clock: SimClock) -> None:
    for n in range(120):
        job(iot, f"rollout-{n:03d}-" + "x" * 50, tags=OURS)
    request = selecting(JobTags=TAGS)

    result = Handler(iot, clock, handler.Timing()).on_event(request)

    import json

    calls = result.pop(handler.RECENT_CALLS_KEY)
    assert len(json.dumps(result)) < 300, result
    assert len(json.dumps(calls)) < 40 * len(calls), calls  # a count and a time per operation


def test_a_refused_deletion_of_a_selected_job_fails_the_cleanup_naming_it(iot: Iot, clock: SimClock) -> None:
    """A DeleteJob refused for a job that carries our tags is never success (I2, I3)."""
    job(iot, "rollout-1", tags=OURS)
    job(iot, "rollout-2", tags=OURS)

    def deny_rollout_2(params: Any, **_: Any) -> None:
        if params["url_path"].endswith("/rollout-2"):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DeleteJob")

    iot.client.meta.events.register("before-call.iot.DeleteJob", deny_rollout_2)

    outcome = run_delete(iot, clock, selecting(JobTags=TAGS))

    assert isinstance(outcome.error, handler.RefusedError)
    assert "DeleteJob on job 'rollout-2'" in str(outcome.error)
    assert "rollout-2" in iot.existing()


def test_a_refused_deletion_of_the_last_job_that_lost_our_tags_is_left_alone(
    iot: Iot, clock: SimClock
) -> None:
    job(iot, "rollout-1", tags=OURS)
    job(iot, "rollout-2", tags=OURS)

    def retagged_then_denied(params: Any, **_: Any) -> None:
        if params["url_path"].endswith("/rollout-2"):
            iot.lifecycle.tags["rollout-2"] = {}
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DeleteJob")

    iot.client.meta.events.register("before-call.iot.DeleteJob", retagged_then_denied)

    outcome = run_delete(iot, clock, selecting(JobTags=TAGS))

    assert outcome.complete, outcome.error
    assert iot.existing() == {"rollout-2"}


def test_with_tags_and_groups_an_untagged_scheduled_job_iam_hides_is_no_failure(
    iot: Iot, clock: SimClock
) -> None:
    """IAM's tag conditions deny DescribeJob on untagged jobs: tags are checked first, and a
    refused look is no match."""
    job(iot, "rollout-later", tags=OURS, status="SCHEDULED")
    job(iot, "someone-elses-later", status="SCHEDULED")

    def iam_tag_condition(params: Any, **_: Any) -> None:
        job_id = params["url_path"].rsplit("/", 1)[-1]
        if iot.lifecycle.tags.get(job_id) != OURS:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeJob")

    iot.client.meta.events.register("before-call.iot.DescribeJob", iam_tag_condition)

    outcome = run_delete(iot, clock, selecting(JobTags=TAGS, ThingGroupNames=["fleet"], Force="true"))

    assert outcome.complete, outcome.error
    assert iot.existing() == {"someone-elses-later"}


def test_a_job_whose_tags_were_taken_away_since_they_were_read_is_left_alone(
    iot: Iot, clock: SimClock
) -> None:
    """Tags read a while ago (kept while the container is warm) never decide a deletion:
    they are asked again just before it."""
    for n in range(10):
        job(iot, f"a-busy-{n}", tags=OURS)  # these take the 10 slots first
    job(iot, "rollout-later", tags=OURS)  # found and read now, its turn comes later
    request = selecting(JobTags=TAGS)
    lambda_handler = Handler(iot, clock, handler.Timing())
    started = lambda_handler.on_event(request)
    short = Handler(iot, clock, handler.Timing(poll_window=20))  # returns before a slot frees
    assert short.is_complete({**request, **started}) == {"IsComplete": False}
    assert iot.status("rollout-later") == "COMPLETED"  # found and its tags read while it waits
    iot.lifecycle.tags["rollout-later"] = {}  # someone takes our tag off
    clock.sleep(400)  # longer ago than tags read are trusted for a deletion

    assert lambda_handler.is_complete({**request, **started}) == {"IsComplete": True}
    assert iot.existing() == {"rollout-later"}
