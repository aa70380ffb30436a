"""The CDK Provider framework's entry points: ``on_event`` and ``is_complete``.

Create and Update change nothing in IoT. A Delete deletes jobs only when the stack itself
is torn down (``stack``). Then ``on_event`` plans and starts the deletions and
``is_complete`` reports complete only when every selected job is gone. No state is kept
between invocations except what ``on_event`` hands to ``is_complete`` in the event
(``handoff``: the start and give-up times, whether the stack is torn down, the planned order
of the named jobs, and on_event's last second of calls). Everything else is recomputed from
IoT each time.

While a Delete runs, each invocation writes the cleanup's progress as CloudWatch metrics
(``metrics``: an EMF line on standard output every minute and at its end), when
``write_metrics`` is given: the Lambda entry points give standard output.
"""

from __future__ import annotations

import logging
import math
import os
import random as _random
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3

from . import handoff
from .aws import CLIENT_CONFIG, IotJobs
from .backoff import Backoff
from .boundary import no_traceback
from .contract import CleanupRequest
from .errors import CleanupError, CleanupTimeoutError, TransientError
from .handoff import (
    DEADLINE_KEY,
    DRAINED_KEY,
    ORDER_KEY,
    RECENT_CALLS_KEY,
    STARTED_KEY,
    TEARDOWN_KEY,
)
from .metrics import CleanupMetrics, write_stdout
from .report import timeout_message
from .scheduling import JobCleanup
from .stack import is_torn_down, teardown_in_on_event
from .timing import Timing

__all__ = [
    "DEADLINE_KEY",
    "ORDER_KEY",
    "RECENT_CALLS_KEY",
    "STARTED_KEY",
    "TEARDOWN_KEY",
    "Timing",
    "handle_is_complete",
    "handle_on_event",
    "is_complete",
    "on_event",
]

logger = logging.getLogger("iot_job_cleanup")
logger.setLevel(logging.INFO)

# A Lambda timeout is a failed resource (the Provider reports it as FAILED): every loop
# stops this many seconds before the invocation's own timeout.
LAMBDA_MARGIN = 25.0  # more than one AWS call may take (connect 5 s + read 15 s)
LINGER_SECONDS = 30.0  # how far past its poll window an is_complete may go on to end at a quiet moment
INVOCATION_GAP = 2.0  # from an is_complete's return to the next one's first poll, besides the waiter's wait


def _physical_resource_id(event: Mapping[str, Any]) -> str:
    return event.get("PhysicalResourceId") or f"iot-job-cleanup:{event['LogicalResourceId']}"


