"""The synthesized template: properties, IAM scoping, sharing, removal, timing, synth-time errors."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import cdk_nag
import jsii
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_lambda as lambda_
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


def describe_stacks_resources(template: Template) -> Any:
    (statement,) = [
        statement
        for policy in policies(template).values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "cloudformation" in str(statement["Action"])
    ]
    assert statement["Action"] == "cloudformation:DescribeStacks"
    return statement["Resource"]


def test_in_a_nested_stack_the_handler_may_also_read_the_status_of_the_root_stack() -> None:
    """A nested stack is deleted (its own status DELETE_IN_PROGRESS) when its parent's update
    removes it: the handler follows RootId to the root stack, which must be the one torn down."""
    root = cdk.Stack(cdk.App(), "Root")
    fleet = cdk.NestedStack(root, "Fleet")
    inner = cdk.NestedStack(fleet, "Inner")
    IotJobCleanup(fleet, "Cleanup", job_ids=["ota-1"])
    IotJobCleanup(inner, "Cleanup", job_ids=["ota-2"])

    templates = {stack: Template.from_stack(stack) for stack in (root, fleet, inner)}

    # Its own stack (the nested one), and the root stack by its id, handed down as a parameter.
    for stack in (fleet, inner):
        own, root_id = describe_stacks_resources(templates[stack])
        assert own == {"Ref": "AWS::StackId"}
        assert set(templates[stack].to_json()["Parameters"]) == {root_id["Ref"]}

    def handed_down(parent: cdk.Stack) -> list[Any]:
        return [
            value
            for resource in templates[parent].find_resources("AWS::CloudFormation::Stack").values()
            for value in resource["Properties"]["Parameters"].values()
        ]

    assert handed_down(root) == [{"Ref": "AWS::StackId"}]  # the root's own id, to Fleet
    (fleet_root_id,) = templates[fleet].to_json()["Parameters"]
    assert handed_down(fleet) == [{"Ref": fleet_root_id}]  # passed on to Inner
    templates[root].resource_count_is(RESOURCE, 0)


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


def test_named_jobs_with_and_without_drain_fill_policies_within_the_size_limit() -> None:
    """Drain adds iot:CancelJob and iot:ListJobExecutionsForJob for its own jobs only: a
    statement of their own, packed into the same managed policies by the same budget."""
    template = synth(
        {"job_ids": [f"ota-2026-11-rollout-wave-{index:04d}" for index in range(250)]},
        {
            "job_ids": [f"ota-2026-12-rollout-wave-{index:04d}" for index in range(250)],
            "drain": cdk.Duration.minutes(5),
        },
        {"job_ids": [f"ota-2027-01-rollout-wave-{index:04d}" for index in range(100)]},
    )

    managed = template.find_resources("AWS::IAM::ManagedPolicy")
    assert 2 <= len(managed) <= 10
    assert all(resolved_size(p["Properties"]["PolicyDocument"]) <= 6144 for p in managed.values())
    granted: dict[tuple[str, ...], list[str]] = {}
    for statement in all_statements(template, set(managed)):
        granted.setdefault(tuple(sorted(statement["Action"])), []).extend(statement["Resource"])
    drained = [ARN + f"job/ota-2026-12-rollout-wave-{index:04d}" for index in range(250)]
    assert sorted(granted[tuple(sorted(JOB_ACTIONS + DRAIN_ACTIONS))]) == drained
    assert len(granted[tuple(sorted(JOB_ACTIONS))]) == 350


def role_managed_policies(template: Template) -> dict[str, dict[str, Any]]:
    return {
        logical_id: policy
        for logical_id, policy in template.find_resources("AWS::IAM::ManagedPolicy").items()
        if policy["Properties"]["Roles"] == [{"Ref": "IotJobCleanupProviderHandlerRoleC5D636D7"}]
    }


def managed_paths(stack: cdk.Stack) -> list[str]:
    """The construct ids of the handler role's managed policies."""
    role = stack.node.find_child("IotJobCleanupProvider").node.find_child("HandlerRole")
    return [child.node.id for child in role.node.children if isinstance(child, iam.ManagedPolicy)]


