"""CloudFormation's stack records: the stack status the handler asks for before it deletes.

The handler deletes only at stack teardown, so it asks DescribeStacks. ``emulated_stack``
puts a stack record with a chosen status into moto's CloudFormation (``set_stack_status``
changes it), so DescribeStacks answers it through ``mock_aws`` or a ``ThreadedMotoServer``;
``StackStatusClient`` answers the same call in-process. A nested stack has a ``RootId`` and
a ``ParentId`` (its root stack's and its parent's ids): ``emulated_stack(..., root_id=...,
parent_id=...)``, or ``StackStatusClient(stacks={stack_id: StackRecord(status, root_id)})``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from moto.cloudformation.models import cloudformation_backends

__all__ = ["StackRecord", "StackStatusClient", "emulated_stack", "set_stack_status"]

# A stack record needs a template; its resources play no part here.
_EMPTY_TEMPLATE = '{"Resources": {}}'


def emulated_stack(
    account_id: str,
    region: str,
    name: str,
    status: str,
    stack_id: str | None = None,
    *,
    root_id: str | None = None,
    parent_id: str | None = None,
) -> str:
    """Put a stack record in moto's CloudFormation with ``status``; return its stack id.

    DescribeStacks (by name or id) then answers it, through ``mock_aws`` or a
    ``ThreadedMotoServer`` in this process. ``stack_id`` gives it a chosen id (an event's
    ``StackId``), else moto makes one. A nested stack has ``root_id`` (the top stack's id)
    and ``parent_id`` (its parent's; the root by default), which DescribeStacks answers as
    ``RootId`` and ``ParentId``.
    """
    backend = cloudformation_backends[account_id][region]
    stack = backend.create_stack(name=name, template=_EMPTY_TEMPLATE, parameters={})
    if stack_id:
        backend.stacks[stack_id] = backend.stacks.pop(stack.stack_id)
        stack.stack_id = stack_id
    stack.status = status
    if root_id or parent_id:
        # moto's DescribeStacks renders a stack's attributes by the API's member names.
        stack.root_id = root_id or parent_id
        stack.parent_id = parent_id or root_id
    return stack.stack_id


def set_stack_status(account_id: str, region: str, stack_id: str, status: str) -> None:
    """Change an emulated stack's status, as CloudFormation does between an update's phases."""
    cloudformation_backends[account_id][region].stacks[stack_id].status = status


@dataclass
class StackRecord:
    """One stack as DescribeStacks tells it: a nested stack has a root (and a parent)."""

    status: str
    root_id: str | None = None
    parent_id: str | None = None


def _stack_name_of(stack_id: str) -> str:
    return stack_id.split(":stack/", 1)[-1].split("/", 1)[0] if ":stack/" in stack_id else stack_id


def _does_not_exist(stack_name: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "ValidationError", "Message": f"Stack with id {stack_name} does not exist"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "DescribeStacks",
    )


@dataclass
class StackStatusClient:
    """CloudFormation's DescribeStacks answered in-process (for simulations).

    Without ``stacks`` every stack asked for has ``status``. With ``stacks`` (stack id ->
    ``StackRecord``, or ``(status, root_id)``) only those exist, asked for by id or by
    name; a nested stack answers ``RootId`` and ``ParentId``, and another stack the
    ValidationError CloudFormation answers for a stack that does not exist.
    """

    status: str = "DELETE_IN_PROGRESS"
    stacks: dict[str, StackRecord | tuple[str, str | None]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)

    def record(self, stack_id: str) -> StackRecord:
        record = self.stacks[stack_id]
        return record if isinstance(record, StackRecord) else StackRecord(*record)

    def set_status(self, stack_id: str, status: str) -> None:
        record = self.record(stack_id)
        self.stacks[stack_id] = StackRecord(status, record.root_id, record.parent_id)

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        self.calls["DescribeStacks"] += 1
        if not self.stacks:
            return {"Stacks": [{"StackId": StackName, "StackName": StackName, "StackStatus": self.status}]}
        matches = [stack_id for stack_id in self.stacks if StackName in (stack_id, _stack_name_of(stack_id))]
        if not matches:
            raise _does_not_exist(StackName)
        stack_id = matches[0]
        record = self.record(stack_id)
        stack: dict[str, Any] = {
            "StackId": stack_id,
            "StackName": _stack_name_of(stack_id),
            "StackStatus": record.status,
        }
        if record.root_id or record.parent_id:
            stack["RootId"] = record.root_id or record.parent_id
            stack["ParentId"] = record.parent_id or record.root_id
        return {"Stacks": [stack]}
