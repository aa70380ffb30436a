"""The demo stack: a synth snapshot, cdk-nag's AwsSolutions checks with reasoned acknowledgements,
and the rollout function that creates jobs at runtime for the runtime cleanup to delete."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import boto3
import cdk_nag
import pytest
from aws_cdk.assertions import Template
from moto import mock_aws
from syrupy.extensions.json import JSONSnapshotExtension

import app as demo
import iot_job_cleanup_handler as handler
from iot_job_cleanup import HANDLER_MODULE
from iot_job_cleanup.cfn import OFFLINE_ACCOUNT, OFFLINE_REGION, Intrinsics, as_sent
from iot_job_cleanup.emulator import emulated_iot
from iot_job_cleanup.testing import asset_hashes, mask_asset_hashes


@pytest.fixture(scope="module")
def demo_template() -> dict[str, Any]:
    stack = demo.OtaFleetStack(cdk.App(), "IotJobCleanupDemo")
    return Template.from_stack(stack).to_json()


def test_demo_stack_matches_its_snapshot(demo_template: dict[str, Any], snapshot: Any) -> None:
    # Asset hashes change with every edit of the handler: the snapshot holds "<asset-hash>".
    assert mask_asset_hashes(demo_template) == snapshot(extension_class=JSONSnapshotExtension)


def test_demo_stack_references_the_handler_asset(demo_template: dict[str, Any]) -> None:
    handler_keys = {
        r["Properties"]["Code"]["S3Key"]
        for r in demo_template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Handler"].startswith(f"{HANDLER_MODULE}.")
    }
    assert len(handler_keys) == 1, f"the handler functions should share one code asset: {handler_keys}"
    (handler_hash,) = (key.removesuffix(".zip") for key in handler_keys)
    assert handler_hash in asset_hashes(demo_template)


def test_demo_stack_cleans_up_every_job_it_creates(demo_template: dict[str, Any]) -> None:
    resources = demo_template["Resources"]
    creators = {name for name, r in resources.items() if r["Type"] == "Custom::AWS"}
    cleaned = [
        job_id["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "Custom::IotJobCleanup"
        for job_id in r["Properties"].get("JobIds", [])
    ]
    assert sorted(cleaned) == sorted(creators)
    assert len(cleaned) == demo.ROLLOUT_WAVES + 1


def resource(template: dict[str, Any], prefix: str, resource_type: str) -> tuple[str, dict[str, Any]]:
    """The resource whose logical id starts with ``prefix`` (of a cleanup, its first stage,
    not ``Stage2``...)."""
    (found,) = [
        (name, r)
        for name, r in template["Resources"].items()
        if name.startswith(prefix)
        and not name[len(prefix) :].startswith("Stage")
        and r["Type"] == resource_type
    ]
    return found


def test_the_runtime_cleanup_selects_the_rollout_functions_jobs_and_the_function_goes_first(
    demo_template: dict[str, Any],
) -> None:
    cleanup_id, cleanup = resource(demo_template, "RuntimeRolloutsCleanup", "Custom::IotJobCleanup")
    fleet_id, _ = resource(demo_template, "Fleet", "AWS::IoT::ThingGroup")
    _, function = resource(demo_template, "RolloutFunction", "AWS::Lambda::Function")
    properties = cleanup["Properties"]

    assert "JobIds" not in properties
    assert properties["JobTags"] == [{"Key": key, "Value": value} for key, value in demo.RUNTIME_TAGS.items()]
    assert properties["ThingGroupNames"] == [{"Ref": fleet_id}]
    assert properties["JobIdPrefix"] == demo.RUNTIME_PREFIX
    # Running and scheduled rollouts are cancelled and drained; no force.
    assert (properties["DrainSeconds"], properties["Force"]) == (
        str(demo.RUNTIME_DRAIN_MINUTES * 60),
        "false",
    )
    # The same provider as the named cleanups: one ServiceToken for all.
    tokens = {
        json.dumps(r["Properties"]["ServiceToken"])
        for r in demo_template["Resources"].values()
        if r["Type"] == "Custom::IotJobCleanup"
    }
    assert len(tokens) == 1
    # cdk destroy removes the function before the cleanup runs: no job is created behind it.
    assert cleanup_id in function["DependsOn"]
    assert function["Properties"]["Runtime"] == "python3.14"
    (policy,) = [
        r
        for r in demo_template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        and {"Ref": function["Properties"]["Role"]["Fn::GetAtt"][0]} in r["Properties"]["Roles"]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    create = next(st for st in statements if st["Action"] == "iot:CreateJob")
    assert create["Condition"]["StringEquals"] == {
        f"aws:RequestTag/{key}": value for key, value in demo.RUNTIME_TAGS.items()
    }


def test_the_rollout_function_creates_jobs_the_runtime_cleanup_selects(
    demo_template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inline code itself, run against moto: each job it creates carries the tags, targets
    the fleet and has the prefix, so the handler's own selection takes it."""
    _, function = resource(demo_template, "RolloutFunction", "AWS::Lambda::Function")
    _, cleanup = resource(demo_template, "RuntimeRolloutsCleanup", "Custom::IotJobCleanup")
    intrinsics = Intrinsics.offline("IotJobCleanupDemo", demo_template, strict=False)
    environment = intrinsics.render(function["Properties"]["Environment"]["Variables"])
    # The template's ARN has no offline value (moto does not look the template up anyway).
    environment["JOB_TEMPLATE_ARN"] = (
        f"arn:aws:iot:{OFFLINE_REGION}:{OFFLINE_ACCOUNT}:jobtemplate/{demo.FIRMWARE}"
    )
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    properties = as_sent(intrinsics.render(cleanup["Properties"]))
    selection = handler.CleanupRequest.from_properties(properties).selection
    code = function["Properties"]["Code"]["ZipFile"]

    with mock_aws(), emulated_iot(OFFLINE_ACCOUNT, OFFLINE_REGION) as lifecycle:
        boto3.client("iot").create_thing_group(thingGroupName=demo.FLEET)
        module: dict[str, Any] = {}
        exec(compile(code, "index.py", "exec"), module)  # the demo's own inline code
        now = module["handler"]({}, None)["jobId"]
        later = module["handler"]({"startTime": "2030-01-01T02:00"}, None)["jobId"]
        snapshot = lifecycle.snapshot()
        jobs = {job_id: snapshot[job_id] for job_id in (now, later)}
        tags = {job_id: job.tags for job_id, job in jobs.items()}
        scheduling = boto3.client("iot").describe_job(jobId=later)["job"].get("schedulingConfig")

    assert now != later
    for job_id, job in jobs.items():
        assert selection.id_may_match(job_id)
        assert selection.carries_tags(tags[job_id])
        assert selection.targets_a_group(job.targets)
    assert scheduling == {"startTime": "2030-01-01T02:00"}


def test_cdk_nag_aws_solutions_finds_nothing_unacknowledged(tmp_path: Any) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = demo.OtaFleetStack(app, "IotJobCleanupDemo")
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))

    app.synth()  # raises ValidationFailed, with the findings, on any unacknowledged one

    acknowledged = {
        rule: reason
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:acknowledged-rules"
        for rule, reason in entry.data.items()
    }
    assert acknowledged, "no acknowledgement found: the metadata type may have changed"
    assert all(rule.startswith("AwsSolutions::") for rule in acknowledged)
    short = {rule: reason for rule, reason in acknowledged.items() if len(reason.split()) < 8}
    assert not short, f"every acknowledgement must say why: {short}"