def test_eleven_filtered_cleanups_share_at_most_ten_managed_policies_packed_by_size(tmp_path: Any) -> None:
    """IAM attaches at most 10 managed policies to a role (without a quota increase): one
    SelectionPolicy per filtered cleanup made 11 for eleven cleanups, and the deploy failed.
    The selection statements and named ARNs are packed together by size instead; every
    wildcard still has its acknowledgement for cdk-nag."""
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Stack")
    selectors: list[dict[str, Any]] = [
        *({"job_id_prefix": f"wave{index}-", "tags": {"fleet": "demo"}} for index in range(8)),
        {"job_id_prefix": "canary-"},
        {"thing_groups": ["demo-fleet"]},
        {"tags": TAGS, "drain": cdk.Duration.minutes(2)},
    ]
    cleanups = [IotJobCleanup(stack, f"Cleanup{index}", **props) for index, props in enumerate(selectors)]
    IotJobCleanup(stack, "Named", job_ids=[f"ota-{index}" for index in range(20)])
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))

    app.synth()  # raises ValidationFailed, with the findings, on any unacknowledged one

    template = Template.from_stack(stack)
    managed = role_managed_policies(template)
    assert set(managed) == set(template.find_resources("AWS::IAM::ManagedPolicy"))
    assert len(managed) < len(selectors)
    assert all(resolved_size(p["Properties"]["PolicyDocument"]) <= 6144 for p in managed.values())
    statements = all_statements(template, set(managed))
    for cleanup, props in zip(cleanups, selectors, strict=True):
        pattern = ARN + f"job/{props.get('job_id_prefix', '')}*"
        condition = (
            {"StringEquals": {f"aws:ResourceTag/{key}": value for key, value in props["tags"].items()}}
            if "tags" in props
            else None
        )
        (jobs,) = [
            s
            for s in statements
            if "iot:DeleteJob" in s["Action"] and pattern in s["Resource"] and s.get("Condition") == condition
        ]
        assert ("iot:CancelJob" in jobs["Action"]) == ("drain" in props)
        assert [
            s for s in statements if s["Action"] == ["iot:ListTagsForResource"] and pattern in s["Resource"]
        ]
        # The cleanup is deleted before any policy that holds its permissions.
        depends_on = template.find_resources(RESOURCE)[
            stack.resolve(stack.get_logical_id(cleanup.resource.node.default_child))
        ]
        assert {jobs["Policy"]} | set(managed) <= set(depends_on["DependsOn"])
        assert cleanup.node.try_find_child("SelectionPolicy") is None
    named = [arn for s in statements if s.get("Condition") is None for arn in s["Resource"] if "ota-" in arn]
    assert sorted(named) == sorted(ARN + f"job/ota-{index}" for index in range(20))
    # job/* is acknowledged on the policy that holds it, with the reason of every cleanup behind it.
    acknowledged = nag_acknowledgements(stack)
    iam5 = (
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:"
    )
    holders = {path for path, rule in acknowledged if rule == iam5 + "job/*]"}
    assert holders <= {
        f"Stack/IotJobCleanupProvider/HandlerRole/{managed_id}" for managed_id in managed_paths(stack)
    }
    reasons = " ".join(reason for (_, rule), reason in acknowledged.items() if rule == iam5 + "job/*]")
    assert "IotJobCleanup Stack/Cleanup9 selects jobs by the thing groups they target" in reasons
    assert "IotJobCleanup Stack/Cleanup10 selects jobs created at runtime by their tags" in reasons


def test_650_named_jobs_and_two_filtered_cleanups_fit_ten_managed_policies() -> None:
    """Ten job policies for the ARNs plus two SelectionPolicies made 12."""
    template = synth(
        {"job_ids": [f"ota-2026-11-rollout-wave-{index:04d}" for index in range(650)]},
        {"tags": TAGS},
        {"job_id_prefix": "ota-2027-"},
    )

    managed = role_managed_policies(template)
    assert len(managed) == 10
    assert all(resolved_size(p["Properties"]["PolicyDocument"]) <= 6144 for p in managed.values())
    statements = all_statements(template, set(managed))
    granted = [
        arn
        for s in statements
        if "iot:DeleteJob" in s["Action"] and "Condition" not in s
        for arn in s["Resource"]
    ]
    assert len(granted) == 650 + 1  # and job/ota-2027-*
    assert [s["Resource"] for s in statements if s.get("Condition") == TAG_CONDITION] == [[ARN + "job/*"]]
    for resource in template.find_resources(RESOURCE).values():
        assert set(managed) <= set(resource["DependsOn"])


def test_a_stack_whose_permissions_cannot_fit_ten_managed_policies_fails_at_synth_with_the_fix() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    for index in range(10):  # a list token's length is known only at deploy: a policy of its own each
        ids = cdk.CfnParameter(stack, f"Ids{index}", type="CommaDelimitedList").value_as_list
        IotJobCleanup(stack, f"Cleanup{index}", job_ids=ids)
    more = cdk.CfnParameter(stack, "More", type="CommaDelimitedList").value_as_list

    with pytest.raises(
        ValueError,
        match=r"IotJobCleanup Stack/Cleanup10: the stack's cleanups would need 11 managed policies on their "
        r"shared handler role, even packed by size, and IAM attaches at most 10 to a role.*"
        r"11 lists of job ids from tokens.*move some cleanups into another stack or a NestedStack",
    ):
        IotJobCleanup(stack, "Cleanup10", job_ids=more)

    assert stack.node.try_find_child("Cleanup10") is None