def _remaining_lambda_seconds(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else math.inf


def _stack_name(event: Mapping[str, Any]) -> str:
    stack_id = str(event.get("StackId", ""))
    return stack_id.split(":stack/", 1)[-1].split("/", 1)[0] or stack_id


def _metrics(
    event: Mapping[str, Any],
    request: CleanupRequest,
    write: Callable[[str], None] | None,
    clock: Callable[[], float],
) -> CleanupMetrics | None:
    """This invocation's metrics recorder, or None when no one reads them."""
    if write is None:
        return None
    return CleanupMetrics(
        stack_name=_stack_name(event),
        cleanup=request.cleanup_path or str(event.get("LogicalResourceId")),
        clock=clock,
        write=write,
        stage=request.stage,
        stages=request.stages,
    )


def _cancel_comment(event: Mapping[str, Any], request: CleanupRequest) -> str:
    return (
        f"Cancelled by IotJobCleanup {event.get('LogicalResourceId')} as stack {_stack_name(event)} is "
        f"torn down; deleted once its devices finish (drain {request.drain or 0:.0f} s)."
    )


def _marker(event: Mapping[str, Any], request: CleanupRequest) -> str:
    """What this cleanup writes into the jobs it cancels, to know them again: the construct
    (every stage of a cleanup shares it; else the resource) and the stack."""
    return f"{request.cleanup_path or event.get('LogicalResourceId')}@{_stack_name(event)}"


# --------------------------------------------------------------------------- the handlers


def _cleanup(
    event: Mapping[str, Any],
    request: CleanupRequest,
    *,
    client: Any,
    tagging: Any,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    random: Callable[[], float],
    hard_stop: float,
    order: tuple[str, ...] | None = None,
    planned: bool = True,
    drained_tail: int = 0,
) -> JobCleanup:
    iot = IotJobs(
        client,
        request.namespace_id,
        tagging=tagging,
        clock=clock,
        sleep=sleep,
        recent_calls=handoff.recent_calls(event),
    )
    return JobCleanup(
        iot,
        request,
        clock=clock,
        sleep=sleep,
        random=random,
        order=order,
        planned=planned,
        drained_tail=drained_tail,
        hard_stop=hard_stop,
        cancel_comment=_cancel_comment(event, request),
        marker=_marker(event, request),
        drain_from=_started_at(event, clock()),
        recent_tags_decide=True,  # the construct's role may touch only jobs that carry the tags
    )


def _started_at(event: Mapping[str, Any], default: float) -> float:
    started = handoff.started_at(event)
    return default if started is None else started


@no_traceback
def handle_on_event(
    event: Mapping[str, Any],
    *,
    client: Any,
    cloudformation: Any,
    timing: Timing,
    tagging: Any = None,
    remaining_lambda_seconds: float = math.inf,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    random: Callable[[], float] = _random.random,
    write_metrics: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    request_type = event["RequestType"]
    request = CleanupRequest.from_properties(event.get("ResourceProperties", {}))
    physical_id = _physical_resource_id(event)
    if request_type in ("Create", "Update"):
        _log_dropped_jobs(event, request)
        return {"PhysicalResourceId": physical_id}
    if request_type != "Delete":
        raise CleanupError(f"RequestType {request_type!r} is not Create, Update or Delete.")
    timing = timing.for_request(request)
    now = clock()
    result: dict[str, Any] = {
        "PhysicalResourceId": physical_id,
        STARTED_KEY: now,
        DEADLINE_KEY: now + timing.total_timeout - timing.report_margin,
    }
    hard_stop = now + remaining_lambda_seconds - LAMBDA_MARGIN
    teardown = teardown_in_on_event(
        event, cloudformation, clock=clock, sleep=sleep, backoff=Backoff(random=random), hard_stop=hard_stop
    )
    if teardown is None:  # is_complete asks again
        return result
    result[TEARDOWN_KEY] = "true" if teardown else "false"
    if not teardown:
        return result
    cleanup = _cleanup(
        event,
        request,
        client=client,
        tagging=tagging,
        clock=clock,
        sleep=sleep,
        random=random,
        hard_stop=hard_stop,
    )
    try:
        order = cleanup.plan()
        positions = {job_id: index for index, job_id in enumerate(request.job_ids)}
        result[ORDER_KEY] = [positions[job_id] for job_id in order]
        result[DRAINED_KEY] = cleanup.drained_tail
        cleanup.refill(ready=cleanup.free_slots())
        started = cleanup.start_deletions()
        logger.info("cleanup started", extra={"jobs": len(request.job_ids), "started": started})
    except TransientError as exc:  # is_complete starts over, in list order
        logger.warning("transient IoT error; is_complete will retry", extra={"error": str(exc)})
    result[RECENT_CALLS_KEY] = cleanup.iot.recent_calls()
    metrics = _metrics(event, request, write_metrics, clock)
    if metrics is not None:
        metrics.record(cleanup.progress())
    return result


def _log_dropped_jobs(event: Mapping[str, Any], request: CleanupRequest) -> None:
    old_ids = (event.get("OldResourceProperties") or {}).get("JobIds") or []
    dropped = sorted(set(old_ids) - set(request.job_ids) - {""}) if isinstance(old_ids, list) else []
    if dropped:
        logger.info(
            "jobs dropped from JobIds are no longer this resource's to delete; nothing was deleted",
            extra={"droppedJobIds": dropped},
        )


@no_traceback
def handle_is_complete(
    event: Mapping[str, Any],
    *,
    client: Any,
    cloudformation: Any,
    timing: Timing,
    tagging: Any = None,
    remaining_lambda_seconds: float = math.inf,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    random: Callable[[], float] = _random.random,
    write_metrics: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    if event["RequestType"] != "Delete" or handoff.teardown(event) is False:
        return {"IsComplete": True}
    request = CleanupRequest.from_properties(event.get("ResourceProperties", {}))
    timing = timing.for_request(request)
    now = clock()
    started_at = _started_at(event, now)
    handed_on = handoff.give_up_at(event)
    give_up_at = started_at + timing.total_timeout - timing.report_margin if handed_on is None else handed_on
    if handoff.teardown(event) is not True:
        try:
            if not is_torn_down(event, cloudformation):
                return {"IsComplete": True}
        except TransientError as exc:
            if now >= give_up_at - timing.poll_interval:
                if request.hands_on:
                    return _hand_over(event, request, None, now - started_at)
                raise CleanupTimeoutError(
                    f"Timed out after {now - started_at:.0f} s: CloudFormation did not tell the stack's "
                    f"status ({exc}), so no job was deleted. Run cdk destroy again."
                ) from exc
            logger.warning("transient CloudFormation error; will retry", extra={"error": str(exc)})
            return {"IsComplete": False}
    window_end = min(now + timing.poll_window, give_up_at)
    last_chance = window_end + timing.query_interval >= give_up_at
    if last_chance:
        window_end = give_up_at
    hard_stop = now + remaining_lambda_seconds - LAMBDA_MARGIN
    window_end = min(window_end, hard_stop)
    order = handoff.planned_order(event, request.job_ids)
    cleanup = _cleanup(
        event,
        request,
        client=client,
        tagging=tagging,
        clock=clock,
        sleep=sleep,
        random=random,
        hard_stop=hard_stop,
        order=order,
        planned=order is not None,
        drained_tail=handoff.drained_tail(event, order),
    )
    metrics = _metrics(event, request, write_metrics, clock)
    on_poll = metrics.on_poll if metrics is not None else None
    finished = cleanup.run_until(
        window_end,
        timing.poll_interval,
        on_poll=on_poll,
        # End at a quiet moment: a slot that frees while no invocation runs waits for the next.
        # Never into the time the last invocation needs for its report.
        linger_until=None
        if last_chance
        else min(hard_stop, window_end + LINGER_SECONDS, give_up_at - timing.query_interval - INVOCATION_GAP),
        quiet_for=timing.query_interval + INVOCATION_GAP,
    )
    out_of_time = not finished and last_chance and clock() >= give_up_at - timing.poll_interval
    handing_over = out_of_time and request.hands_on
    if metrics is not None:  # the invocation's last record, whatever comes next
        metrics.record(cleanup.progress(), handed_over=handing_over)
    if finished:
        logger.info(
            "every job is gone",
            extra={
                "jobs": len(request.job_ids),
                "discovered": sum(1 for entry in cleanup.ledger.entries() if not entry.named),
                "iotCalls": cleanup.iot.calls,
            },
        )
        return {"IsComplete": True}
    if handing_over:
        return _hand_over(event, request, cleanup, clock() - started_at)
    if out_of_time:
        raise CleanupTimeoutError(timeout_message(cleanup, clock() - started_at, _stack_name(event)))
    return {"IsComplete": False}


def _hand_over(
    event: Mapping[str, Any], request: CleanupRequest, cleanup: JobCleanup | None, elapsed: float
) -> dict[str, Any]:
    """A stage that is not the last, out of time with jobs left: it succeeds, and the next
    stage (CloudFormation deletes it next) carries on; the deletions under way go on in IoT
    and are the next stage's. Not success: the cleanup's result is its last stage's."""
    progress = cleanup.progress() if cleanup is not None else None
    logger.warning(
        "stage %d of %d hands over after %.0f s: the next stage carries on",
        request.stage,
        request.stages,
        elapsed,
        extra={
            "logicalResourceId": event.get("LogicalResourceId"),
            "stage": request.stage,
            "stages": request.stages,
            "jobsLeft": progress.left if progress is not None else None,
            "jobsDeleting": progress.deleting if progress is not None else None,
            "handedOver": True,
        },
    )
    return {"IsComplete": True}


# --------------------------------------------------------------------------- Lambda


_client_cache: dict[str, Any] = {}


def _client(service: str) -> Any:
    """One client per service and container."""
    if service not in _client_cache:
        _client_cache[service] = boto3.client(service, config=CLIENT_CONFIG)
    return _client_cache[service]


def _where_the_logs_are(message: str) -> str:
    """The Provider's own "Logs:" line names its framework function; ours names the handler's logs."""
    log_group = os.environ.get("LOG_GROUP_NAME") or os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
    return f"{message} Handler logs: CloudWatch log group {log_group}." if log_group else message


def _reported(
    entry_point: Callable[..., dict[str, Any]], event: Mapping[str, Any], context: Any
) -> dict[str, Any]:
    try:
        return entry_point(
            event,
            client=_client("iot"),
            cloudformation=_client("cloudformation"),
            tagging=_client("resourcegroupstaggingapi"),
            timing=Timing.from_environment(),
            remaining_lambda_seconds=_remaining_lambda_seconds(context),
            write_metrics=write_stdout,
        )
    except CleanupError as exc:
        raise type(exc)(_where_the_logs_are(str(exc))) from exc


def on_event(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return _reported(handle_on_event, event, context)


def is_complete(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return _reported(handle_is_complete, event, context)
