"""The handler role's job policies: what each cleanup needs on jobs, and the packing of all
the stack's cleanups into at most 10 managed policies.

- ``Permissions``: one cleanup's actions on its named jobs, list tokens and selection;
- ``layout``: the plans of the role's ``JobPolicy<n>``, as they always were while that fits
  IAM's quota (then each filtered cleanup has a ``SelectionPolicy`` of its own), else packed
  by size; ``too_many_policies`` words the refusal when even packing cannot fit;
- ``PolicyPlan.add_to``: one plan's statements and cdk-nag acknowledgements on its policy.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, Stack, Token
from aws_cdk import aws_iam as iam

from .arns import job_arn, job_arns_of_list
from .literals import JobIdSources
from .nag import acknowledge, list_token_acknowledgment, selection_acknowledgments
from .selection import Selection
from .statements import (
    MANAGED_POLICY_SIZE,
    POLICY_DOCUMENT_SIZE,
    TOKEN_JOB_ID_SIZE,
    selection_size,
    selection_statements,
)

if TYPE_CHECKING:
    from .construct import IotJobCleanup

__all__ = ["MAX_MANAGED_POLICIES", "Permissions", "PolicyPlan", "layout", "too_many_policies"]

MANAGED_POLICY_BUDGET = MANAGED_POLICY_SIZE - 200  # the rest: Version, Effect, Action
# IAM's default quota of managed policies per role (20 at most, by a quota increase).
MAX_MANAGED_POLICIES = 10
# A job ARN resolves to at most 51 characters around its id (partition "aws-us-gov", a
# 14-character region, a 12-digit account) plus 3 for quotes and comma.
ARN_SCAFFOLD_SIZE = 51 + 3


@dataclass
class Permissions:
    """What one cleanup needs on jobs: ``actions`` on its named jobs and on the jobs its
    filters reach."""

    path: str  # the cleanup's construct path, for messages and acknowledgements
    actions: tuple[str, ...]
    scalars: list[str]  # job ids: literals and string tokens
    lists: list[str]  # list tokens of job ids
    selection: Selection | None  # the filters, if any
    selection_size: int  # its statements, resolved at their longest
    cleanup: IotJobCleanup | None = None  # once constructed

    @classmethod
    def of(
        cls, path: str, sources: JobIdSources | None, selection: Selection, actions: tuple[str, ...]
    ) -> Permissions:
        return cls(
            path=path,
            actions=actions,
            scalars=list(sources.scalars) if sources is not None else [],
            lists=list(sources.lists) if sources is not None else [],
            selection=selection if selection.filtered else None,
            selection_size=selection_size(selection, actions) if selection.filtered else 0,
        )


def _arn_size(job_id: str) -> int:
    """A named job's ARN in a policy, resolved at its longest, with its quotes and comma."""
    return ARN_SCAFFOLD_SIZE + (TOKEN_JOB_ID_SIZE if Token.is_unresolved(job_id) else len(job_id))


@dataclass
class PolicyPlan:
    """The statements of one managed policy of the handler role, and its size so far."""

    size: int
    named: dict[tuple[str, ...], list[str]] = field(default_factory=dict)  # actions -> job ids
    list_token: tuple[tuple[str, ...], str] | None = None  # actions, a list token of job ids
    selections: list[Permissions] = field(default_factory=list)

    def add_to(self, policy: iam.ManagedPolicy, stack: Stack) -> None:
        for actions, job_ids in self.named.items():
            policy.add_statements(
                iam.PolicyStatement(actions=list(actions), resources=[job_arn(stack, i) for i in job_ids])
            )
        acknowledgments: list[Acknowledgment] = []
        if self.list_token is not None:
            actions, list_token = self.list_token
            arns = job_arns_of_list(stack, list_token)
            policy.add_statements(iam.PolicyStatement(actions=list(actions), resources=[arns]))
            acknowledgments.append(list_token_acknowledgment(stack, arns))
        for permissions in self.selections:
            assert permissions.selection is not None
            policy.add_statements(*selection_statements(stack, permissions.selection, permissions.actions))
            acknowledgments.extend(
                selection_acknowledgments(stack, permissions.path, permissions.selection, permissions.actions)
            )
        acknowledge(policy, acknowledgments)


def layout(everyone: Sequence[Permissions]) -> tuple[bool, list[PolicyPlan]]:
    """The role's job policies: (packed, plans).

    As they always were while that fits IAM's quota of 10 managed policies per role (then
    the plans are the JobPolicies only, each filtered cleanup adding its SelectionPolicy);
    else packed by size, selection statements and named ARNs together.
    """
    classic = _classic_job_policies(everyone)
    filtered = sum(1 for permissions in everyone if permissions.selection is not None)
    if len(classic) + filtered <= MAX_MANAGED_POLICIES:
        return False, classic
    return True, _packed_policies(everyone)


