"""Whether a Delete is a stack teardown: the only time a cleanup deletes jobs.

A Delete also comes when an update renames, moves or removes the resource, or rolls back:
then the stack lives on, and so do its jobs. The status of the stack in the event tells.
A nested stack is torn down also when its parent's update removes, renames or replaces it,
while the root stack lives on: its own status is DELETE_IN_PROGRESS then. So the rule
follows the root stack (``RootId`` in DescribeStacks): a nested stack's cleanup deletes only
when its root stack is being deleted, or the root's creation rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from .aws import DENIED_CODES, call_aws, error_code, error_message
from .backoff import Backoff
from .errors import CleanupError, TransientError

__all__ = [
    "STACK_STATUS_ATTEMPTS",
    "TEARDOWN_STATUSES",
    "is_teardown",
    "is_torn_down",
    "stack_status",
    "teardown_in_on_event",
]

logger = logging.getLogger("iot_job_cleanup")

STACK_STATUS_ATTEMPTS = 4  # in on_event; is_complete asks again if they all fail

# The stack is being deleted, or a failed creation is rolled back.
TEARDOWN_STATUSES = frozenset({"DELETE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"})


def stack_status(cloudformation: Any, stack_id: str) -> str:
    """The status that decides (the root stack's, for a nested stack) from CloudFormation.

    Raises ``TransientError`` when the answer may come on a later try, and ``CleanupError``
    naming the permission to grant when the caller may not ask.
    """
    stack = _describe(cloudformation, stack_id)
    root_id = stack.get("RootId")
    if root_id and root_id != stack.get("StackId", stack_id):
        return str(_describe(cloudformation, str(root_id))["StackStatus"])
    return str(stack["StackStatus"])


def _describe(cloudformation: Any, stack_id: str) -> Any:
    try:
        stacks = call_aws(cloudformation, "describe_stacks", StackName=stack_id)["Stacks"]
    except ClientError as exc:
        if error_code(exc) in DENIED_CODES:
            raise CleanupError(
                f"CloudFormation denied DescribeStacks on {stack_id}: the handler asks for the stack's "
                "status to delete jobs only when the stack itself is torn down, and nothing was "
                "deleted. Grant the handler's role cloudformation:DescribeStacks on this stack."
            ) from exc
        raise CleanupError(
            f"CloudFormation could not describe the stack {stack_id} ({error_code(exc)}: "
            f"{error_message(exc)}), so nothing was deleted."
        ) from exc
    if not stacks:
        raise CleanupError(f"CloudFormation knows no stack {stack_id}, so nothing was deleted.")
    return stacks[0]


def is_teardown(status: str) -> bool:
    return status in TEARDOWN_STATUSES


def is_torn_down(event: Mapping[str, Any], cloudformation: Any) -> bool:
    """Whether the Delete in ``event`` is its stack's teardown; logged when it is not."""
    status = stack_status(cloudformation, str(event["StackId"]))
    if is_teardown(status):
        return True
    logger.info(
        "the stack is not being torn down (a renamed, moved or removed cleanup, or an update "
        "rolling back): no job was deleted; this resource's jobs stay with the stack",
        extra={"stackStatus": status, "logicalResourceId": event.get("LogicalResourceId")},
    )
    return False


def teardown_in_on_event(
    event: Mapping[str, Any],
    cloudformation: Any,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    backoff: Backoff,
    hard_stop: float,
) -> bool | None:
    """Whether this Delete is a stack teardown; None when CloudFormation did not answer in time."""
    for attempt in range(STACK_STATUS_ATTEMPTS):
        try:
            return is_torn_down(event, cloudformation)
        except TransientError as exc:
            logger.warning("transient CloudFormation error; will retry", extra={"error": str(exc)})
            pause = backoff.next_delay()
            if attempt + 1 == STACK_STATUS_ATTEMPTS or clock() + pause >= hard_stop:
                break
            sleep(pause)
    return None
