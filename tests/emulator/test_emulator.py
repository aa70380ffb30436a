"""The emulator's model of IoT jobs beyond moto: tags, list filters and paging, cancel, rates."""

from __future__ import annotations

import json
import threading

import pytest
from botocore.exceptions import ClientError

from iot_job_cleanup import emulator
from iot_job_cleanup.emulator import (
    DeletionLifecycle,
    JobSnapshot,
    LifecycleClient,
    StackStatusClient,
    TaggingClient,
    emulated_stack,
)
from support import ACCOUNT, REGION, Iot, SimClock, listed

GROUP_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/fleet"
OTHER_GROUP_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/other"


def test_tags_given_to_create_job_are_listed_for_the_job(iot: Iot) -> None:
    iot.client.create_job(
        jobId="ota-7", targets=[GROUP_ARN], document=json.dumps({}), tags=[{"Key": "fleet", "Value": "demo"}]
    )
    arn = iot.client.describe_job(jobId="ota-7")["job"]["jobArn"]

    assert iot.client.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "fleet", "Value": "demo"}]


def test_list_jobs_by_thing_group_leaves_scheduled_jobs_out_as_iot_does(iot: Iot) -> None:
    iot.lifecycle.create_job("in-group", targets=[GROUP_ARN])
    iot.lifecycle.create_job("in-group-scheduled", targets=[GROUP_ARN], status="SCHEDULED")
    iot.lifecycle.create_job("other-group", targets=[OTHER_GROUP_ARN])

    assert listed(iot.client, thingGroupName="fleet") == ["in-group"]
    assert listed(iot.client, status="SCHEDULED") == ["in-group-scheduled"]


def test_pages_hold_at_most_250_and_a_deletion_shifts_no_page(iot: Iot, clock: SimClock) -> None:
    for index in range(600):
        iot.lifecycle.create_job(f"job-{index:03d}", targets=[GROUP_ARN])
    first = iot.client.list_jobs(maxResults=250)
    for job in first["jobs"][:100]:
        iot.lifecycle.delete_job(job["jobId"], force=False, namespace_id=None) if len(
            iot.lifecycle.deleting
        ) < 10 else iot.lifecycle.remove_job(job["jobId"])
    second = iot.client.list_jobs(maxResults=500, nextToken=first["nextToken"])

    assert len(first["jobs"]) == 250
    assert [job["jobId"] for job in second["jobs"]] == [f"job-{index:03d}" for index in range(250, 500)]


def test_cancel_without_force_lets_executions_in_progress_finish(iot: Iot, clock: SimClock) -> None:
    iot.lifecycle.create_job("rollout", targets=[GROUP_ARN], status="IN_PROGRESS", executions_finish_in=120)

    iot.client.cancel_job(jobId="rollout", reasonCode="STACK_TEARDOWN", comment="by the cleanup")
    job = iot.client.describe_job(jobId="rollout")["job"]
    clock.sleep(120)
    later = iot.client.describe_job(jobId="rollout")["job"]

    assert job["status"] == "CANCELED" and job["reasonCode"] == "STACK_TEARDOWN"
    assert job["jobProcessDetails"]["numberOfInProgressThings"] == 1
    assert later["jobProcessDetails"]["numberOfInProgressThings"] == 0
    assert later["jobProcessDetails"]["numberOfSucceededThings"] == 1
    with pytest.raises(ClientError, match="InvalidStateTransitionException"):
        iot.client.cancel_job(jobId="rollout")


def test_cancel_with_force_cancels_executions_in_progress(iot: Iot) -> None:
    iot.lifecycle.create_job("continuous", targets=[GROUP_ARN], status="IN_PROGRESS")

    iot.client.cancel_job(jobId="continuous", force=True)

    details = iot.client.describe_job(jobId="continuous")["job"]["jobProcessDetails"]
    assert details["numberOfInProgressThings"] == 0 and details["numberOfCanceledThings"] == 1


def test_describe_job_tells_the_namespace(iot: Iot) -> None:
    iot.lifecycle.create_job("gg-1", targets=[GROUP_ARN], namespace_id="greengrass")

    assert iot.client.describe_job(jobId="gg-1")["job"]["namespaceId"] == "greengrass"