def _classic_job_policies(everyone: Sequence[Permissions]) -> list[PolicyPlan]:
    """The named ARNs, cleanup after cleanup, each policy filled up to the budget (whose
    reserve covers a policy's first statement; another set of actions in the same policy
    costs its own Action list and braces). A list token's size is known only at deploy
    time: it gets a policy of its own.

    CDK's own overflow splitting cannot split one statement's resources and counts every
    token ARN as 150 characters, which for hundreds of jobs needs more policies than a role
    may hold.
    """
    plans: list[PolicyPlan] = []
    current: PolicyPlan | None = None
    for permissions in everyone:
        actions = permissions.actions
        for job_id in permissions.scalars:
            size = _arn_size(job_id)
            another = current is not None and actions not in current.named and bool(current.named)
            cost = size + (_statement_overhead(actions) if another else 0)
            if current is None or current.size + cost > MANAGED_POLICY_BUDGET:
                current = PolicyPlan(size=0)
                plans.append(current)
                cost = size
            current.named.setdefault(actions, []).append(job_id)
            current.size += cost
        for list_token in permissions.lists:
            plans.append(PolicyPlan(size=0, list_token=(actions, list_token)))
            current = None  # full, as far as anyone can tell at synth time
    return plans


def _packed_policies(everyone: Sequence[Permissions]) -> list[PolicyPlan]:
    """Every statement packed by its size resolved at its longest, each policy within IAM's
    6,144 characters: the cleanups' selection statements first fit, largest first (a
    cleanup's statements stay together), then the named ARNs first fit into the room left,
    then a policy for each list token."""
    plans: list[PolicyPlan] = []

    def first_fit(cost: Callable[[PolicyPlan], int]) -> PolicyPlan:
        for plan in plans:
            if plan.size + cost(plan) <= MANAGED_POLICY_SIZE:
                return plan
        plans.append(PolicyPlan(size=POLICY_DOCUMENT_SIZE))
        return plans[-1]

    filtered = [permissions for permissions in everyone if permissions.selection is not None]
    for permissions in sorted(filtered, key=lambda permissions: -permissions.selection_size):
        plan = first_fit(lambda _, size=permissions.selection_size: size)
        plan.selections.append(permissions)
        plan.size += permissions.selection_size
    for permissions in everyone:
        actions = permissions.actions
        for job_id in permissions.scalars:

            def cost(
                plan: PolicyPlan, size: int = _arn_size(job_id), actions: tuple[str, ...] = actions
            ) -> int:
                return size + (0 if actions in plan.named else _statement_overhead(actions))

            plan = first_fit(cost)
            plan.size += cost(plan)
            plan.named.setdefault(actions, []).append(job_id)
    for permissions in everyone:
        plans.extend(
            PolicyPlan(size=MANAGED_POLICY_SIZE, list_token=(permissions.actions, list_token))
            for list_token in permissions.lists
        )
    return plans


def too_many_policies(everyone: Sequence[Permissions], needed: int) -> str:
    """The refusal when the stack's cleanups need more than ``MAX_MANAGED_POLICIES``."""

    def counted(number: int, one: str, many: str) -> str:
        return f"{number} {one if number == 1 else many}"

    filtered = sum(1 for permissions in everyone if permissions.selection is not None)
    named = sum(len(permissions.scalars) for permissions in everyone)
    lists = sum(len(permissions.lists) for permissions in everyone)
    parts = [
        counted(filtered, "filtered cleanup's selection", "filtered cleanups' selections")
        if filtered
        else "",
        counted(named, "named job ARN", "named job ARNs") if named else "",
        counted(lists, "list of job ids from tokens", "lists of job ids from tokens")
        + " (a policy of its own each: a list's length is known only at deploy time)"
        if lists
        else "",
    ]
    return (
        f"the stack's cleanups would need {needed} managed policies on their shared handler role, "
        f"even packed by size, and IAM attaches at most {MAX_MANAGED_POLICIES} to a role (its default "
        f"quota): {', '.join(part for part in parts if part)}, each policy at most 6,144 characters. "
        "Select with fewer filtered cleanups (one cleanup's tags or job_id_prefix can cover the jobs "
        "of several), name fewer jobs or give fewer lists of ids, or move some cleanups into another "
        "stack or a NestedStack (each has a handler role of its own)."
    )


@functools.cache
def _statement_overhead(actions: tuple[str, ...]) -> int:
    """A statement's size without its resources, as IAM counts it, and the comma before it."""
    return (
        len(json.dumps({"Action": list(actions), "Effect": "Allow", "Resource": []}, separators=(",", ":")))
        + 1
    )
