"""The synthesized template: properties, IAM scoping, sharing, removal, timing, synth-time errors."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from iot_job_cleanup import IotJobCleanup

RESOURCE = "Custom::IotJobCleanup"


def synth(*cleanups: dict[str, Any]) -> Template:
    stack = cdk.Stack(cdk.App(), "Stack")
    for index, props in enumerate(cleanups):
        IotJobCleanup(stack, f"Cleanup{index}", **props)
    return Template.from_stack(stack)


def job_arn(job_id: Any) -> dict[str, Any]:
    prefix = [
        "arn:",
        {"Ref": "AWS::Partition"},
        ":iot:",
        {"Ref": "AWS::Region"},
        ":",
        {"Ref": "AWS::AccountId"},
    ]
    tail = [f":job/{job_id}"] if isinstance(job_id, str) else [":job/", job_id]
    return {"Fn::Join": ["", prefix + tail]}


def policies(template: Template) -> dict[str, dict[str, Any]]:
    return {
        **template.find_resources("AWS::IAM::Policy"),
        **template.find_resources("AWS::IAM::ManagedPolicy"),
    }


def iot_statements(template: Template) -> list[dict[str, Any]]:
    statements = []
    for policy in policies(template).values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(action.startswith("iot:") for action in actions):
                statements.append({**statement, "Action": actions})
    return statements


def test_properties_are_the_public_contract() -> None:
    template = synth(
        {"job_ids": ["ota-1", "ota-2"]}, {"job_ids": ["gg-1"], "force": True, "namespace_id": "greengrass"}
    )

    template.has_resource_properties(
        RESOURCE, {"JobIds": ["ota-1", "ota-2"], "Force": "false", "NamespaceId": Match.absent()}
    )
    template.has_resource_properties(
        RESOURCE, {"JobIds": ["gg-1"], "Force": "true", "NamespaceId": "greengrass"}
    )


def test_delete_and_describe_are_scoped_to_the_named_job_arns_tokens_included() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    from_parameter = cdk.CfnParameter(stack, "JobId").value_as_string
    IotJobCleanup(stack, "Cleanup", job_ids=["ota-1", from_parameter])

    statements = iot_statements(Template.from_stack(stack))

    scoped = [s for s in statements if "iot:DeleteJob" in s["Action"]]
    assert len(scoped) == 1
    assert sorted(scoped[0]["Action"]) == ["iot:DeleteJob", "iot:DescribeJob"]
    assert scoped[0]["Resource"] == [job_arn("ota-1"), job_arn({"Ref": "JobId"})]
    # The only unscoped IoT action is the read-only ListJobs, which has no resource-level permissions.
    assert [s["Action"] for s in statements if s["Resource"] == "*"] == [["iot:ListJobs"]]


def test_one_set_of_provider_resources_serves_twenty_cleanups() -> None:
    template = synth(*[{"job_ids": [f"job-{index}"]} for index in range(20)])

    template.resource_count_is(RESOURCE, 20)
    template.resource_count_is("AWS::Lambda::Function", 5)  # on_event, is_complete, 3 framework
    template.resource_count_is("AWS::StepFunctions::StateMachine", 1)
    template.resource_count_is("AWS::Logs::LogGroup", 1)
    template.resource_count_is("AWS::IAM::ManagedPolicy", 1)  # 20 job ARNs fit one policy
    arns = [
        arn
        for statement in iot_statements(template)
        if "iot:DeleteJob" in statement["Action"]
        for arn in (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
    ]
    assert sorted(arns, key=str) == sorted((job_arn(f"job-{index}") for index in range(20)), key=str)


def resolved_size(document: dict[str, Any]) -> int:
    """The policy's size as IAM counts it: resolved, without white space."""
    text = json.dumps(document, separators=(",", ":"))
    for pseudo, value in (
        ("AWS::Partition", "aws-us-gov"),
        ("AWS::Region", "ap-southeast-4"),
        ("AWS::AccountId", "1" * 12),
    ):
        text = text.replace(json.dumps({"Ref": pseudo}, separators=(",", ":")), json.dumps(value))
    return len(
        re.sub(
            r'\{"Fn::Join":\["",\[((?:"[^"]*",?)*)\]\]\}',
            lambda m: '"' + "".join(re.findall(r'"([^"]*)"', m.group(1))) + '"',
            text,
        )
    )


def test_hundreds_of_jobs_fit_iam_policy_size_limits_and_all_guard_the_delete() -> None:
    template = synth({"job_ids": [f"ota-2026-11-rollout-wave-{index:04d}" for index in range(600)]})

    managed = template.find_resources("AWS::IAM::ManagedPolicy")
    inline = {k: v for k, v in template.find_resources("AWS::IAM::Policy").items() if "HandlerRole" in k}
    assert 2 <= len(managed) <= 10  # a role holds 10 managed policies without a quota increase
    assert all(resolved_size(p["Properties"]["PolicyDocument"]) <= 6144 for p in managed.values())
    assert all(resolved_size(p["Properties"]["PolicyDocument"]) <= 10240 for p in inline.values())
    granted = sum(
        len(statement["Resource"])
        for policy in [*managed.values(), *inline.values()]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "iot:DeleteJob" in statement["Action"]
    )
    assert granted == 600
    (resource,) = template.find_resources(RESOURCE).values()
    assert set(managed) | set(inline) <= set(resource["DependsOn"])


