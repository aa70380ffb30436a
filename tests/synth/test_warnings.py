"""Synth-time warnings (CDK annotations) where a cleanup surprises: IAM that reaches every job
of the account (thing groups alone), and a cleanup that will delete nothing (RETAIN, set
directly or by an Aspect)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import jsii
import pytest
from aws_cdk.assertions import Annotations, Match

from constructs import IConstruct
from iot_job_cleanup import IotJobCleanup


def warnings(stack: cdk.Stack) -> list[str]:
    return [
        str(found.entry.data) for found in Annotations.from_stack(stack).find_warning("*", Match.any_value())
    ]


def stack_with(**props: Any) -> cdk.Stack:
    stack = cdk.Stack(cdk.App(), "Stack")
    IotJobCleanup(stack, "Cleanup", **props)
    return stack


@jsii.implements(cdk.IAspect)
class RetainEverything:
    """What teams add to protect data: every resource RETAIN."""

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, cdk.CfnResource):
            node.apply_removal_policy(cdk.RemovalPolicy.RETAIN)


def test_thing_groups_alone_warn_that_iam_reaches_every_job() -> None:
    (warning,) = warnings(stack_with(thing_groups=["demo-fleet"]))

    assert warning.startswith("IotJobCleanup Stack/Cleanup selects jobs by thing_groups alone")
    assert "any job of the account and region (job/*)" in warning
    assert "Add job_id_prefix='...'" in warning and "[ack: iot-job-cleanup:thingGroupsAlone]" in warning


@pytest.mark.parametrize(
    "props",
    [
        {"thing_groups": ["demo-fleet"], "job_id_prefix": "ota-"},
        {"thing_groups": ["demo-fleet"], "tags": {"fleet": "demo"}},
        {"job_ids": ["ota-1"]},
        {"tags": {"fleet": "demo"}},
    ],
)
def test_a_cleanup_iam_can_narrow_gets_no_warning(props: dict[str, Any]) -> None:
    assert warnings(stack_with(**props)) == []


def test_the_thing_groups_warning_can_be_acknowledged() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    cleanup = IotJobCleanup(stack, "Cleanup", thing_groups=["demo-fleet"])
    cdk.Annotations.of(cleanup).acknowledge_warning("iot-job-cleanup:thingGroupsAlone", "a sandbox account")

    assert warnings(stack) == []


def test_removal_policy_retain_warns_that_the_cleanup_deletes_nothing() -> None:
    stack = stack_with(
        job_ids=["ota-1"], total_timeout=cdk.Duration.hours(2), removal_policy=cdk.RemovalPolicy.RETAIN
    )

    (warning,) = warnings(stack)
    assert warning.startswith(
        "IotJobCleanup Stack/Cleanup will delete no job at cdk destroy: "
        "Resource, Stage2 have DeletionPolicy Retain"
    )


def test_an_aspect_that_retains_every_resource_is_caught_too() -> None:
    stack = stack_with(job_ids=["ota-1"])
    cdk.Aspects.of(stack.node.scope).add(RetainEverything())  # type: ignore[arg-type]

    (warning,) = warnings(stack)
    assert "will delete no job at cdk destroy: Resource has DeletionPolicy Retain" in warning
    assert "or an Aspect that retains every resource" in warning


def test_a_cleanup_that_deletes_gets_no_retain_warning() -> None:
    assert warnings(stack_with(job_ids=["ota-1"])) == []