def test_past_the_rate_limit_an_operation_answers_throttling(iot: Iot, clock: SimClock) -> None:
    lifecycle = DeletionLifecycle(iot.lifecycle.backend, clock=clock, rate_limit=10)
    client = LifecycleClient(lifecycle)
    lifecycle.create_job("ota-1", targets=[GROUP_ARN])

    answers = []
    for _ in range(12):
        try:
            client.describe_job(jobId="ota-1")
            answers.append("ok")
        except ClientError as exc:
            answers.append(exc.response["Error"]["Code"])
    client.list_jobs()  # another operation has a bucket of its own
    clock.sleep(0.1)  # a tenth of a second refills one request
    client.describe_job(jobId="ota-1")

    assert answers == ["ok"] * 10 + ["ThrottlingException"] * 2
    assert lifecycle.throttled == {"DescribeJob": 2}


def test_the_tagging_api_answers_iot_jobs_only_when_told_to(iot: Iot, clock: SimClock) -> None:
    lifecycle = DeletionLifecycle(iot.lifecycle.backend, clock=clock)
    lifecycle.create_job("tagged", targets=[GROUP_ARN], tags={"fleet": "demo"})
    lifecycle.create_job("untagged", targets=[GROUP_ARN])
    query = {"TagFilters": [{"Key": "fleet", "Values": ["demo"]}], "ResourceTypeFilters": ["iot:job"]}

    served = TaggingClient(lifecycle, serves_iot_jobs=True).get_resources(**query)
    silent = TaggingClient(lifecycle, serves_iot_jobs=False).get_resources(**query)

    assert [m["ResourceARN"].rsplit("/", 1)[-1] for m in served["ResourceTagMappingList"]] == ["tagged"]
    assert silent["ResourceTagMappingList"] == []


# --------------------------------------------------------------------------- tag pages, cancel record, groups


def all_tags(client: object, arn: str) -> tuple[dict[str, str], int]:
    tags, token, pages = {}, None, 0
    while True:
        page = client.list_tags_for_resource(resourceArn=arn, **({"nextToken": token} if token else {}))
        pages += 1
        tags.update({tag["Key"]: tag["Value"] for tag in page["tags"]})
        token = page.get("nextToken")
        if not token:
            return tags, pages


@pytest.mark.parametrize("path", ["wire", "in-process"])
def test_a_jobs_tags_come_in_pages_of_the_chosen_size_with_a_next_token(
    iot: Iot, clock: SimClock, path: str
) -> None:
    tags = {f"key-{n}": f"value-{n}" for n in range(5)}
    iot.lifecycle.create_job("ota-tagged", targets=[GROUP_ARN], tags=tags)
    iot.lifecycle.tags_page_size = 2
    client = iot.client if path == "wire" else LifecycleClient(iot.lifecycle)
    arn = client.describe_job(jobId="ota-tagged")["job"]["jobArn"]

    first = client.list_tags_for_resource(resourceArn=arn)

    assert [tag["Key"] for tag in first["tags"]] == ["key-0", "key-1"] and first["nextToken"]
    assert all_tags(client, arn) == (tags, 3)
    iot.lifecycle.tags_page_size = None
    assert all_tags(client, arn) == (tags, 1)
    assert "nextToken" not in client.list_tags_for_resource(resourceArn=arn)


@pytest.mark.parametrize("path", ["wire", "in-process"])
def test_describe_job_tells_a_cancels_comment_reason_and_force(iot: Iot, path: str) -> None:
    client = iot.client if path == "wire" else LifecycleClient(iot.lifecycle)
    iot.lifecycle.create_job("plain", targets=[GROUP_ARN], status="IN_PROGRESS")
    iot.lifecycle.create_job("forced", targets=[GROUP_ARN], status="IN_PROGRESS")

    before = client.describe_job(jobId="plain")["job"]
    client.cancel_job(jobId="plain", reasonCode="IOT_JOB_CLEANUP", comment="[record 1000000]")
    client.cancel_job(jobId="forced", force=True)
    plain = client.describe_job(jobId="plain")["job"]
    forced = client.describe_job(jobId="forced")["job"]

    assert "reasonCode" not in before and "comment" not in before
    assert (plain["comment"], plain["reasonCode"], plain["forceCanceled"]) == (
        "[record 1000000]",
        "IOT_JOB_CLEANUP",
        False,
    )
    assert forced["forceCanceled"] is True and "reasonCode" not in forced


@pytest.mark.parametrize("path", ["wire", "in-process"])
def test_list_jobs_by_a_deleted_thing_group_answers_not_found(iot: Iot, path: str) -> None:
    client = iot.client if path == "wire" else LifecycleClient(iot.lifecycle)
    iot.lifecycle.create_job("in-group", targets=[GROUP_ARN])
    assert listed(client, thingGroupName="fleet") == ["in-group"]  # never created in moto: exists

    iot.lifecycle.delete_thing_group("fleet")

    with pytest.raises(ClientError) as raised:
        client.list_jobs(thingGroupName="fleet")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert listed(client) == ["in-group"]  # the job keeps its target
    assert client.describe_job(jobId="in-group")["job"]["targets"] == [GROUP_ARN]