def test_a_different_timing_gets_its_own_provider() -> None:
    template = synth(
        {"job_ids": ["a"]},
        {"job_ids": ["b"]},
        {
            "job_ids": ["c"],
            "query_interval": cdk.Duration.seconds(30),
            "total_timeout": cdk.Duration.minutes(30),
        },
    )

    template.resource_count_is("AWS::StepFunctions::StateMachine", 2)
    template.resource_count_is("AWS::Lambda::Function", 10)


def test_the_custom_resource_depends_on_the_policy_that_lets_it_delete() -> None:
    template = synth({"job_ids": ["ota-1"]})

    (policy_id,) = [
        logical_id
        for logical_id, policy in policies(template).items()
        if any(
            "iot:DeleteJob" in str(s["Action"]) for s in policy["Properties"]["PolicyDocument"]["Statement"]
        )
    ]
    (resource,) = template.find_resources(RESOURCE).values()
    assert policy_id in resource["DependsOn"]


@pytest.mark.parametrize(
    ("removal_policy", "deletion_policy"),
    [(cdk.RemovalPolicy.DESTROY, "Delete"), (cdk.RemovalPolicy.RETAIN, "Retain")],
)
def test_removal_policy_retain_leaves_the_jobs_alone(
    removal_policy: cdk.RemovalPolicy, deletion_policy: str
) -> None:
    template = synth({"job_ids": ["ota-1"], "removal_policy": removal_policy})

    template.has_resource(
        RESOURCE, {"DeletionPolicy": deletion_policy, "UpdateReplacePolicy": deletion_policy}
    )


def test_timing_reaches_the_waiter_the_service_timeout_and_the_handler() -> None:
    template = synth(
        {
            "job_ids": ["ota-1"],
            "query_interval": cdk.Duration.seconds(15),
            "total_timeout": cdk.Duration.minutes(45),
        }
    )

    template.has_resource_properties(RESOURCE, {"ServiceTimeout": "2700"})
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    definition = "".join(
        part for part in machine["Properties"]["DefinitionString"]["Fn::Join"][1] if isinstance(part, str)
    )
    assert '"IntervalSeconds":15,"MaxAttempts":180,"BackoffRate":1' in definition
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "iot_job_cleanup_handler.is_complete",
            "Environment": {"Variables": {"QUERY_INTERVAL_SECONDS": "15", "TOTAL_TIMEOUT_SECONDS": "2700"}},
            "Timeout": 300 + 15 + 60,  # the polling window, one query interval, a minute
        },
    )


def test_handlers_run_python_on_arm64_and_log_json_with_bounded_retention() -> None:
    template = synth({"job_ids": ["ota-1"]})

    for entry_point in ("on_event", "is_complete"):
        template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": f"iot_job_cleanup_handler.{entry_point}",
                "Runtime": "python3.14",
                "Architectures": ["arm64"],
                "LoggingConfig": Match.object_like({"LogFormat": "JSON"}),
            },
        )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {"LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": False})},
    )


def test_tokens_are_accepted_unchecked() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    namespace = cdk.CfnParameter(stack, "Namespace").value_as_string
    job_id = cdk.CfnParameter(stack, "JobId").value_as_string

    IotJobCleanup(stack, "Cleanup", job_ids=[job_id], namespace_id=namespace)

    Template.from_stack(stack).has_resource_properties(
        RESOURCE, {"JobIds": [{"Ref": "JobId"}], "NamespaceId": {"Ref": "Namespace"}}
    )


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"job_ids": []}, r"job_ids is empty: name at least one job"),
        (
            {"job_ids": "ota-1"},
            r"job_ids is 'ota-1': it must be a list of job ids\. Write job_ids=\['ota-1'\]",
        ),
        (
            {"job_ids": ["ota 1"]},
            r"job_ids contains 'ota 1' \(5 characters\): a job id is 1 to 64 characters",
        ),
        ({"job_ids": ["x" * 65]}, r"\(65 characters\): a job id is 1 to 64 characters"),
        ({"job_ids": [""]}, r"job_ids contains '' \(0 characters\)"),
        ({"job_ids": ["a", "b", "a"]}, r"job_ids names 'a' more than once.*Remove the duplicates"),
        (
            {"job_ids": ["a"], "namespace_id": "green grass"},
            r"namespace_id is 'green grass': it must be letters",
        ),
        (
            {"job_ids": ["a"], "total_timeout": cdk.Duration.minutes(61)},
            r"total_timeout is 3660 s: it may be at most 3600 s",
        ),
        (
            {
                "job_ids": ["a"],
                "query_interval": cdk.Duration.minutes(5),
                "total_timeout": cdk.Duration.minutes(4),
            },
            r"query_interval is 300 s: it must be more than 0 and at most total_timeout \(240 s\)",
        ),
        (
            {"job_ids": ["a"], "query_interval": cdk.Duration.seconds(7)},
            r"total_timeout \(3600 s\) is not a whole multiple of query_interval \(7 s\)",
        ),
        ({"job_ids": ["a"], "removal_policy": cdk.RemovalPolicy.SNAPSHOT}, r"removal_policy is SNAPSHOT"),
    ],
)
def test_bad_settings_fail_at_synth_time_naming_value_rule_and_fix(
    props: dict[str, Any], message: str
) -> None:
    stack = cdk.Stack(cdk.App(), "Stack")

    with pytest.raises(ValueError, match=message):
        IotJobCleanup(stack, "Cleanup", **props)