def test_a_cleanup_added_after_synthesis_is_refused_as_its_permissions_would_be_missing() -> None:
    """The role's policies are laid out when the stack is synthesized, once."""
    stack = cdk.Stack(cdk.App(), "Stack")
    IotJobCleanup(stack, "First", job_ids=["ota-1"])
    Template.from_stack(stack)

    with pytest.raises(ValueError, match=r"Stack/Late: added after the stack was synthesized.*Add every"):
        IotJobCleanup(stack, "Late", job_ids=["ota-2"])


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
        {"tags": {"fleet": "demo"}},
        {"thing_groups": ["demo-fleet"]},
        {"job_id_prefix": "ota-"},
        {"drain": cdk.Duration.minutes(5)},
        {"job_ids": None, "tags": {"fleet": "demo"}},
        {"job_ids": None, "thing_groups": ["demo-fleet"], "drain": cdk.Duration.seconds(0)},
        {
            "tags": {"fleet": "demo", "rollout": "2026-11"},
            "thing_groups": ["demo-fleet", "canary"],
            "job_id_prefix": "ota-",
            "drain": cdk.Duration.minutes(10),
        },
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
            {"job_ids": ["a"], "total_timeout": cdk.Duration.hours(25)},
            r"total_timeout is 90000 s: it may be at most 86400 s \(24 hours: a cleanup longer than an "
            r"hour runs as one resource per hour, its stages",
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
        (
            {},
            r"none of job_ids, tags, thing_groups and job_id_prefix: it needs at least one.*"
            r"job_ids=\[\.\.\.\].*tags=",
        ),
        ({"tags": {}}, r"tags is empty: .*Give a tag, e.g. tags=\{'fleet': 'demo'\}, or leave tags out"),
        ({"tags": ["fleet"]}, r"tags is \['fleet'\] \(list\): it must be a mapping of tag keys to values"),
        (
            {"tags": {f"k{index}": "v" for index in range(51)}},
            r"tags has 51 tags: an IoT job carries at most 50.*50 tags or fewer",
        ),
        ({"tags": {"": "v"}}, r"tags has the key '' \(0 characters\): a tag key is 1 to 128 letters"),
        ({"tags": {"k" * 129: "v"}}, r"\(129 characters\): a tag key is 1 to 128 letters.*Fix or remove"),
        ({"tags": {"fleet#1": "v"}}, r"tags has the key 'fleet#1' .*digits, spaces or _\.:/=\+-@"),
        (
            {"tags": {"aws:cloudformation:stack-name": "S"}},
            r"keys starting with 'aws:' are reserved.*another key",
        ),
        ({"tags": {"AWS:x": "S"}}, r"tags has the key 'AWS:x': keys starting with 'aws:'"),
        (
            {"tags": {"fleet": "v" * 257}},
            r"tags gives 'fleet' the value 'v+' \(257 characters\): a tag value is 0 to 256",
        ),
        ({"tags": {"fleet": "a|b"}}, r"tags gives 'fleet' the value 'a\|b' .*Fix that value"),
        ({"tags": {"fleet": 3}}, r"tags gives 'fleet' the value 3 \(int\): a tag value is a string"),
        (
            {"tags": {f"key-{index:02d}-" + "k" * 100: "v" * 256 for index in range(20)}},
            r"the IAM policy that limits the handler to jobs carrying them would be \d+ characters, "
            r"more than the 6,144.*fewer or shorter tags",
        ),
        (
            {"job_id_prefix": ""},
            r"job_id_prefix is '' \(0 characters\): a prefix is 1 to 64 characters.*"
            r"an empty one would select every job",
        ),
        ({"job_id_prefix": "ota*"}, r"job_id_prefix is 'ota\*' .*letters, digits, '_' and '-'.*leave it out"),
        ({"job_id_prefix": "p" * 65}, r"job_id_prefix is 'p+' \(65 characters\)"),
        ({"thing_groups": "fleet"}, r"thing_groups is 'fleet': it must be a list.*thing_groups=\['fleet'\]"),
        ({"thing_groups": []}, r"thing_groups is empty: .*Name a group, or leave thing_groups out"),
        (
            {"thing_groups": ["my fleet"]},
            r"thing_groups contains 'my fleet' \(8 characters\): a thing group name",
        ),
        ({"thing_groups": ["g" * 129]}, r"\(129 characters\): a thing group name is 1 to 128 characters"),
        ({"thing_groups": [None]}, r"thing_groups contains None \(NoneType\): every entry must be"),
        ({"thing_groups": ["a", "a"]}, r"thing_groups names 'a' more than once"),
        ({"job_ids": [], "tags": None}, r"job_ids is empty: name at least one job, select jobs with tags"),
        (
            {"job_ids": ["a"], "drain": cdk.Duration.minutes(60)},
            r"drain is 3600 s: drain time counts inside total_timeout \(3600 s\).*at most 3540 s\. "
            r"Shorten drain to Duration.seconds\(3540\) or less, or raise total_timeout to "
            r"Duration.seconds\(3660\) \(at most 24 hours\)",
        ),
        (
            {"job_ids": ["a"], "drain": cdk.Duration.minutes(5), "total_timeout": cdk.Duration.minutes(5)},
            r"drain is 300 s: drain time counts inside total_timeout \(300 s\).*at most 240 s.*"
            r"or raise total_timeout to Duration.seconds\(360\)",
        ),
        # Finding 16: each option's type and range, the message naming the construct path.
        (
            {"job_ids": ["a"], "drain": 600},
            r"drain is 600 \(int\): it must be a Duration.*Write drain=Duration\.seconds\(600\)",
        ),
        (
            {"job_ids": ["a"], "query_interval": 2},
            r"query_interval is 2 \(int\): it must be a Duration.*query_interval=Duration\.seconds\(2\)",
        ),
        (
            {"job_ids": ["a"], "total_timeout": 3600.0},
            r"total_timeout is 3600\.0 \(float\): it must be a Duration.*Duration\.seconds\(3600\)",
        ),
        (
            {"job_ids": ["a"], "total_timeout": cdk.Duration.seconds(90.5)},
            r"total_timeout is 90\.5 s: it must be a whole number of seconds.*ServiceTimeout.*"
            r"Duration\.seconds\(90\) or Duration\.seconds\(91\)",
        ),
        (
            {
                "job_ids": ["a"],
                "query_interval": cdk.Duration.minutes(2),
                "total_timeout": cdk.Duration.minutes(1),
            },
            r"query_interval is 120 s, longer than total_timeout \(60 s\).*Shorten query_interval",
        ),
        (
            {"job_ids": [cdk.Fn.join("-", ["bad id!", "x"])]},
            r"job_ids contains 'bad id!-x' \(9 characters\): a job id is 1 to 64 characters",
        ),
        (
            {"job_ids": ["ota-1", cdk.Fn.join("-", ["ota", "1"])]},
            r"job_ids names 'ota-1' more than once",
        ),
        (
            {"job_id_prefix": cdk.Fn.join("", ["ota", "*"])},
            r"job_id_prefix is 'ota\*' \(4 characters\): a prefix is 1 to 64 characters",
        ),
        (
            {"tags": {"fleet": cdk.Fn.join("|", ["a", "b"])}},
            r"tags gives 'fleet' the value 'a\|b' \(3 characters\): a tag value is 0 to 256",
        ),
        (
            {"thing_groups": [cdk.Fn.join(" ", ["my", "fleet"])]},
            r"thing_groups contains 'my fleet' \(8 characters\): a thing group name",
        ),
        (
            {"job_ids": ["a"], "namespace_id": cdk.Fn.join(" ", ["green", "grass"])},
            r"namespace_id is 'green grass': it must be letters",
        ),
        ({"job_ids": ["a"], "namespace_id": 7}, r"namespace_id is 7 \(int\): it must be a string"),
        (
            {"job_ids": ["a"], "removal_policy": "retain"},
            r"removal_policy is 'retain' \(str\): it must be a RemovalPolicy.*RemovalPolicy\.RETAIN",
        ),
        ({"job_ids": ["a"], "removal_policy": None}, r"removal_policy is None \(NoneType\)"),
        ({"job_ids": 5}, r"job_ids is 5 \(int\): it must be a list of job id strings"),
        ({"job_ids": {"a": "b"}}, r"job_ids is \{'a': 'b'\} \(dict\): it must be a list of job id strings"),
        (
            {"tags": [("fleet", "demo"), ("fleet", "canary")]},
            r"tags is \[\('fleet', 'demo'\), \('fleet', 'canary'\)\] \(list\): it must be a mapping.*"
            r"a list of pairs could give a key twice.*tags=\{'fleet': 'demo'\}",
        ),
        ({"tags": "fleet=demo"}, r"tags is 'fleet=demo' \(str\): it must be a mapping"),
        (
            {"tags": {cdk.Fn.join("", ["fle", "et"]): "a", "fleet": "b"}},
            r"tags names the key 'fleet' more than once",
        ),
        ({"job_id_prefix": 7}, r"job_id_prefix is 7 \(int\): it must be a string"),
        ({"thing_groups": 7}, r"thing_groups is 7 \(int\): it must be a list"),
    ],
)
def test_bad_settings_fail_at_synth_time_naming_the_construct_value_rule_and_fix(
    props: dict[str, Any], message: str
) -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    with pytest.raises(ValueError, match=message) as refused:
        IotJobCleanup(stack, "Cleanup", **props)

    assert str(refused.value).startswith("IotJobCleanup Stack/Cleanup: "), str(refused.value)
    # Nothing was added to the stack: the same id can be used again with the fix.
    assert stack.node.try_find_child("Cleanup") is None