def test_thing_groups_deleted_over_the_wire_are_not_found_and_strict_mode_wants_them_created(
    iot: Iot,
) -> None:
    iot.client.create_thing_group(thingGroupName="fleet")
    iot.lifecycle.create_job("in-group", targets=[GROUP_ARN])
    iot.lifecycle.strict_thing_groups = True
    assert listed(iot.client, thingGroupName="fleet") == ["in-group"]
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        iot.client.list_jobs(thingGroupName="never-created")

    iot.client.delete_thing_group(thingGroupName="fleet")
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        iot.client.list_jobs(thingGroupName="fleet")

    iot.client.create_thing_group(thingGroupName="fleet")  # created again: found again
    assert listed(iot.client, thingGroupName="fleet") == ["in-group"]


def test_other_actors_remove_finish_and_cancel_jobs_without_calls_counted(iot: Iot) -> None:
    iot.lifecycle.create_job("removed", targets=[GROUP_ARN], tags={"fleet": "demo"})
    iot.lifecycle.create_job("finished", targets=[GROUP_ARN], status="IN_PROGRESS")
    iot.lifecycle.create_job("cancelled", targets=[GROUP_ARN], status="IN_PROGRESS")
    calls = dict(iot.lifecycle.calls)

    iot.lifecycle.remove_job("removed")
    iot.lifecycle.finish_job("finished")
    iot.lifecycle.cancel_outside("cancelled", comment="by someone else")

    assert dict(iot.lifecycle.calls) == calls
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        iot.client.describe_job(jobId="removed")
    assert "removed" not in iot.lifecycle.tags
    assert iot.status("finished") == "COMPLETED"
    cancelled = iot.client.describe_job(jobId="cancelled")["job"]
    assert (cancelled["status"], cancelled["comment"]) == ("CANCELED", "by someone else")


# --------------------------------------------------------------------------- nested stacks


