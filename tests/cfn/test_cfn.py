"""The one intrinsic evaluator over its two sources: offline (the rehearsal) and live (``resume``)."""

from __future__ import annotations

from typing import Any

import pytest

from iot_job_cleanup.cfn import (
    NO_VALUE,
    OFFLINE_ACCOUNT,
    OFFLINE_REGION,
    RESOURCE_TYPE,
    RETAIN_POLICIES,
    Intrinsics,
    OfflineValues,
    StackValues,
    UnresolvableError,
    as_sent,
)

STACK_ID = "arn:aws-cn:cloudformation:cn-north-1:210987654321:stack/Fleet/0123"
TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Waves": {"Type": "CommaDelimitedList", "Default": "w-1,w-2"},
        "Prefix": {"Type": "String", "Default": "ota"},
        "FromSsm": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/fleet/job"},
    },
    "Resources": {
        "Fleet": {
            "Type": "AWS::IoT::ThingGroup",
            "Properties": {"ThingGroupName": {"Fn::Sub": "${Prefix}-fleet"}},
        },
        "Wave": {
            "Type": "Custom::AWS",
            "Properties": {
                "Create": {
                    "Fn::Join": [
                        "",
                        [
                            '{"parameters":{"jobId":"',
                            {"Ref": "Prefix"},
                            '-wave"},"physicalResourceId":{"id":"w"}}',
                        ],
                    ]
                }
            },
        },
    },
}


def live(**parameters: Any) -> StackValues:
    return StackValues(
        name="Fleet",
        stack_id=STACK_ID,
        region="cn-north-1",
        parameters={"Waves": ["w-1", "w-2"], "Prefix": "ota", **parameters},
        physical_ids={"Fleet": "ota-fleet", "Wave": "w"},
    )


def test_the_shared_vocabulary() -> None:
    assert RESOURCE_TYPE == "Custom::IotJobCleanup"
    assert sorted(RETAIN_POLICIES) == ["Retain", "RetainExceptOnCreate"]
    assert (OFFLINE_ACCOUNT, OFFLINE_REGION) == ("123456789012", "us-east-1")
    assert as_sent({"Force": True, "DrainSeconds": 120, "JobIds": ["a", 1.5]}) == {
        "Force": "true",
        "DrainSeconds": "120",
        "JobIds": ["a", "1.5"],
    }


@pytest.mark.parametrize(
    ("value", "offline", "deployed"),
    [
        ({"Ref": "Waves"}, ["w-1", "w-2"], ["w-1", "w-2"]),
        ({"Fn::Select": ["1", {"Ref": "Waves"}]}, "w-2", "w-2"),
        ({"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}, "a", "a"),
        ({"Fn::Join": ["-", [{"Ref": "Prefix"}, {"Ref": "AWS::StackName"}]]}, "ota-S", "ota-Fleet"),
        ({"Fn::Sub": "${Prefix}-${AWS::Region}"}, "ota-us-east-1", "ota-cn-north-1"),
        ({"Ref": "AWS::AccountId"}, OFFLINE_ACCOUNT, "210987654321"),
        ({"Ref": "AWS::Partition"}, "aws", "aws-cn"),
        ({"Ref": "AWS::URLSuffix"}, "amazonaws.com", "amazonaws.com"),
        ({"Ref": "Fleet"}, "ota-fleet", "ota-fleet"),  # offline: its name; live: its physical id
        ({"Ref": "Wave"}, "w", "w"),
        (["a", {"Ref": "AWS::NoValue"}], ["a"], ["a"]),
        ({"JobIds": ["x"], "Other": {"Ref": "AWS::NoValue"}}, {"JobIds": ["x"]}, {"JobIds": ["x"]}),
    ],
)
def test_both_sources_give_the_same_functions_their_values(value: Any, offline: Any, deployed: Any) -> None:
    assert Intrinsics.offline("S", TEMPLATE).render(value) == offline
    assert live().resolve(value) == deployed


def test_the_offline_source_answers_from_the_template_and_names_the_way_out() -> None:
    intrinsics = Intrinsics(OfflineValues("S", TEMPLATE, {"FromSsm": "job-x", "Shared": "a,b"}))

    assert intrinsics.render({"Fn::GetAtt": ["Fleet", "Arn"]}) == (
        f"arn:aws:iot:{OFFLINE_REGION}:{OFFLINE_ACCOUNT}:thinggroup/ota-fleet"
    )
    assert intrinsics.render({"Fn::GetAtt": ["Wave", "jobId"]}) == "ota-wave"
    assert intrinsics.render({"Ref": "FromSsm"}) == "job-x"
    assert intrinsics.render({"Fn::Split": [",", {"Fn::ImportValue": "Shared"}]}) == ["a", "b"]
    assert intrinsics.render({"Ref": "AWS::StackId"}).endswith(":stack/S/rehearsal")
    with pytest.raises(UnresolvableError, match="--parameter FromSsm=VALUE"):
        Intrinsics.offline("S", TEMPLATE).render({"Ref": "FromSsm"})
    with pytest.raises(UnresolvableError, match="Fn::If is not one of the intrinsic functions"):
        intrinsics.render({"Fn::If": ["IsProd", "a", "b"]})


def test_a_lenient_rendering_keeps_placeholders_until_one_is_used() -> None:
    lenient = Intrinsics.offline("S", TEMPLATE, strict=False)

    rendered = lenient.render({"Fn::Join": [",", [{"Ref": "Missing"}]]})

    assert isinstance(rendered, str) and not lenient.resolved(rendered)
    assert lenient.resolved(lenient.render({"Ref": "Prefix"}))


def test_the_live_source_answers_as_the_stack_tells_and_names_what_it_does_not() -> None:
    values = live()

    assert values.pseudo("AWS::StackId") == STACK_ID
    assert values.pseudo("AWS::NotificationARNs") is None
    assert values.resolve({"Ref": "AWS::Region"}) == "cn-north-1"
    for unresolvable, named in [
        ({"Ref": "Missing"}, "Ref Missing"),
        ({"Fn::GetAtt": ["Wave", "jobId"]}, 'Fn::GetAtt ["Wave", "jobId"]'),
        ({"Fn::ImportValue": "Shared"}, 'Fn::ImportValue "Shared"'),
        ({"Fn::If": ["IsProd", "a", "b"]}, 'Fn::If ["IsProd", "a", "b"]'),
        ({"Condition": "IsProd"}, 'Condition "IsProd"'),
        ({"Fn::Sub": "${Wave.jobId}"}, 'Fn::GetAtt ["Wave", "jobId"]'),
    ]:
        with pytest.raises(UnresolvableError) as raised:
            values.resolve(unresolvable)
        assert str(raised.value) == named


def test_no_value_is_dropped_and_never_sent() -> None:
    assert repr(NO_VALUE) == "AWS::NoValue"
    assert live().resolve({"Fn::Join": [",", ["a", {"Ref": "AWS::NoValue"}, "b"]]}) == "a,b"