@pytest.mark.parametrize("force", ["false", "true", "yes", "", 1, 0, None], ids=repr)
def test_force_takes_only_a_bool_so_a_context_string_never_forces(force: object) -> None:
    """``cdk synth -c forceJobDeletion=false`` gives the string "false", which is truthy: it
    used to put Force "true" in the template and force-delete running jobs at teardown."""
    stack = cdk.Stack(cdk.App(), "Stack")

    with pytest.raises(
        ValueError,
        match=rf"IotJobCleanup Stack/Cleanup: force is {re.escape(repr(force))} \({type(force).__name__}\): "
        r"it must be True or False.*the string 'false' .* is true.*"
        r'force=app\.node\.try_get_context\("forceJobDeletion"\) in \(True, "true"\)',
    ):
        IotJobCleanup(stack, "Cleanup", job_ids=["a"], force=force)


def test_a_duration_from_a_token_is_refused_as_the_checks_and_service_timeout_need_its_value() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    minutes = cdk.CfnParameter(stack, "Minutes", type="Number").value_as_number

    with pytest.raises(ValueError, match=r"Stack/Cleanup: total_timeout is a token.*known at synth time"):
        IotJobCleanup(stack, "Cleanup", job_ids=["a"], total_timeout=cdk.Duration.minutes(minutes))


