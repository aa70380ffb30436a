"""A cleanup longer than an hour is one custom resource per hour, its stages: laid out so that
CloudFormation deletes them one after another, first the resource that was always there, all
through the stack's one provider, with the job creator gone before and the IAM after them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from iot_job_cleanup import IotJobCleanup
from iot_job_cleanup.provider import run_request
from iot_job_cleanup_handler import Timing
from support import Iot, SimClock, entry_points, event, job_ids

TIMING = Timing(query_interval=10, total_timeout=3600, poll_interval=2, poll_window=300, report_margin=30)

RESOURCE = "Custom::IotJobCleanup"


def stack_with(**props: Any) -> tuple[cdk.Stack, IotJobCleanup]:
    stack = cdk.Stack(cdk.App(), "Stack")
    return stack, IotJobCleanup(stack, "OtaCleanup", **props)


def resources(template: Template) -> dict[str, dict[str, Any]]:
    return template.to_json()["Resources"]


def stage_ids(stack: cdk.Stack, cleanup: IotJobCleanup) -> list[str]:
    return [stack.resolve(stage.node.default_child.logical_id) for stage in cleanup.stages]  # type: ignore[union-attr]


def deletion_order(template: dict[str, dict[str, Any]]) -> list[list[str]]:
    """CloudFormation's deletion, wave by wave: a resource goes once nothing left depends on it."""
    depends = {logical_id: set(body.get("DependsOn", [])) for logical_id, body in template.items()}
    left, waves = set(depends), []
    while left:
        wave = sorted(r for r in left if not any(r in depends[other] for other in left if other != r))
        assert wave, "a dependency cycle"
        waves.append(wave)
        left -= set(wave)
    return waves


def test_six_hours_are_six_stages_deleted_one_after_another_first_the_resource_of_old() -> None:
    stack, cleanup = stack_with(job_ids=["ota-1"], total_timeout=cdk.Duration.hours(6))
    template = resources(Template.from_stack(stack))
    ids = stage_ids(stack, cleanup)

    assert [stage.node.id for stage in cleanup.stages] == ["Resource", *(f"Stage{n}" for n in range(2, 7))]
    assert cleanup.resource is cleanup.stages[0]
    stage_waves = [[r for r in wave if r in ids] for wave in deletion_order(template)]
    assert [wave for wave in stage_waves if wave] == [[stage_id] for stage_id in ids]  # never two at once
    for number, stage_id in enumerate(ids, start=1):
        body = template[stage_id]
        assert body["Type"] == RESOURCE
        assert body["Properties"]["Stage"] == str(number) and body["Properties"]["Stages"] == "6"
        assert body["Properties"]["Cleanup"] == "OtaCleanup"
        assert body["Properties"]["TotalTimeoutSeconds"] == "3600"
        assert body["Properties"]["ServiceTimeout"] == "3600"
    tokens = {str(template[stage_id]["Properties"]["ServiceToken"]) for stage_id in ids}
    assert len(tokens) == 1  # the stack's one provider


def test_a_total_that_is_not_whole_hours_gives_the_last_stage_the_rest() -> None:
    stack, cleanup = stack_with(job_ids=["ota-1"], total_timeout=cdk.Duration.minutes(150))
    template = resources(Template.from_stack(stack))

    timeouts = [template[stage_id]["Properties"]["ServiceTimeout"] for stage_id in stage_ids(stack, cleanup)]
    assert timeouts == ["3600", "3600", "1800"]


def test_an_hour_or_less_is_the_one_resource_of_old_without_stage_properties() -> None:
    stack, cleanup = stack_with(job_ids=["ota-1"], total_timeout=cdk.Duration.minutes(20))
    template = resources(Template.from_stack(stack))

    (stage_id,) = stage_ids(stack, cleanup)
    assert (
        "Stage" not in template[stage_id]["Properties"] and "Stages" not in template[stage_id]["Properties"]
    )
    assert template[stage_id]["Properties"]["ServiceTimeout"] == "1200"