def test_describe_stacks_tells_a_nested_stacks_root_and_parent(iot: Iot) -> None:
    root = emulated_stack(ACCOUNT, REGION, "Root", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
    middle = emulated_stack(ACCOUNT, REGION, "RootMiddle", "UPDATE_IN_PROGRESS", root_id=root)
    nested = emulated_stack(
        ACCOUNT, REGION, "RootMiddleLeaf", "DELETE_IN_PROGRESS", root_id=root, parent_id=middle
    )

    (leaf,) = iot.cloudformation.describe_stacks(StackName=nested)["Stacks"]
    (mid,) = iot.cloudformation.describe_stacks(StackName="RootMiddle")["Stacks"]
    (top,) = iot.cloudformation.describe_stacks(StackName=root)["Stacks"]

    assert (leaf["StackStatus"], leaf["RootId"], leaf["ParentId"]) == ("DELETE_IN_PROGRESS", root, middle)
    assert (mid["RootId"], mid["ParentId"]) == (root, root)
    assert "RootId" not in top and "ParentId" not in top
    assert top["StackStatus"] == "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"


def test_the_in_process_stack_client_answers_a_nested_stack_and_its_root() -> None:
    root = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Root/1"
    nested = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Root-Nested-X/2"
    client = StackStatusClient(
        stacks={root: ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", None), nested: ("DELETE_IN_PROGRESS", root)}
    )

    (leaf,) = client.describe_stacks(StackName=nested)["Stacks"]
    (top,) = client.describe_stacks(StackName="Root")["Stacks"]
    client.set_status(root, "DELETE_IN_PROGRESS")

    assert (leaf["StackStatus"], leaf["RootId"], leaf["ParentId"]) == ("DELETE_IN_PROGRESS", root, root)
    assert top["StackStatus"] == "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS" and "RootId" not in top
    assert client.describe_stacks(StackName=root)["Stacks"][0]["StackStatus"] == "DELETE_IN_PROGRESS"
    with pytest.raises(ClientError, match="does not exist"):
        client.describe_stacks(StackName="Elsewhere")
    assert (
        StackStatusClient("UPDATE_IN_PROGRESS").describe_stacks(StackName="Any")["Stacks"][0]["StackStatus"]
        == "UPDATE_IN_PROGRESS"
    )


# --------------------------------------------------------------------------- the read API

THING = f"arn:aws:iot:{REGION}:{ACCOUNT}:thing"


def test_the_read_api_tells_each_job_as_it_is_and_lets_no_time_pass(iot: Iot, clock: SimClock) -> None:
    iot.client.create_thing_group(thingGroupName="fleet")
    iot.client.create_thing(thingName="a")
    iot.lifecycle.create_job(
        "rollout",
        targets=[f"{THING}/a", f"{THING}/b"],
        status="IN_PROGRESS",
        tags={"fleet": "demo"},
        namespace_id="greengrass",
    )
    iot.lifecycle.create_job("done", targets=[GROUP_ARN])
    iot.lifecycle.cancel_outside("rollout", reason_code="STACK_TEARDOWN", comment="by someone else")
    iot.lifecycle.delete_job("done", force=False, namespace_id=None)

    arn = iot.client.describe_job(jobId="rollout")["job"]["jobArn"]
    before = iot.lifecycle.snapshot()
    clock.sleep(30)  # the deletion's time has come, but no call has seen it yet

    assert list(before) == iot.lifecycle.job_ids() == ["rollout", "done"]
    assert before["rollout"] == JobSnapshot(
        job_id="rollout",
        job_arn=arn,
        status="CANCELED",
        targets=(f"{THING}/a", f"{THING}/b"),
        tags={"fleet": "demo"},
        namespace_id="greengrass",
        created_at=1_000_000.0,
        process_details=before["rollout"].process_details,
        comment="by someone else",
        reason_code="STACK_TEARDOWN",
        sequence=1,
    )
    assert before["rollout"].in_progress_things == 2 and before["done"].sequence == 2
    assert iot.lifecycle.execution_statuses("rollout") == {"a": "IN_PROGRESS", "b": "IN_PROGRESS"}
    assert iot.lifecycle.exists("done") and iot.lifecycle.snapshot()["done"].status == "DELETION_IN_PROGRESS"
    assert iot.lifecycle.thing_group_names() == {"fleet"} and iot.lifecycle.thing_names() == {"a"}
    with iot.lifecycle.locked():
        iot.lifecycle.settle()
        assert not iot.lifecycle.exists("done") and iot.lifecycle.snapshot_of("done") is None
        assert iot.lifecycle.execution_statuses("done") == {}
    iot.lifecycle.finish_executions("rollout")
    assert iot.lifecycle.execution_statuses("rollout") == {"a": "SUCCEEDED", "b": "SUCCEEDED"}
    assert before["rollout"].in_progress_things == 2  # a snapshot is a copy


def test_while_locked_no_other_thread_reads_or_calls(iot: Iot) -> None:
    iot.lifecycle.create_job("ota-1", targets=[GROUP_ARN])
    seen: list[bool] = []
    reader = threading.Thread(target=lambda: seen.append(iot.lifecycle.exists("ota-1")))

    with iot.lifecycle.locked():
        iot.lifecycle.remove_job("ota-1")  # the lock is reentrant
        reader.start()
        reader.join(timeout=0.2)
        assert reader.is_alive() and seen == []
        iot.lifecycle.create_job("ota-1", targets=[GROUP_ARN])
    reader.join(timeout=5)

    assert seen == [True]


def test_list_job_executions_for_job_in_process_filters_by_status_and_counts_the_call(iot: Iot) -> None:
    iot.lifecycle.create_job("rollout", targets=[f"{THING}/a", f"{THING}/b"], status="IN_PROGRESS")
    client = LifecycleClient(iot.lifecycle)

    running = client.list_job_executions_for_job(jobId="rollout", status="IN_PROGRESS", maxResults=1)
    none_done = client.list_job_executions_for_job(jobId="rollout", status="SUCCEEDED")

    assert running == {
        "executionSummaries": [{"thingArn": f"{THING}/a", "jobExecutionSummary": {"status": "IN_PROGRESS"}}]
    }
    assert none_done == {"executionSummaries": []}
    assert iot.lifecycle.calls["ListJobExecutionsForJob"] == 2
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.list_job_executions_for_job(jobId="never-created")


# --------------------------------------------------------------------------- the package's names
# (its import rules are test_layout.py's)


def test_every_name_the_emulator_exported_before_the_package_is_still_exported() -> None:
    before = {
        "DeletionLifecycle", "DeletionTime", "LifecycleClient", "StackRecord", "StackStatusClient",
        "TaggingClient", "emulated_iot", "emulated_stack", "set_stack_status",
        "IotApiError", "RateLimit", "OutsideDeletion", "DELETING", "TERMINAL_STATUSES", "RUNNING_STATUSES",
        "MAX_PAGE", "PUBLISHED_RATE_LIMIT",
    }  # fmt: skip

    assert before <= set(emulator.__all__)
    assert all(hasattr(emulator, name) for name in emulator.__all__)