def test_fn_join_of_literals_is_judged_and_kept_as_the_literal_it_is() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")

    cleanup = IotJobCleanup(
        stack,
        "Cleanup",
        job_ids=[cdk.Fn.join("-", ["ota", "1"])],
        tags={cdk.Fn.join("", ["fle", "et"]): cdk.Fn.join("-", ["demo", "ota"])},
        job_id_prefix=cdk.Fn.join("-", ["ota", ""]),
    )

    assert (cleanup.tags, cleanup.job_id_prefix) == ({"fleet": "demo-ota"}, "ota-")
    assert stack.resolve(cleanup.job_arns) == [job_arn("ota-1")]


def test_a_lazy_value_is_never_produced_early_even_inside_fn_join() -> None:
    """Judging a Fn.join of literals resolves it, but no other token: a Lazy's producer may
    depend on constructs added after the cleanup."""

    @jsii.implements(cdk.IStringProducer)
    class Producer:
        calls = 0

        def produce(self, context: cdk.IResolveContext) -> str:
            Producer.calls += 1
            return "ota-late"

    stack = cdk.Stack(cdk.App(), "Stack")
    late = cdk.Lazy.uncached_string(Producer())

    IotJobCleanup(stack, "Cleanup", job_ids=[cdk.Fn.join("-", [late, "1"]), late], job_id_prefix=late)

    assert Producer.calls == 0


# --------------------------------------------------------------------------- runtime jobs: filters and drain

ARN = "arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:"
JOB_ACTIONS = ["iot:DeleteJob", "iot:DescribeJob"]
DRAIN_ACTIONS = ["iot:CancelJob", "iot:ListJobExecutionsForJob"]


def flat(value: Any) -> Any:
    """A template value as text: Fn::Join joined, a Ref as ${Name}, a GetAtt as ${Name.Attr}."""
    if isinstance(value, list):
        return [flat(item) for item in value]
    if isinstance(value, dict) and "Ref" in value:
        return "${" + value["Ref"] + "}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(flat(part) for part in parts)
    return value


