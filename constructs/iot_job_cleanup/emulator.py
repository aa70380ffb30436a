"""An offline AWS IoT jobs endpoint: moto, plus the DeleteJob lifecycle moto lacks.

moto (5.2) speaks the IoT wire protocol and models things, thing groups and jobs, but
deletes a job instantly, has no DELETION_IN_PROGRESS, no 10-deletion limit, and answers
a 500 for an unknown job id. ``DeletionLifecycle`` adds what the DeleteJob documentation
describes, on top of a moto IoT backend:

- DeleteJob puts the job in DELETION_IN_PROGRESS for a time that grows with its targets;
  afterwards it is gone and DescribeJob answers ResourceNotFoundException;
- at most ``slots`` (10) jobs of the account and region are DELETION_IN_PROGRESS at once;
  one more DeleteJob gets LimitExceededException;
- deleting or cancelling a job that is already DELETION_IN_PROGRESS is an error
  (InvalidStateTransitionException here; the real code may differ);
- without force only COMPLETED and CANCELED jobs can be deleted;
- a job created in a namespace must be deleted with that namespaceId (our assumption:
  the documentation does not say what a mismatch answers; InvalidRequestException here);
- an unknown job id is ResourceNotFoundException, not a 500;
- ListJobs honours its status and namespaceId filters. With ``list_lag_seconds`` a job that
  entered DELETION_IN_PROGRESS that recently is not listed under that status yet: list APIs
  are eventually consistent (our assumption; off by default).

Two ways in: ``emulated_iot()`` patches moto's IoT responses, so real boto3 clients talk
to it through ``mock_aws`` or a ``ThreadedMotoServer``; ``LifecycleClient`` calls the same
lifecycle in-process, with the same errors, for simulations that make millions of calls.

The handler also asks CloudFormation for its stack's status (it deletes only at stack
teardown). ``emulated_stack`` puts a stack record with a chosen status into moto's
CloudFormation, so ``DescribeStacks`` answers it through moto; ``StackStatusClient``
answers the same call in-process.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from moto.cloudformation.models import cloudformation_backends
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult, EmptyResult
from moto.iot.models import FakeJob, IoTBackend, iot_backends
from moto.iot.responses import IoTResponse

__all__ = [
    "DeletionLifecycle",
    "DeletionTime",
    "LifecycleClient",
    "StackStatusClient",
    "emulated_iot",
    "emulated_stack",
    "set_stack_status",
]

DELETING = "DELETION_IN_PROGRESS"
TERMINAL_STATUSES = frozenset({"COMPLETED", "CANCELED"})


class IotApiError(JsonRESTError):
    def __init__(self, code: str, message: str, http_status: int) -> None:
        super().__init__(code, message)
        self.code = http_status


def _not_found(job_id: str) -> IotApiError:
    return IotApiError("ResourceNotFoundException", f"Job {job_id} does not exist.", 404)


@dataclass(frozen=True)
class DeletionTime:
    """How long a deletion takes: a fixed part plus a part per job execution (target)."""

    base_seconds: float = 30.0
    per_target_seconds: float = 0.0

    def __call__(self, job: FakeJob) -> float:
        return self.base_seconds + self.per_target_seconds * len(job.targets or [])


def _count_executions(job: FakeJob, status: str) -> None:
    """moto reports one queued execution per job; report one per target, in a state that
    fits the job's (DescribeJob's jobProcessDetails is where the execution count shows)."""
    bucket = (
        "numberOfInProgressThings" if status in ("IN_PROGRESS", "SCHEDULED") else "numberOfSucceededThings"
    )
    job.job_process_details = {
        **{key: 0 for key in job.job_process_details if key.startswith("numberOf")},
        bucket: len(job.targets or []),
    }


@dataclass
class OutsideDeletion:
    job_id: str
    seconds: float
    retry_seconds: float
    next_try: float


@dataclass
class DeletionLifecycle:
    backend: IoTBackend
    clock: Callable[[], float] = time.monotonic
    deletion_time: Callable[[FakeJob], float] = field(default_factory=DeletionTime)
    slots: int = 10
    list_lag_seconds: float = 0.0
    deleting: dict[str, float] = field(default_factory=dict)  # job id -> when it is gone
    deletion_started: dict[str, float] = field(default_factory=dict)
    namespaces: dict[str, str] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)  # error codes DeleteJob answered
    deleted: list[str] = field(default_factory=list)  # in the order deletions finished
    outside_backlog: list[OutsideDeletion] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- time passes

    def settle(self) -> None:
        """Finish every deletion whose time has come; let other stacks take freed slots."""
        now = self.clock()
        for job_id, gone_at in sorted(self.deleting.items(), key=lambda item: item[1]):
            if gone_at <= now:
                del self.deleting[job_id]
                self.backend.jobs.pop(job_id, None)
                for key in [key for key in self.backend.job_executions if key[0] == job_id]:
                    del self.backend.job_executions[key]
                self.namespaces.pop(job_id, None)
                self.deleted.append(job_id)
        self._start_outside_deletions(now)

    def _start_outside_deletions(self, now: float) -> None:
        waiting = [d for d in self.outside_backlog if d.next_try <= now]
        for deletion in waiting:
            if len(self.deleting) >= self.slots:
                deletion.next_try = now + deletion.retry_seconds
                continue
            self.outside_backlog.remove(deletion)
            self._start_deletion(self.backend.jobs[deletion.job_id], deletion.seconds)

    def _start_deletion(self, job: FakeJob, seconds: float) -> None:
        job.status = DELETING
        self.deleting[job.job_id] = self.clock() + seconds
        self.deletion_started[job.job_id] = self.clock()

    # -- the operations

    def _job(self, job_id: str) -> FakeJob:
        self.settle()
        job = self.backend.jobs.get(job_id)
        if job is None:
            raise _not_found(job_id)
        return job

    def record_namespace(self, job_id: str, namespace_id: str | None) -> None:
        if namespace_id:
            self.namespaces[job_id] = namespace_id

    def describe_job(self, job_id: str) -> FakeJob:
        with self._lock:
            self.calls["DescribeJob"] += 1
            return self._job(job_id)

    def delete_job(self, job_id: str, force: bool, namespace_id: str | None) -> None:
        with self._lock:
            self.calls["DeleteJob"] += 1
            job = self._job(job_id)
            if job.status == DELETING:
                raise IotApiError(
                    "InvalidStateTransitionException", f"Job {job_id} is already {DELETING}.", 409
                )
            if self.namespaces.get(job_id) != (namespace_id or None):
                raise IotApiError(
                    "InvalidRequestException",
                    f"Job {job_id} is in namespace {self.namespaces.get(job_id)!r}, not {namespace_id!r}.",
                    400,
                )
            if not force and job.status not in TERMINAL_STATUSES:
                raise IotApiError(
                    "InvalidStateTransitionException",
                    f"Job {job_id} is {job.status}; only a job in a terminal state can be "
                    "deleted without force.",
                    409,
                )
            if len(self.deleting) >= self.slots:
                self.refusals["LimitExceededException"] += 1
                raise IotApiError(
                    "LimitExceededException",
                    f"Only {self.slots} jobs may be {DELETING} at the same time.",
                    410,
                )
            self._start_deletion(job, self.deletion_time(job))

    def cancel_job(self, job_id: str) -> FakeJob:
        with self._lock:
            self.calls["CancelJob"] += 1
            job = self._job(job_id)
            if job.status == DELETING:
                raise IotApiError("InvalidStateTransitionException", f"Job {job_id} is {DELETING}.", 409)
            return job

    def list_jobs(
        self,
        status: str | None,
        namespace_id: str | None,
        max_results: int,
        next_token: str | None,
    ) -> tuple[list[FakeJob], str | None]:
        with self._lock:
            self.calls["ListJobs"] += 1
            self.settle()
            indexed_before = self.clock() - self.list_lag_seconds
            matching = [
                job
                for job in self.backend.jobs.values()
                if (status is None or job.status == status)
                and (namespace_id is None or self.namespaces.get(job.job_id) == namespace_id)
                and not (status == DELETING and self.deletion_started.get(job.job_id, 0.0) > indexed_before)
            ]
            start = int(next_token or 0)
            end = start + max_results
            return matching[start:end], (str(end) if end < len(matching) else None)

    # -- scenario helpers

    def create_job(
        self, job_id: str, targets: list[str], status: str = "COMPLETED", namespace_id: str | None = None
    ) -> FakeJob:
        """Create a job directly in the backend, in the given status."""
        with self._lock:
            self.backend.create_job(
                job_id=job_id,
                targets=targets,
                document_source="",
                document='{"operation": "noop"}',
                description="",
                presigned_url_config={},
                target_selection="SNAPSHOT",
                job_executions_rollout_config={},
                document_parameters={},
                abort_config={},
                job_execution_retry_config={},
                scheduling_config={},
                timeout_config={},
            )
            self.record_namespace(job_id, namespace_id)
            return self.set_status(job_id, status)

    def set_status(self, job_id: str, status: str) -> FakeJob:
        """Put a job in a status, with execution counts that fit it (as devices would)."""
        with self._lock:
            job = self.backend.jobs[job_id]
            job.status = status
            _count_executions(job, status)
            return job

    def hold_slots(self, count: int, seconds: float, prefix: str = "other-stack-job") -> list[str]:
        """Start ``count`` outside deletions (other stacks') that hold slots for ``seconds``."""
        held = []
        with self._lock:
            for index in range(count):
                job_id = f"{prefix}-{len(self.backend.jobs)}-{index}"
                self._start_deletion(self.create_job(job_id, targets=[]), seconds)
                held.append(job_id)
        return held

    def queue_outside_deletions(
        self, count: int, seconds: float, retry_seconds: float, prefix: str = "other-stack-queued"
    ) -> list[str]:
        """Other stacks' cleanups: ``count`` more deletions that take a slot whenever one is
        free at their next try (every ``retry_seconds``), racing the handler for it."""
        queued = []
        with self._lock:
            for index in range(count):
                job_id = f"{prefix}-{index}"
                self.create_job(job_id, targets=[])
                self.outside_backlog.append(OutsideDeletion(job_id, seconds, retry_seconds, self.clock()))
                queued.append(job_id)
        return queued


# --------------------------------------------------------------------------- moto patch

_lifecycles: dict[tuple[str, str], DeletionLifecycle] = {}


def _lifecycle_of(response: IoTResponse) -> DeletionLifecycle | None:
    return _lifecycles.get((response.current_account, response.region))


def _patched_responses(original: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    def create_job(self: IoTResponse) -> ActionResult:
        result = original["create_job"](self)
        lifecycle = _lifecycle_of(self)
        if lifecycle:
            lifecycle.record_namespace(self._get_param("jobId"), self._get_param("namespaceId"))
        return result

    def describe_job(self: IoTResponse) -> ActionResult:
        lifecycle = _lifecycle_of(self)
        if lifecycle:
            lifecycle.describe_job(self._get_param("jobId"))
        return original["describe_job"](self)

    def delete_job(self: IoTResponse) -> ActionResult:
        lifecycle = _lifecycle_of(self)
        if lifecycle is None:
            return original["delete_job"](self)
        lifecycle.delete_job(
            self._get_param("jobId"),
            force=bool(self._get_bool_param("force", False)),
            namespace_id=self._get_param("namespaceId"),
        )
        return EmptyResult()

    def cancel_job(self: IoTResponse) -> ActionResult:
        lifecycle = _lifecycle_of(self)
        if lifecycle:
            lifecycle.cancel_job(self._get_param("jobId"))
        return original["cancel_job"](self)

    def list_jobs(self: IoTResponse) -> ActionResult:
        lifecycle = _lifecycle_of(self)
        if lifecycle is None:
            return original["list_jobs"](self)
        jobs, token = lifecycle.list_jobs(
            status=self._get_param("status"),
            namespace_id=self._get_param("namespaceId"),
            max_results=self._get_int_param("maxResults", 50),
            next_token=self._get_param("nextToken"),
        )
        return ActionResult({"jobs": [job.to_dict() for job in jobs], "nextToken": token})

    return {
        "create_job": create_job,
        "describe_job": describe_job,
        "delete_job": delete_job,
        "cancel_job": cancel_job,
        "list_jobs": list_jobs,
    }


_patch_lock = threading.Lock()
_patch_depth = 0
_originals: dict[str, Callable[..., Any]] = {}


@contextmanager
def emulated_iot(
    account_id: str = "123456789012",
    region: str = "us-east-1",
    *,
    clock: Callable[[], float] = time.monotonic,
    deletion_time: Callable[[FakeJob], float] | None = None,
    slots: int = 10,
    list_lag_seconds: float = 0.0,
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
    )
    with _patch_lock:
        if _patch_depth == 0:
            _originals.update({name: getattr(IoTResponse, name) for name in _patched_responses({})})
            for name, method in _patched_responses(dict(_originals)).items():
                setattr(IoTResponse, name, method)
        _patch_depth += 1
        _lifecycles[(account_id, region)] = lifecycle
    try:
        yield lifecycle
    finally:
        with _patch_lock:
            _lifecycles.pop((account_id, region), None)
            _patch_depth -= 1
            if _patch_depth == 0:
                for name, method in _originals.items():
                    setattr(IoTResponse, name, method)


# --------------------------------------------------------------------------- in-process client


class LifecycleClient:
    """The IoT client calls the cleanup handler makes, answered in-process by a lifecycle.

    Errors are botocore ``ClientError`` with the same codes and HTTP statuses the moto
    endpoint sends, so handler code cannot tell the two apart.
    """

    def __init__(self, lifecycle: DeletionLifecycle) -> None:
        self.lifecycle = lifecycle

    @staticmethod
    def _client_error(exc: JsonRESTError, operation: str) -> ClientError:
        return ClientError(
            {
                "Error": {"Code": exc.error_type, "Message": exc.message},
                "ResponseMetadata": {"HTTPStatusCode": exc.code},
            },
            operation,
        )

    def _run(self, operation: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except JsonRESTError as exc:
            raise self._client_error(exc, operation) from None

    def describe_job(self, jobId: str) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        job = self._run("DescribeJob", lambda: self.lifecycle.describe_job(jobId))
        return {
            "job": {
                "jobId": job.job_id,
                "status": job.status,
                "targets": list(job.targets),
                "jobProcessDetails": dict(job.job_process_details),
            }
        }

    def delete_job(self, jobId: str, force: bool = False, namespaceId: str | None = None) -> dict[str, Any]:  # noqa: N803
        self._run("DeleteJob", lambda: self.lifecycle.delete_job(jobId, force, namespaceId))
        return {}

    def list_jobs(
        self,
        status: str | None = None,
        namespaceId: str | None = None,  # noqa: N803
        maxResults: int = 50,  # noqa: N803
        nextToken: str | None = None,  # noqa: N803
    ) -> dict[str, Any]:
        jobs, token = self._run(
            "ListJobs", lambda: self.lifecycle.list_jobs(status, namespaceId, maxResults, nextToken)
        )
        page: dict[str, Any] = {"jobs": [{"jobId": job.job_id, "status": job.status} for job in jobs]}
        if token:
            page["nextToken"] = token
        return page


# --------------------------------------------------------------------------- CloudFormation stacks

# A stack record needs a template; its resources play no part here.
_EMPTY_TEMPLATE = '{"Resources": {}}'


def emulated_stack(account_id: str, region: str, name: str, status: str, stack_id: str | None = None) -> str:
    """Put a stack record in moto's CloudFormation with ``status``; return its stack id.

    DescribeStacks (by name or id) then answers it, through ``mock_aws`` or a
    ``ThreadedMotoServer`` in this process. ``stack_id`` gives it a chosen id (an event's
    ``StackId``), else moto makes one.
    """
    backend = cloudformation_backends[account_id][region]
    stack = backend.create_stack(name=name, template=_EMPTY_TEMPLATE, parameters={})
    if stack_id:
        backend.stacks[stack_id] = backend.stacks.pop(stack.stack_id)
        stack.stack_id = stack_id
    stack.status = status
    return stack.stack_id


def set_stack_status(account_id: str, region: str, stack_id: str, status: str) -> None:
    """Change an emulated stack's status, as CloudFormation does between an update's phases."""
    cloudformation_backends[account_id][region].stacks[stack_id].status = status


@dataclass
class StackStatusClient:
    """CloudFormation's DescribeStacks answered in-process from a status (for simulations)."""

    status: str = "DELETE_IN_PROGRESS"

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        return {"Stacks": [{"StackId": StackName, "StackName": StackName, "StackStatus": self.status}]}