def test_going_from_one_hour_to_six_adds_stages_and_replaces_nothing() -> None:
    before_stack, before = stack_with(job_ids=["ota-1"], tags={"fleet": "a"})
    after_stack, after = stack_with(
        job_ids=["ota-1"], tags={"fleet": "a"}, total_timeout=cdk.Duration.hours(6)
    )
    old, new = resources(Template.from_stack(before_stack)), resources(Template.from_stack(after_stack))
    first = stage_ids(before_stack, before)[0]

    assert stage_ids(after_stack, after)[0] == first  # the same logical id: no replacement
    assert set(old) < set(new)
    assert set(new) - set(old) == set(stage_ids(after_stack, after)[1:])
    for logical_id, body in old.items():
        if logical_id != first:
            assert new[logical_id] == body, logical_id  # nothing else changes
    changed = {
        k for k in new[first]["Properties"] if new[first]["Properties"][k] != old[first]["Properties"].get(k)
    }
    assert changed == {"Stage", "Stages"}  # an Update, which touches no job


def test_the_job_creator_goes_before_every_stage_and_the_iam_after_them() -> None:
    stack, cleanup = stack_with(
        tags={"fleet": "a"}, job_id_prefix="ota-", total_timeout=cdk.Duration.hours(3)
    )
    function = lambda_.Function(
        stack,
        "JobCreator",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
    )
    cleanup.grant_create_jobs(function)
    template = resources(Template.from_stack(stack))
    waves = deletion_order(template)
    wave_of = {logical_id: index for index, wave in enumerate(waves) for logical_id in wave}
    ids = stage_ids(stack, cleanup)

    creator = next(
        r for r in template if r.startswith("JobCreator") and template[r]["Type"] == "AWS::Lambda::Function"
    )
    assert wave_of[creator] < min(wave_of[s] for s in ids)
    iam = [r for r, body in template.items() if body["Type"].startswith("AWS::IAM::") and "HandlerRole" in r]
    iam += [r for r in template if "SelectionPolicy" in r]
    assert iam and all(wave_of[r] > max(wave_of[s] for s in ids) for r in iam), iam


@pytest.mark.parametrize(
    ("policy", "deletion"), [(cdk.RemovalPolicy.RETAIN, "Retain"), (cdk.RemovalPolicy.DESTROY, "Delete")]
)
def test_removal_policy_applies_to_every_stage(policy: cdk.RemovalPolicy, deletion: str) -> None:
    stack, cleanup = stack_with(job_ids=["a"], total_timeout=cdk.Duration.hours(4), removal_policy=policy)
    template = resources(Template.from_stack(stack))

    assert [template[s]["DeletionPolicy"] for s in stage_ids(stack, cleanup)] == [deletion] * 4


def test_the_metrics_name_the_handlers_namespace_and_dimensions_and_the_log_group_is_the_providers() -> None:
    stack = cdk.Stack(cdk.App(), "Fleet")
    inner = cdk.aws_s3.Bucket(stack, "Holder")  # a construct to nest the cleanup under
    cleanup = IotJobCleanup(
        inner, "RuntimeRolloutsCleanup", tags={"fleet": "a"}, total_timeout=cdk.Duration.hours(2)
    )

    for metric, name, statistic in [
        (cleanup.metric_jobs_left(), "JobsLeft", "Maximum"),
        (cleanup.metric_jobs_deleting(), "JobsDeleting", "Maximum"),
        (cleanup.metric_jobs_deleted(), "JobsDeleted", "Sum"),
    ]:
        assert metric.namespace == "IotJobCleanup" and metric.metric_name == name
        assert metric.dimensions == {"StackName": "Fleet", "Cleanup": "Holder/RuntimeRolloutsCleanup"}
        assert metric.statistic == statistic
        assert metric.period.to_seconds() == 60
    assert cleanup.metric_jobs_left(period=cdk.Duration.minutes(5)).period.to_seconds() == 300
    assert cleanup.log_group is stack.node.find_child("IotJobCleanupProvider").log_group