def all_statements(template: Template, logical_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """Every statement of the template's policies (or of these), Action and Resource as lists."""
    statements = []
    for logical_id, policy in policies(template).items():
        if logical_ids is not None and logical_id not in logical_ids:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions, resources = statement["Action"], flat(statement["Resource"])
            statements.append(
                {
                    **statement,
                    "Action": actions if isinstance(actions, list) else [actions],
                    "Resource": resources if isinstance(resources, list) else [resources],
                    "Policy": logical_id,
                }
            )
    return statements


def test_filters_and_drain_travel_as_properties_and_job_ids_only_when_given() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    group = iot.CfnThingGroup(stack, "Fleet", thing_group_name="demo-fleet")

    cleanup = IotJobCleanup(
        stack,
        "Cleanup",
        tags={"rollout": "2026-11", "fleet": "demo"},
        thing_groups=[group, "canary"],
        job_id_prefix="ota-",
        drain=cdk.Duration.minutes(5),
    )

    template = Template.from_stack(stack)
    template.has_resource_properties(
        RESOURCE,
        {
            "JobIds": Match.absent(),
            "JobTags": [{"Key": "fleet", "Value": "demo"}, {"Key": "rollout", "Value": "2026-11"}],
            "ThingGroupNames": [{"Ref": "Fleet"}, "canary"],  # a CfnThingGroup gives its name
            "JobIdPrefix": "ota-",
            "DrainSeconds": "300",
            "Force": "false",
        },
    )
    assert cleanup.tags == {"fleet": "demo", "rollout": "2026-11"}
    assert stack.resolve(cleanup.thing_group_names) == [{"Ref": "Fleet"}, "canary"]
    assert cleanup.job_id_prefix == "ota-"
    assert (cleanup.job_ids, cleanup.job_arns) == ([], [])
    # Each option appears only when given.
    plain = synth({"job_ids": ["ota-1"]})
    plain.has_resource_properties(
        RESOURCE,
        {
            "JobTags": Match.absent(),
            "ThingGroupNames": Match.absent(),
            "JobIdPrefix": Match.absent(),
            "DrainSeconds": Match.absent(),
        },
    )


def test_job_ids_with_filters_stay_in_the_properties_even_as_a_possibly_empty_list_token() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    ids = cdk.CfnParameter(stack, "JobIds", type="CommaDelimitedList", default="").value_as_list

    cleanup = IotJobCleanup(stack, "Cleanup", job_ids=ids, tags={"fleet": "demo"})

    template = Template.from_stack(stack)
    template.has_resource_properties(
        RESOURCE, {"JobIds": {"Ref": "JobIds"}, "JobTags": [{"Key": "fleet", "Value": "demo"}]}
    )
    assert cleanup.job_ids == ids
    assert len(cleanup.job_arns) == 1  # one list token of ARNs


def test_tokens_in_filters_pass_unchecked() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    value = cdk.CfnParameter(stack, "Fleet").value_as_string
    prefix = cdk.CfnParameter(stack, "Prefix").value_as_string
    group = cdk.CfnParameter(stack, "Group").value_as_string
    unnamed = iot.CfnThingGroup(stack, "Unnamed")  # no literal name: its Ref is a token

    IotJobCleanup(
        stack, "Cleanup", tags={"fleet": value}, thing_groups=[group, unnamed], job_id_prefix=prefix
    )

    template = Template.from_stack(stack)
    template.has_resource_properties(
        RESOURCE,
        {
            "JobTags": [{"Key": "fleet", "Value": {"Ref": "Fleet"}}],
            "ThingGroupNames": [{"Ref": "Group"}, {"Ref": "Unnamed"}],
            "JobIdPrefix": {"Ref": "Prefix"},
        },
    )
    (conditioned,) = [s for s in all_statements(template) if "Condition" in s]
    assert conditioned["Resource"] == [ARN + "job/${Prefix}*"]
    assert conditioned["Condition"] == {"StringEquals": {"aws:ResourceTag/fleet": {"Ref": "Fleet"}}}


def test_a_tag_key_must_be_a_literal_as_it_becomes_an_iam_condition_key() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    key = cdk.CfnParameter(stack, "Key").value_as_string

    with pytest.raises(ValueError, match=r"a tag key must be a literal string.*aws:ResourceTag/<key>"):
        IotJobCleanup(stack, "Cleanup", tags={key: "demo"})


def test_drain_lets_the_handler_cancel_and_watch_named_jobs_and_only_those() -> None:
    template = synth({"job_ids": ["ota-1"], "drain": cdk.Duration.minutes(5)}, {"job_ids": ["ota-2"]})

    job_statements = [s for s in all_statements(template) if "iot:DeleteJob" in s["Action"]]
    by_actions = {tuple(sorted(s["Action"])): s["Resource"] for s in job_statements}
    assert by_actions == {
        tuple(sorted(JOB_ACTIONS + DRAIN_ACTIONS)): [ARN + "job/ota-1"],
        tuple(sorted(JOB_ACTIONS)): [ARN + "job/ota-2"],
    }
    assert not [s for s in all_statements(template) if "Condition" in s]
    template.resource_count_is("AWS::IAM::ManagedPolicy", 1)  # both statements share the policy
    template.has_resource_properties(RESOURCE, {"JobIds": ["ota-1"], "DrainSeconds": "300"})


def test_drain_may_take_all_of_total_timeout_but_its_last_minute() -> None:
    template = synth(
        {"job_ids": ["a"], "drain": cdk.Duration.minutes(4), "total_timeout": cdk.Duration.minutes(5)},
        {"job_ids": ["b"], "drain": cdk.Duration.seconds(0)},
        # Fractions of a second are fine where the handler takes them (not in ServiceTimeout).
        {"job_ids": ["c"], "drain": cdk.Duration.millis(90500), "query_interval": cdk.Duration.millis(1500)},
    )

    template.has_resource_properties(RESOURCE, {"DrainSeconds": "240", "TotalTimeoutSeconds": "300"})
    template.has_resource_properties(RESOURCE, {"DrainSeconds": "0", "TotalTimeoutSeconds": "3600"})
    template.has_resource_properties(RESOURCE, {"DrainSeconds": "90.5", "QueryIntervalSeconds": "1.5"})


TAGS = {"fleet": "demo", "rollout": "2026-11"}
TAG_CONDITION = {"StringEquals": {"aws:ResourceTag/fleet": "demo", "aws:ResourceTag/rollout": "2026-11"}}


@pytest.mark.parametrize(
    ("selector", "pattern", "condition"),
    [
        ({"tags": TAGS}, "job/*", TAG_CONDITION),
        ({"tags": TAGS, "job_id_prefix": "ota-"}, "job/ota-*", TAG_CONDITION),
        ({"tags": TAGS, "thing_groups": ["demo-fleet"]}, "job/*", TAG_CONDITION),
        ({"job_id_prefix": "ota-"}, "job/ota-*", None),
        ({"job_id_prefix": "ota-", "thing_groups": ["demo-fleet"]}, "job/ota-*", None),
        ({"thing_groups": ["demo-fleet"]}, "job/*", None),  # no condition key for a job's targets
    ],
    ids=lambda value: ",".join(value) if isinstance(value, dict) else None,
)
@pytest.mark.parametrize("drain", [None, cdk.Duration.minutes(5)], ids=["no-drain", "drain"])
def test_each_selector_gets_only_the_jobs_it_may_select(
    selector: dict[str, Any], pattern: str, condition: dict[str, Any] | None, drain: cdk.Duration | None
) -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    cleanup = IotJobCleanup(stack, "Cleanup", **selector, drain=drain)
    template = Template.from_stack(stack)
    (policy_id,) = [
        logical_id
        for logical_id, policy in policies(template).items()
        if policy["Properties"].get("Description", "").endswith("the jobs its filters select.")
    ]
    statements = all_statements(template, {policy_id})

    expected_actions = JOB_ACTIONS + (DRAIN_ACTIONS if drain else [])
    (jobs,) = [s for s in statements if "iot:DeleteJob" in s["Action"]]
    assert sorted(jobs["Action"]) == sorted(expected_actions)
    assert jobs["Resource"] == [ARN + pattern]
    assert jobs.get("Condition") == condition
    (reads,) = [s for s in statements if "iot:ListTagsForResource" in s["Action"]]
    assert (reads["Action"], reads["Resource"], reads.get("Condition")) == (
        ["iot:ListTagsForResource"],
        [ARN + pattern],
        None,
    )
    tagging = [s for s in statements if "tag:GetResources" in s["Action"]]
    assert [(s["Action"], s["Resource"]) for s in tagging] == (
        [(["tag:GetResources"], ["*"])] if "tags" in selector else []
    )
    assert len(statements) == 2 + len(tagging)
    # The role's other policies give no job action beyond the exact ARNs of named jobs.
    job_actions = set(JOB_ACTIONS + DRAIN_ACTIONS + ["iot:ListTagsForResource"])
    elsewhere = [
        s for s in all_statements(template) if s["Policy"] != policy_id and job_actions & set(s["Action"])
    ]
    assert not elsewhere
    if "tags" in selector:
        unconditioned = [
            s
            for s in all_statements(template)
            if set(s["Action"]) & {"iot:DeleteJob", "iot:CancelJob"}
            and any("*" in str(r) for r in s["Resource"])
            and "Condition" not in s
        ]
        assert not unconditioned, "with tags, no job action may reach an untagged job"
    # The custom resource keeps its permission until its Delete has run.
    (resource,) = template.find_resources(RESOURCE).values()
    assert policy_id in resource["DependsOn"]
    assert stack.resolve(
        stack.get_logical_id(cleanup.node.find_child("SelectionPolicy").node.default_child)
    ) == (policy_id)


def nag_acknowledgements(stack: cdk.Stack) -> dict[tuple[str, str], str]:
    """(construct path, rule) -> reason, for every acknowledgement in the stack."""
    return {
        (construct.node.path, rule): reason
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:acknowledged-rules"
        for rule, reason in entry.data.items()
    }


def test_filtered_cleanups_pass_cdk_nag_with_every_wildcard_acknowledged_and_reasoned(tmp_path: Any) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Stack")
    prefix = cdk.CfnParameter(stack, "PrefixParameter").value_as_string
    IotJobCleanup(stack, "Groups", thing_groups=["demo-fleet"])
    IotJobCleanup(stack, "Tags", tags=TAGS, drain=cdk.Duration.minutes(2))
    IotJobCleanup(stack, "Prefix", job_id_prefix="ota-")
    IotJobCleanup(stack, "TokenPrefix", job_id_prefix=prefix, tags={"fleet": "demo"})
    IotJobCleanup(stack, "Named", job_ids=["ota-1"], drain=cdk.Duration.minutes(2))
    listed = cdk.CfnParameter(stack, "ListedIds", type="CommaDelimitedList").value_as_list
    IotJobCleanup(stack, "Listed", job_ids=listed)  # its ARNs: arn:*:iot:*:*:job/<id>
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))

    app.synth()  # raises ValidationFailed, with the findings, on any unacknowledged one

    acknowledged = nag_acknowledgements(stack)
    iam5 = (
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:"
    )
    groups_reason = acknowledged[("Stack/Groups/SelectionPolicy", iam5 + "job/*]")]
    assert "IAM has no condition key for a job's targets" in groups_reason
    assert "aws:ResourceTag" in acknowledged[("Stack/Tags/SelectionPolicy", iam5 + "job/*]")]
    assert (
        "tag:GetResources"
        in acknowledged[("Stack/Tags/SelectionPolicy", "AwsSolutions::AwsSolutions-IAM5[Resource::*]")]
    )
    assert ("Stack/Prefix/SelectionPolicy", iam5 + "job/ota-*]") in acknowledged
    assert ("Stack/TokenPrefix/SelectionPolicy", iam5 + "job/<PrefixParameter>*]") in acknowledged
    # job/* is acknowledged only on the policies of the cleanups that have it.
    assert {path for path, rule in acknowledged if rule == iam5 + "job/*]"} == {
        "Stack/Groups/SelectionPolicy",
        "Stack/Tags/SelectionPolicy",
    }
    short = {key: reason for key, reason in acknowledged.items() if len(reason.split()) < 8}
    assert not short, f"every acknowledgement must say why: {short}"


