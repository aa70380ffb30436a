"""The emulator's model of IoT jobs beyond moto: tags, list filters and paging, cancel, rates."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, Iot, SimClock
from iot_job_cleanup.emulator import DeletionLifecycle, LifecycleClient, TaggingClient

GROUP_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/fleet"
OTHER_GROUP_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/other"


def listed(client: object, **filters: object) -> list[str]:
    ids, token = [], None
    while True:
        page = client.list_jobs(maxResults=250, **filters, **({"nextToken": token} if token else {}))
        ids += [job["jobId"] for job in page["jobs"]]
        token = page.get("nextToken")
        if not token:
            return ids


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
        ) < 10 else iot.lifecycle.backend.jobs.pop(job["jobId"])
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
