"""The synthesized template: properties, IAM scoping, sharing, removal, timing, synth-time errors."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ssm as ssm
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
        RESOURCE,
        {
            "JobIds": ["ota-1", "ota-2"],
            "Force": "false",
            "NamespaceId": Match.absent(),
            "QueryIntervalSeconds": "2",
            "TotalTimeoutSeconds": "3600",
        },
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


def test_the_handler_may_read_the_status_of_its_own_stack_only() -> None:
    template = synth({"job_ids": ["ota-1"]})

    (statement,) = [
        statement
        for policy in policies(template).values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "cloudformation" in str(statement["Action"])
    ]
    assert statement["Action"] == "cloudformation:DescribeStacks"
    assert statement["Resource"] == {"Ref": "AWS::StackId"}


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


def service_tokens(template: Template) -> dict[str, Any]:
    return {name: r["Properties"]["ServiceToken"] for name, r in template.find_resources(RESOURCE).items()}


BASELINE = {"job_ids": ["ota-1", "ota-2"]}


@pytest.mark.parametrize(
    "changed",
    [
        {"query_interval": cdk.Duration.seconds(30)},
        {"total_timeout": cdk.Duration.minutes(30)},
        {"query_interval": cdk.Duration.seconds(7), "total_timeout": cdk.Duration.minutes(7)},
        {"force": True},
        {"namespace_id": "greengrass"},
        {"removal_policy": cdk.RemovalPolicy.RETAIN},
        {"job_ids": ["ota-1", "ota-2", "ota-3"]},
    ],
    ids=lambda changed: ",".join(changed),
)
def test_changing_any_option_keeps_every_service_token(changed: dict[str, Any]) -> None:
    """CloudFormation refuses to change a deployed custom resource's ServiceToken
    ("Modifying service token is not allowed."): an update that did would fail and roll back."""
    before = synth(BASELINE, {"job_ids": ["other"]})
    after = synth({**BASELINE, **changed}, {"job_ids": ["other"]})

    assert service_tokens(after) == service_tokens(before)
    after.resource_count_is("AWS::StepFunctions::StateMachine", 1)
    after.resource_count_is("AWS::Lambda::Function", 5)


# The provider's logical ids as every deployed stack has them (since 0.1.0).
PROVIDER_LOGICAL_IDS = {
    "AWS::Lambda::Function": {
        "IotJobCleanupProviderOnEvent5FAC2188",
        "IotJobCleanupProviderIsComplete08570CB0",
        "IotJobCleanupProviderframeworkonEvent74FF1A78",
        "IotJobCleanupProviderframeworkisComplete179037DB",
        "IotJobCleanupProviderframeworkonTimeout0B2B8969",
    },
    "AWS::StepFunctions::StateMachine": {"IotJobCleanupProviderwaiterstatemachine5A2376D5"},
    "AWS::Logs::LogGroup": {"IotJobCleanupProviderLogs3040EBD6"},
    "AWS::IAM::Role": {
        "IotJobCleanupProviderHandlerRoleC5D636D7",
        "IotJobCleanupProviderFrameworkOnEventRoleF3987BC9",
        "IotJobCleanupProviderFrameworkIsCompleteAndTimeoutRoleB7401CCA",
        "IotJobCleanupProviderwaiterstatemachineRole3559A9F3",
    },
}


def test_the_provider_logical_ids_are_pinned() -> None:
    """A compatibility promise: every deployed cleanup's ServiceToken is the ARN of the
    provider's framework-onEvent function, whose logical id comes from the construct path
    <Stack>/IotJobCleanupProvider/Provider/framework-onEvent. Renaming or moving the provider
    (or anything on that path) would give it a new logical id, so every user's next deploy
    would change the ServiceToken of every cleanup, which CloudFormation refuses ("Modifying
    service token is not allowed."). The other ids are pinned so that an upgrade replaces
    no role, log group or state machine of a running cleanup."""
    template = synth({"job_ids": ["ota-1"]}, {"job_ids": ["ota-2"], "total_timeout": cdk.Duration.minutes(5)})

    assert (
        list(service_tokens(template).values())
        == [{"Fn::GetAtt": ["IotJobCleanupProviderframeworkonEvent74FF1A78", "Arn"]}] * 2
    )
    for resource_type, logical_ids in PROVIDER_LOGICAL_IDS.items():
        assert set(template.find_resources(resource_type)) == logical_ids, resource_type


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


def test_timing_travels_in_the_resource_properties_and_the_service_timeout() -> None:
    template = synth(
        {
            "job_ids": ["ota-1"],
            "query_interval": cdk.Duration.seconds(15),
            "total_timeout": cdk.Duration.minutes(45),
        }
    )

    template.has_resource_properties(
        RESOURCE, {"ServiceTimeout": "2700", "QueryIntervalSeconds": "15", "TotalTimeoutSeconds": "2700"}
    )
    # The waiter is the same for every cleanup: every 10 s for up to an hour.
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    definition = "".join(
        part for part in machine["Properties"]["DefinitionString"]["Fn::Join"][1] if isinstance(part, str)
    )
    assert '"IntervalSeconds":10,"MaxAttempts":360,"BackoffRate":1' in definition
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "iot_job_cleanup_handler.is_complete",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "QUERY_INTERVAL_SECONDS": "10",
                        "TOTAL_TIMEOUT_SECONDS": "3600",
                        "LOG_GROUP_NAME": {"Ref": Match.string_like_regexp("IotJobCleanupProviderLogs")},
                    }
                )
            },
            "Timeout": 300 + 10 + 60,  # the polling window, one waiter interval, a minute
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


def resolved_job_statements(template: Template) -> list[dict[str, Any]]:
    return [s for s in iot_statements(template) if "iot:DeleteJob" in s["Action"]]


def test_a_comma_delimited_list_parameter_is_a_list_of_job_ids_with_iam_on_each() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    ids = cdk.CfnParameter(stack, "JobIds", type="CommaDelimitedList").value_as_list

    IotJobCleanup(stack, "Cleanup", job_ids=ids)

    template = Template.from_stack(stack)
    template.has_resource_properties(RESOURCE, {"JobIds": {"Ref": "JobIds"}})
    (statement,) = resolved_job_statements(template)
    # A list of ARNs, one per id: Fn::Split over the ids joined with the ARN prefix.
    assert statement["Resource"] == {
        "Fn::Split": [
            ",",
            {
                "Fn::Join": [
                    "",
                    ["arn:*:iot:*:*:job/", {"Fn::Join": [",arn:*:iot:*:*:job/", {"Ref": "JobIds"}]}],
                ]
            },
        ]
    }


def test_an_ssm_string_list_parameter_is_a_list_of_job_ids() -> None:
    stack = cdk.Stack(cdk.App(), "Stack", env=cdk.Environment(account="111122223333", region="eu-west-1"))
    ids = ssm.StringListParameter.from_string_list_parameter_name(
        stack, "Ids", "/fleet/jobs"
    ).string_list_value

    IotJobCleanup(stack, "Cleanup", job_ids=ids)

    template = Template.from_stack(stack)
    split = {"Fn::Split": [",", "{{resolve:ssm:/fleet/jobs}}"]}
    template.has_resource_properties(RESOURCE, {"JobIds": split})
    (statement,) = resolved_job_statements(template)
    prefix = "arn:*:iot:eu-west-1:111122223333:job/"  # the stack's own region and account
    assert statement["Resource"] == {
        "Fn::Split": [",", {"Fn::Join": ["", [prefix, {"Fn::Join": ["," + prefix, split]}]]}]
    }


def test_literals_string_tokens_and_list_tokens_mix() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    listed = cdk.CfnParameter(stack, "Listed", type="CommaDelimitedList").value_as_list
    single = cdk.CfnParameter(stack, "Single").value_as_string
    csv = cdk.CfnParameter(stack, "Csv").value_as_string

    IotJobCleanup(stack, "Cleanup", job_ids=["ota-1", single, *listed, *cdk.Fn.split(",", csv)])

    template = Template.from_stack(stack)
    template.has_resource_properties(
        RESOURCE,
        {
            "JobIds": {
                "Fn::Split": [
                    ",",
                    {
                        "Fn::Join": [
                            ",",
                            [
                                "ota-1",
                                {"Ref": "Single"},
                                {"Fn::Join": [",", {"Ref": "Listed"}]},
                                {"Fn::Join": [",", {"Fn::Split": [",", {"Ref": "Csv"}]}]},
                            ],
                        ]
                    },
                ]
            }
        },
    )
    resources = [statement["Resource"] for statement in resolved_job_statements(template)]
    assert resources[0] == [job_arn("ota-1"), job_arn({"Ref": "Single"})]
    # Each list token: a policy of its own, whose Resource is a list (never a list inside a string).
    assert [r["Fn::Split"][1]["Fn::Join"][1][1]["Fn::Join"][1] for r in resources[1:]] == [
        {"Ref": "Listed"},
        {"Fn::Split": [",", {"Ref": "Csv"}]},
    ]


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
            {"job_ids": ["a"], "total_timeout": cdk.Duration.seconds(30)},
            r"total_timeout is 30 s: it must be at least 60 s.*Duration.minutes\(1\) or more",
        ),
        (
            {"job_ids": ["a"], "query_interval": cdk.Duration.minutes(6)},
            r"query_interval is 360 s: the handler checks IoT that often.*from every 1 s to every 300 s",
        ),
        (
            {"job_ids": ["a"], "query_interval": cdk.Duration.millis(500)},
            r"query_interval is 0.5 s: .*Use e.g. Duration.seconds\(2\), or leave it out",
        ),
        ({"job_ids": [None]}, r"job_ids contains None \(NoneType\): every entry must be a job id string"),
        ({"job_ids": [123]}, r"job_ids contains 123 \(int\): .*write numbers as strings"),
        ({"job_ids": [["a", "b"]]}, r"job_ids contains \['a', 'b'\] \(list\): .*not job_ids=\[ids\]"),
        ({"job_ids": ["a"], "removal_policy": cdk.RemovalPolicy.SNAPSHOT}, r"removal_policy is SNAPSHOT"),
    ],
)
def test_bad_settings_fail_at_synth_time_naming_value_rule_and_fix(
    props: dict[str, Any], message: str
) -> None:
    stack = cdk.Stack(cdk.App(), "Stack")

    with pytest.raises(ValueError, match=message):
        IotJobCleanup(stack, "Cleanup", **props)
