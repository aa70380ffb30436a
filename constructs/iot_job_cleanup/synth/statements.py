"""A cleanup's IAM statements: the actions on its jobs, a filtered cleanup's own statements
(the jobs its filters reach), and their size as IAM counts it.

IAM counts a managed policy's size resolved and without white space: at most 6,144
characters. Tokens count at their longest (a job id 64 characters, a tag value 256), ARNs
for the longest partition, region and account. A selection's statements stay together, so
they must fit one managed policy on their own (``check_selection_policy_size``); while the
stack's policies fit IAM's quota unpacked, each filtered cleanup holds them in a
``SelectionPolicy`` of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import Stack, Token, Validations
from aws_cdk import aws_iam as iam

from constructs import Construct

from .arns import job_pattern_arn
from .nag import selection_acknowledgments
from .naming import SettingError
from .selection import Selection

__all__ = [
    "DRAIN_ACTIONS",
    "JOB_ACTIONS",
    "MANAGED_POLICY_SIZE",
    "POLICY_DOCUMENT_SIZE",
    "TOKEN_JOB_ID_SIZE",
    "SelectionPolicy",
    "check_selection_policy_size",
    "selection_size",
    "selection_statements",
]

JOB_ACTIONS = ("iot:DeleteJob", "iot:DescribeJob")
DRAIN_ACTIONS = ("iot:CancelJob", "iot:ListJobExecutionsForJob")
MANAGED_POLICY_SIZE = 6144
POLICY_DOCUMENT_SIZE = len('{"Version":"2012-10-17","Statement":[]}')
TOKEN_JOB_ID_SIZE = 64
TOKEN_TAG_VALUE_SIZE = 256


def selection_statements(
    stack: Stack, selection: Selection, actions: Sequence[str]
) -> list[iam.PolicyStatement]:
    """A filtered cleanup's own permissions: the jobs its filters reach.

    With tags the job actions are conditioned on ``aws:ResourceTag`` for every tag, so even
    a bug in the handler cannot delete a job without them; with a prefix they are limited
    to ``job/<prefix>*``; thing groups alone have no condition key and get ``job/*``. The
    discovery reads: ``iot:ListTagsForResource`` on the same jobs, and with tags
    ``tag:GetResources`` (no resource-level permissions: ``*``).
    """
    pattern = job_pattern_arn(stack, selection.prefix)
    conditions = (
        {"StringEquals": {f"aws:ResourceTag/{key}": value for key, value in selection.tags}}
        if selection.tags
        else None
    )
    statements = [
        iam.PolicyStatement(actions=list(actions), resources=[pattern], conditions=conditions),
        iam.PolicyStatement(actions=["iot:ListTagsForResource"], resources=[pattern]),
    ]
    if selection.tags:
        statements.append(iam.PolicyStatement(actions=["tag:GetResources"], resources=["*"]))
    return statements


class SelectionPolicy(iam.ManagedPolicy):
    """A filtered cleanup's own permissions on the handler role (``selection_statements``),
    while the stack's policies fit IAM's quota without packing."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        selection: Selection,
        actions: Sequence[str],
        role: iam.IRole,
    ) -> None:
        stack = Stack.of(scope)
        super().__init__(
            scope,
            construct_id,
            description="Lets IotJobCleanup delete only the jobs its filters select.",
            statements=selection_statements(stack, selection, actions),
            roles=[role],
        )
        Validations.of(self).acknowledge(
            *selection_acknowledgments(stack, scope.node.path, selection, actions)
        )


def _worst_case_selection_statements(selection: Selection, actions: Sequence[str]) -> list[dict[str, object]]:
    """A selection's statements resolved for the longest partition, region and account,
    tokens at their longest: what IAM would count."""
    prefix = (
        "x" * TOKEN_JOB_ID_SIZE
        if selection.prefix and Token.is_unresolved(selection.prefix)
        else selection.prefix
    )
    pattern = f"arn:aws-us-gov:iot:{'x' * 14}:{'1' * 12}:job/{prefix or ''}*"
    tags = {
        f"aws:ResourceTag/{key}": "x" * TOKEN_TAG_VALUE_SIZE if Token.is_unresolved(value) else value
        for key, value in selection.tags
    }
    jobs: dict[str, object] = {"Action": list(actions), "Effect": "Allow", "Resource": pattern}
    if tags:
        jobs["Condition"] = {"StringEquals": tags}
    statements: list[dict[str, object]] = [
        jobs,
        {"Action": "iot:ListTagsForResource", "Effect": "Allow", "Resource": pattern},
    ]
    if tags:
        statements.append({"Action": "tag:GetResources", "Effect": "Allow", "Resource": "*"})
    return statements


def selection_size(selection: Selection, actions: Sequence[str]) -> int:
    """The selection's statements in a policy, as IAM counts them, each with its comma."""
    return sum(
        len(json.dumps(statement, separators=(",", ":"), ensure_ascii=False)) + 1
        for statement in _worst_case_selection_statements(selection, actions)
    )


def check_selection_policy_size(selection: Selection, actions: Sequence[str]) -> None:
    """A selection's statements stay together: they must fit IAM's 6,144 characters for a
    managed policy on their own."""
    size = POLICY_DOCUMENT_SIZE + selection_size(selection, actions) - 1
    if size > MANAGED_POLICY_SIZE:
        raise SettingError(
            f"tags {', '.join(key for key, _ in selection.tags)}: the IAM policy that limits the "
            f"handler to jobs carrying them would be {size} characters, more than the 6,144 of an IAM "
            "managed policy. Select with fewer or shorter tags (a value given as a token counts as "
            f"{TOKEN_TAG_VALUE_SIZE} characters)."
        )
