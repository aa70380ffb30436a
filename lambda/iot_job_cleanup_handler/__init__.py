"""Deletes AWS IoT jobs when their CloudFormation stack is torn down: the cleanup engine.

The Lambda entry points for the CDK Provider framework are ``on_event`` and
``is_complete`` (handler ``iot_job_cleanup_handler.on_event``). The same engine serves the
``iot-job-cleanup`` command line. One module per concern:

- ``contract``: the resource properties, which jobs a cleanup selects, and the checks;
- ``rules``: IoT's naming rules (job ids, namespace ids, thing group names, tags), standard
  library only: the construct loads this file alone to check its options at synth time;
- ``aws``: the IoT, CloudFormation and tagging calls, with error codes turned into outcomes;
- ``stack``: whether a Delete is a stack teardown (the only time jobs are deleted);
- ``timing``: how the handler paces itself (the waiter's interval, the polling window);
- ``boundary``: the event checked before it is read, and only ``CleanupError`` let out (I4);
- ``discovery``: finding the jobs the filters select, from IoT;
- ``guard``: the trust rules I1-I4, the one place that looks at a job, judges it and acts on it;
- ``ledger``: each job's place in the cleanup, changed only by named transitions;
- ``planning``: the plan in ``on_event``: the first deletions at once, the rest ordered;
- ``scheduling``: deleting through the 10 shared slots, with backoff, force and drain;
- ``draining``: which draining jobs are looked at again, and when (the drain's pace);
- ``polling``: when the next poll comes, from the deletion time learned of our own deletions;
- ``finding``: what a discovery walk finds, and where it goes in the cleanup;
- ``final_look``: I2's last looks at the named jobs, made while the last deletions run;
- ``handoff``: what ``on_event`` hands to ``is_complete`` in the event, checked as read back;
- ``backoff``: exponential backoff with equal jitter, its randomness injected;
- ``report``: a cleanup's progress snapshot, the jobs really left, the timeout message;
- ``metrics``: that snapshot as CloudWatch metrics (EMF lines on standard output);
- ``entry``: the Provider framework's entry points and their messages.

It imports only the standard library, boto3 and botocore.
"""

from __future__ import annotations

from .aws import CLIENT_CONFIG, RUNNING_STATUSES, IotJobs
from .backoff import Backoff
from .contract import CleanupRequest, Selection
from .discovery import Discovery
from .entry import (
    DEADLINE_KEY,
    ORDER_KEY,
    RECENT_CALLS_KEY,
    STARTED_KEY,
    TEARDOWN_KEY,
    Timing,
    handle_is_complete,
    handle_on_event,
    is_complete,
    on_event,
)
from .errors import (
    CleanupError,
    CleanupTimeoutError,
    DrainTimeoutError,
    ForceRequiredError,
    InvalidPropertiesError,
    RefusedError,
    TransientError,
)
from .report import MAX_MESSAGE_BYTES, CleanupProgress, timeout_message
from .scheduling import DELETION_SLOTS, JobCleanup, devices_busy, execution_count, forget_cached_facts
from .stack import TEARDOWN_STATUSES, is_teardown, stack_status

__all__ = [
    "CLIENT_CONFIG",
    "DEADLINE_KEY",
    "DELETION_SLOTS",
    "MAX_MESSAGE_BYTES",
    "ORDER_KEY",
    "RECENT_CALLS_KEY",
    "RUNNING_STATUSES",
    "STARTED_KEY",
    "TEARDOWN_KEY",
    "TEARDOWN_STATUSES",
    "Backoff",
    "CleanupError",
    "CleanupProgress",
    "CleanupRequest",
    "CleanupTimeoutError",
    "Discovery",
    "DrainTimeoutError",
    "ForceRequiredError",
    "InvalidPropertiesError",
    "IotJobs",
    "JobCleanup",
    "RefusedError",
    "Selection",
    "Timing",
    "TransientError",
    "devices_busy",
    "execution_count",
    "forget_cached_facts",
    "handle_is_complete",
    "handle_on_event",
    "is_complete",
    "is_teardown",
    "on_event",
    "stack_status",
    "timeout_message",
]
