"""The wire: moto's IoT responses patched to answer from a ``DeletionLifecycle``.

``emulated_iot()`` makes a lifecycle for an account and region and, while any is active,
replaces the IoT responses below on moto's ``IoTResponse``, so real boto3 clients reach the
lifecycle through ``mock_aws`` or a ``ThreadedMotoServer`` in this process. A request for an
account and region without a lifecycle gets moto's own answer.

Each patched response is one function under ``@_patched(name)``: it is given the request
(moto's ``IoTResponse``), the lifecycle and moto's original response, and only translates:
parameters in, the lifecycle's answer out. The state and the errors are the model's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

from moto.core.responses import ActionResult, EmptyResult
from moto.iot.models import FakeJob, iot_backends
from moto.iot.responses import IoTResponse

from .jobs import DeletionTime, IotApiError
from .model import DeletionLifecycle

__all__ = ["emulated_iot"]

Original = Callable[[IoTResponse], Any]
Answer = Callable[[IoTResponse, DeletionLifecycle, Original], Any]

_answers: dict[str, Answer] = {}
_lifecycles: dict[tuple[str, str], DeletionLifecycle] = {}


def _patched(name: str) -> Callable[[Answer], Answer]:
    """Register ``answer`` as IoTResponse's ``name`` for accounts with a lifecycle."""

    def register(answer: Answer) -> Answer:
        _answers[name] = answer
        return answer

    return register


def _not_emulated(request: IoTResponse) -> Any:
    """An operation moto lacks (ListTagsForResource), asked in an account without a lifecycle."""
    raise IotApiError("InvalidRequestException", "Tags are emulated for jobs only.", 400)


def _response(name: str, answer: Answer, original: Original | None) -> Callable[[IoTResponse], Any]:
    fallback = original or _not_emulated

    def respond(self: IoTResponse) -> Any:
        lifecycle = _lifecycles.get((self.current_account, self.region))
        if lifecycle is None:
            return fallback(self)
        return answer(self, lifecycle, fallback)

    respond.__name__ = name
    return respond


def _force(request: IoTResponse) -> bool:
    return bool(request._get_bool_param("force", False))


# --------------------------------------------------------------------------- the patched responses


@_patched("create_job")
def _create_job(request: IoTResponse, lifecycle: DeletionLifecycle, original: Original) -> ActionResult:
    lifecycle.admit("CreateJob")
    result = original(request)
    tags = {tag["Key"]: tag.get("Value", "") for tag in request._get_param("tags") or []}
    lifecycle.record_creation(request._get_param("jobId"), request._get_param("namespaceId"), tags)
    return result


@_patched("describe_job")
def _describe_job(request: IoTResponse, lifecycle: DeletionLifecycle, original: Original) -> ActionResult:
    job_id = request._get_param("jobId")
    lifecycle.describe_job(job_id)
    result = original(request)
    result.result["job"]["namespaceId"] = lifecycle.namespace_of(job_id)
    return result


@_patched("delete_job")
def _delete_job(request: IoTResponse, lifecycle: DeletionLifecycle, original: Original) -> EmptyResult:
    lifecycle.delete_job(
        request._get_param("jobId"), force=_force(request), namespace_id=request._get_param("namespaceId")
    )
    return EmptyResult()


@_patched("cancel_job")
def _cancel_job(request: IoTResponse, lifecycle: DeletionLifecycle, original: Original) -> ActionResult:
    job = lifecycle.cancel_job(
        request._get_param("jobId"),
        force=_force(request),
        reason_code=request._get_param("reasonCode"),
        comment=request._get_param("comment"),
    )
    return ActionResult({"jobArn": job.job_arn, "jobId": job.job_id, "description": job.description})


@_patched("list_jobs")
def _list_jobs(request: IoTResponse, lifecycle: DeletionLifecycle, original: Original) -> ActionResult:
    jobs, token = lifecycle.list_jobs(
        status=request._get_param("status"),
        namespace_id=request._get_param("namespaceId"),
        max_results=request._get_int_param("maxResults", 50),
        next_token=request._get_param("nextToken"),
        thing_group_name=request._get_param("thingGroupName"),
    )
    return ActionResult({"jobs": [job.to_dict() for job in jobs], "nextToken": token})


@_patched("list_tags_for_resource")
def _list_tags_for_resource(
    request: IoTResponse, lifecycle: DeletionLifecycle, original: Original
) -> ActionResult:
    tags, token = lifecycle.list_tags_page(request._get_param("resourceArn"), request._get_param("nextToken"))
    return ActionResult(
        {"tags": [{"Key": key, "Value": value} for key, value in tags.items()], "nextToken": token}
    )


def _group_name(request: IoTResponse) -> str:
    return unquote(request.path.split("/thing-groups/")[-1])


@_patched("create_thing_group")
def _create_thing_group(request: IoTResponse, lifecycle: DeletionLifecycle, original: Original) -> Any:
    result = original(request)
    lifecycle.deleted_groups.discard(_group_name(request))
    return result


@_patched("delete_thing_group")
def _delete_thing_group(request: IoTResponse, lifecycle: DeletionLifecycle, original: Original) -> Any:
    result = original(request)
    lifecycle.deleted_groups.add(_group_name(request))
    return result


# --------------------------------------------------------------------------- installing them

_patch_lock = threading.Lock()
_patch_depth = 0
_originals: dict[str, Original | None] = {}


def _install() -> None:
    _originals.update({name: getattr(IoTResponse, name, None) for name in _answers})
    for name, answer in _answers.items():
        setattr(IoTResponse, name, _response(name, answer, _originals[name]))


def _uninstall() -> None:
    for name, method in _originals.items():
        if method is None:
            delattr(IoTResponse, name)
        else:
            setattr(IoTResponse, name, method)


@contextmanager
def emulated_iot(
    account_id: str = "123456789012",
    region: str = "us-east-1",
    *,
    clock: Callable[[], float] = time.monotonic,
    deletion_time: Callable[[FakeJob], float] | None = None,
    slots: int = 10,
    list_lag_seconds: float = 0.0,
    rate_limit: float | None = None,
) -> Iterator[DeletionLifecycle]:
    """Give moto's IoT in ``account_id``/``region`` the documented DeleteJob lifecycle.

    Use inside ``mock_aws()`` or while a ``ThreadedMotoServer`` runs in this process.
    """
    global _patch_depth
    lifecycle = DeletionLifecycle(
        backend=iot_backends[account_id][region],
        clock=clock,
        deletion_time=deletion_time or DeletionTime(),
        slots=slots,
        list_lag_seconds=list_lag_seconds,
        rate_limit=rate_limit,
    )
    with _patch_lock:
        if _patch_depth == 0:
            _install()
        _patch_depth += 1
        _lifecycles[(account_id, region)] = lifecycle
    try:
        yield lifecycle
    finally:
        with _patch_lock:
            _lifecycles.pop((account_id, region), None)
            _patch_depth -= 1
            if _patch_depth == 0:
                _uninstall()