# --------------------------------------------------------------------------- grant_create_jobs


def creator(stack: cdk.Stack) -> lambda_.Function:
    return lambda_.Function(
        stack,
        "JobCreator",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
    )


def creator_statements(template: Template) -> dict[str, dict[str, Any]]:
    (policy_id,) = [
        logical_id for logical_id in template.find_resources("AWS::IAM::Policy") if "JobCreator" in logical_id
    ]
    return {s["Action"][0]: s for s in all_statements(template, {policy_id})}


def test_grant_create_jobs_lets_the_creator_make_only_jobs_the_cleanup_will_delete() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    group = iot.CfnThingGroup(stack, "Fleet", thing_group_name="demo-fleet")
    cleanup = IotJobCleanup(stack, "Cleanup", tags=TAGS, thing_groups=[group, "canary"], job_id_prefix="ota-")
    function = creator(stack)

    grant = cleanup.grant_create_jobs(function)

    assert grant.success
    template = Template.from_stack(stack)
    statements = creator_statements(template)
    assert set(statements) == {"iot:CreateJob", "iot:TagResource"}
    conditions = {
        "StringEquals": {"aws:RequestTag/fleet": "demo", "aws:RequestTag/rollout": "2026-11"},
        "ForAnyValue:StringEquals": {"aws:TagKeys": ["fleet", "rollout"]},
    }
    for statement in statements.values():
        assert statement["Condition"] == conditions
    assert statements["iot:CreateJob"]["Resource"] == [
        ARN + "job/ota-*",
        ARN + "thinggroup/${Fleet}",
        ARN + "thinggroup/canary",
        ARN + "jobtemplate/*",
    ]
    assert statements["iot:TagResource"]["Resource"] == [ARN + "job/ota-*"]
    # At teardown CloudFormation removes the job creator before the cleanup runs.
    (resource_id,) = template.find_resources(RESOURCE)
    functions = template.find_resources("AWS::Lambda::Function")
    (function_id,) = [logical_id for logical_id in functions if "JobCreator" in logical_id]
    assert resource_id in functions[function_id]["DependsOn"]


