"""cdk-nag's acknowledgements: why each wildcard the construct needs is there.

Acknowledged through ``Validations.of(...).acknowledge`` on the construct holding the
finding, by the finding's id as cdk-nag writes it (``AwsSolutions::AwsSolutions-IAM5[Resource::
<ARN, intrinsics as <Ref>>]``):

- a filtered cleanup's selection (``selection_acknowledgments``): its job pattern, and
  ``tag:GetResources`` on ``*``;
- a list token's job ARNs (``list_token_acknowledgment``), whose partition, region or account
  may be ``*``;
- the Provider framework's design (``acknowledge_framework_findings``): ``iot:ListJobs`` and
  log delivery on ``*``, invoking function versions, the waiter without X-Ray.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from aws_cdk import Acknowledgment, Stack, Token, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr

from constructs import IConstruct

from .arns import job_pattern_arn
from .selection import Selection

__all__ = [
    "acknowledge",
    "acknowledge_framework_findings",
    "list_token_acknowledgment",
    "selection_acknowledgments",
    "wildcard_resource_id",
]

_ANY_RESOURCE = "AwsSolutions::AwsSolutions-IAM5[Resource::*]"


def wildcard_resource_id(stack: Stack, arn: str) -> str:
    """cdk-nag's id of an AwsSolutions-IAM5 finding on ``arn``: intrinsics as ``<Ref>``."""

    def render(value: object) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            if "Ref" in value:
                return f"<{value['Ref']}>"
            if "Fn::GetAtt" in value:
                return f"<{'.'.join(value['Fn::GetAtt'])}>"
            if "Fn::Join" in value:
                delimiter, parts = value["Fn::Join"]
                return delimiter.join(render(part) for part in parts)
        return json.dumps(value, separators=(",", ":"))

    # Resolved inside a list: a list token of ARNs (job_arns_of_list) is no scalar.
    resolved = stack.resolve([arn])
    resource = resolved[0] if isinstance(resolved, list) else resolved
    return f"AwsSolutions::AwsSolutions-IAM5[Resource::{render(resource)}]"


def acknowledge(construct: IConstruct, acknowledgments: Iterable[Acknowledgment]) -> None:
    """Acknowledges on ``construct`` each finding once, the reasons given for it joined."""
    reasons: dict[str, list[str]] = {}
    for acknowledgment in acknowledgments:
        reasons.setdefault(acknowledgment.id, []).append(acknowledgment.reason)
    if reasons:
        Validations.of(construct).acknowledge(
            *[Acknowledgment(id=rule, reason=" ".join(texts)) for rule, texts in reasons.items()]
        )


def list_token_acknowledgment(stack: Stack, arns: str) -> Acknowledgment:
    """The wildcards of a list token's job ARNs (``job_arns_of_list``)."""
    return Acknowledgment(
        id=wildcard_resource_id(stack, arns),
        reason="The job ids of a list token get their ARNs inside CloudFormation, by Fn::Join, whose "
        "delimiter must be a literal: the partition, region or account known only at deploy "
        "time are '*'. The job ids are exact, and a role reaches only its own account's jobs.",
    )


def selection_acknowledgments(
    stack: Stack, cleanup: str, selection: Selection, actions: Sequence[str]
) -> list[Acknowledgment]:
    """cdk-nag's AwsSolutions-IAM5 (wildcard resources) on a selection's statements, with
    the reason for each; ``cleanup`` is the cleanup's construct path."""
    what = ", ".join(action.removeprefix("iot:") for action in actions)
    prefix = (
        None
        if selection.prefix is None
        else "a prefix given at deploy time"
        if Token.is_unresolved(selection.prefix)
        else repr(selection.prefix)
    )
    if selection.tags:
        keys = ", ".join(key for key, _ in selection.tags)
        reason = (
            f"IotJobCleanup {cleanup} selects jobs created at runtime by their tags ({keys}): "
            f"{what} on {'job ids starting with ' + prefix if prefix else 'job/*'} are conditioned "
            "on aws:ResourceTag for every one of those tags, so only jobs carrying them can be "
            "touched; ListTagsForResource is read-only and finds them."
        )
    elif prefix is not None:
        reason = (
            f"IotJobCleanup {cleanup} selects the jobs whose id starts with {prefix}: {what} and the "
            "read-only ListTagsForResource are limited to those job ids, the jobs it owns."
        )
    else:
        reason = (
            f"IotJobCleanup {cleanup} selects jobs by the thing groups they target, and IAM has no "
            f"condition key for a job's targets, so {what} and ListTagsForResource are on job/*: "
            "the handler deletes only the jobs it finds targeting those groups, only at stack "
            "teardown. Add tags or job_id_prefix to narrow the permission."
        )
    pattern = job_pattern_arn(stack, selection.prefix)
    acknowledgments = [Acknowledgment(id=wildcard_resource_id(stack, pattern), reason=reason)]
    if selection.tags:
        acknowledgments.append(
            Acknowledgment(
                id=_ANY_RESOURCE,
                reason=f"tag:GetResources has no resource-level permissions; it is read-only and "
                f"lets IotJobCleanup {cleanup} find the jobs carrying its tags.",
            )
        )
    return acknowledgments


def acknowledge_framework_findings(
    scope: IConstruct, role: iam.IRole, provider: cr.Provider, handlers: Sequence[lambda_.Function]
) -> None:
    """cdk-nag (AwsSolutions) findings that the Provider framework's design requires: on the
    handler ``role``, on the ``provider``'s waiter, and on ``scope`` (the shared provider's
    construct) for invoking the ``handlers`` and the framework's functions."""
    stack = Stack.of(scope)

    def arn_versions(function: lambda_.IFunction) -> str:
        logical_id = stack.resolve(stack.get_logical_id(function.node.default_child))
        return f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]"

    invoke_reason = (
        "lambda:InvokeFunction on the function and its versions (ARN:*), as the Provider "
        "framework grants it; scoped to this construct's own functions."
    )
    Validations.of(role).acknowledge(
        Acknowledgment(
            id=_ANY_RESOURCE,
            reason="iot:ListJobs has no resource-level permissions; it is read-only and tells the "
            "handler how many of the 10 account-wide deletion slots are free.",
        )
    )
    Validations.of(provider.node.find_child("waiter-state-machine")).acknowledge(
        Acknowledgment(
            id=_ANY_RESOURCE,
            reason="CloudWatch Logs log-delivery actions (CreateLogDelivery and the like) have no "
            "resource-level permissions; the Provider grants them so the waiter can log.",
        )
    )
    Validations.of(scope).acknowledge(
        *[Acknowledgment(id=arn_versions(fn), reason=invoke_reason) for fn in handlers],
        *[
            Acknowledgment(id=arn_versions(provider.node.find_child(name)), reason=invoke_reason)
            for name in ("framework-isComplete", "framework-onTimeout")
        ],
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-SF2",
            reason="The Provider's waiter state machine offers no X-Ray option; it only retries "
            "is_complete, and its events and the handlers' JSON logs go to CloudWatch Logs.",
        ),
    )