def test_an_alarm_on_a_metric_agrees_with_what_every_stage_of_the_handler_writes(
    iot: Iot, clock: SimClock
) -> None:
    stack = cdk.Stack(cdk.App(), "OtaFleet")  # the stack of support's StackId
    holder = cdk.aws_s3.Bucket(stack, "Fleet")
    cleanup = IotJobCleanup(holder, "OtaCleanup", job_id_prefix="ota-", total_timeout=cdk.Duration.hours(2))
    template = resources(Template.from_stack(stack))
    ids = job_ids(60)
    iot.create_jobs(*ids)
    lines: list[str] = []
    on_event, is_complete = entry_points(iot, clock, TIMING, write_metrics=lines.append)

    for number, stage_id in enumerate(stage_ids(stack, cleanup), start=1):
        properties = {k: v for k, v in template[stage_id]["Properties"].items() if k != "ServiceToken"}
        if number == 1:
            properties["TotalTimeoutSeconds"] = "120"  # short, so that stage 1 hands over
        request = {**event("Delete", []), "LogicalResourceId": stage_id, "ResourceProperties": properties}
        run_request(request, on_event, is_complete, sleep=clock.sleep, query_interval=TIMING.query_interval)

    records = [json.loads(line) for line in lines]
    assert iot.existing() == set()
    for metric in (cleanup.metric_jobs_left(), cleanup.metric_jobs_deleting(), cleanup.metric_jobs_deleted()):
        (directive,) = records[0]["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == metric.namespace
        assert metric.metric_name in {m["Name"] for m in directive["Metrics"]}
        for record in records:
            assert {name: record[name] for name in directive["Dimensions"][0]} == metric.dimensions
    assert [r["HandOvers"] for r in records].count(1) == 1 and records[-1]["JobsLeft"] == 0
    assert sum(r["JobsDeleted"] for r in records) == 60
    assert {r["Stage"] for r in records} == {1, 2}


def test_the_readmes_dashboard_and_alarm_recipe_synthesizes_on_the_handlers_metrics() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Watching a teardown", 1)[1]
    recipe = section.split("```python\n", 1)[1].split("```", 1)[0]
    stack = cdk.Stack(cdk.App(), "Fleet")

    exec(recipe, {"self": stack, "IotJobCleanup": IotJobCleanup})  # our own README

    template = Template.from_stack(stack)
    (alarm,) = template.find_resources("AWS::CloudWatch::Alarm").values()
    assert alarm["Properties"]["Namespace"] == "IotJobCleanup"
    assert alarm["Properties"]["MetricName"] == "JobsDeleted"
    assert {d["Name"]: d["Value"] for d in alarm["Properties"]["Dimensions"]} == {
        "StackName": "Fleet",
        "Cleanup": "RuntimeRolloutsCleanup",
    }
    assert len(template.find_resources("AWS::CloudWatch::Dashboard")) == 1
    assert len(template.find_resources(RESOURCE)) == 6


def test_the_constructs_cap_on_total_timeout_is_the_handlers_cap_on_stages() -> None:
    """Two sides of one rule: 24 hours at synth, Stages at most 24 in the handler."""
    from iot_job_cleanup.synth.options import MAX_TOTAL_TIMEOUT, STAGE_TIMEOUT
    from iot_job_cleanup_handler.contract import MAX_STAGES
    from iot_job_cleanup_handler.contract import MAX_TOTAL_TIMEOUT as STAGE_SECONDS

    assert (
        MAX_TOTAL_TIMEOUT.to_seconds()
        == MAX_STAGES * STAGE_SECONDS
        == MAX_STAGES * STAGE_TIMEOUT.to_seconds()
    )
    _, cleanup = stack_with(job_ids=["a"], total_timeout=MAX_TOTAL_TIMEOUT)
    assert len(cleanup.stages) == MAX_STAGES