def test_grant_create_jobs_without_groups_covers_any_target_but_only_the_prefixed_job_ids() -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    cleanup = IotJobCleanup(stack, "Cleanup", tags={"fleet": "demo"}, job_id_prefix="ota-")
    role = iam.Role(stack, "Creator", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))

    cleanup.grant_create_jobs(role)

    template = Template.from_stack(stack)
    (policy_id,) = [
        logical_id for logical_id in template.find_resources("AWS::IAM::Policy") if "Creator" in logical_id
    ]
    statements = {s["Action"][0]: s for s in all_statements(template, {policy_id})}
    assert statements["iot:CreateJob"]["Resource"] == [
        ARN + "job/ota-*",
        ARN + "thinggroup/*",
        ARN + "thing/*",
        ARN + "jobtemplate/*",
    ]
    assert statements["iot:TagResource"]["Resource"] == [ARN + "job/ota-*"]
    assert statements["iot:CreateJob"]["Condition"] == {
        "StringEquals": {"aws:RequestTag/fleet": "demo"},
        "ForAnyValue:StringEquals": {"aws:TagKeys": ["fleet"]},
    }
    (resource_id,) = template.find_resources(RESOURCE)
    (role_id,) = [
        logical_id for logical_id in template.find_resources("AWS::IAM::Role") if "Creator" in logical_id
    ]
    assert resource_id in template.find_resources("AWS::IAM::Role")[role_id]["DependsOn"]


@pytest.mark.parametrize(
    "selector",
    [{"tags": {"fleet": "demo"}}, {"tags": {"fleet": "demo"}, "thing_groups": ["demo-fleet"]}],
    ids=lambda selector: ",".join(selector),
)
def test_grant_create_jobs_without_a_prefix_is_refused_as_the_grantee_could_tag_any_job(
    selector: dict[str, Any],
) -> None:
    """iot:TagResource on job/* would let the grantee put the cleanup's tags on any job of the
    account, which the cleanup then cancels and deletes at teardown."""
    stack = cdk.Stack(cdk.App(), "Stack")
    cleanup = IotJobCleanup(stack, "Cleanup", **selector)
    role = iam.Role(stack, "Creator", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))

    with pytest.raises(
        ValueError,
        match=r"grant_create_jobs on Stack/Cleanup, a cleanup without job_id_prefix: .*"
        r"iot:TagResource cannot be limited to creation.*any job in the account.*cancels and deletes.*"
        r"Give the cleanup a job_id_prefix",
    ):
        cleanup.grant_create_jobs(role)

    assert role.node.try_find_child("DefaultPolicy") is None  # nothing granted


@pytest.mark.parametrize(
    "selector",
    [{"thing_groups": ["demo-fleet"]}, {"job_id_prefix": "ota-"}, {"job_ids": ["ota-1"]}],
    ids=lambda selector: ",".join(selector),
)
def test_grant_create_jobs_needs_tags(selector: dict[str, Any]) -> None:
    stack = cdk.Stack(cdk.App(), "Stack")
    cleanup = IotJobCleanup(stack, "Cleanup", **selector)

    with pytest.raises(
        ValueError,
        match=r"a cleanup without tags: .*only safe when every job created carries"
        r" the tags this cleanup selects.*Pass tags=\{\.\.\.\}",
    ):
        cleanup.grant_create_jobs(creator(stack))
