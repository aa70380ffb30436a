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
- ListJobs honours its status, namespaceId and thingGroupName filters, with IoT's known
  quirk: filtered by thingGroupName it leaves SCHEDULED jobs out (aws-cli#8924). Pages hold
  at most 250 jobs; a page token names the last job returned, so a job deleted meanwhile
  shifts no page. With ``list_lag_seconds`` a job that entered DELETION_IN_PROGRESS that
  recently is not listed under that status yet: list APIs are eventually consistent (our
  assumption; off by default).
- Tags given to CreateJob (or to ``create_job``) are answered by ListTagsForResource, in
  pages of ``tags_page_size`` tags with a ``nextToken`` (all in one page by default: whether
  IoT pages a job's at most 50 tags is undocumented, so a client must follow the token).
- ListJobs filtered by a thing group that does not exist answers ResourceNotFoundException
  (404). moto need not hold the thing groups a job targets, so a group counts as missing
  only once deleted (``delete_thing_group``, or DeleteThingGroup over the wire), or, with
  ``strict_thing_groups``, whenever moto does not hold it.
- DescribeJob of a cancelled job answers the CancelJob's ``comment``, ``reasonCode`` and
  ``forceCanceled``, as IoT does.
- CancelJob without force cancels the queued executions; executions in progress go on
  until they finish (``executions_finish_in``), with force they are cancelled too. A
  cancelled job is CANCELED, so terminal: deletable without force.
- With ``rate_limit`` each IoT operation admits that many requests per second for the
  account (a token bucket one second deep); more answer ThrottlingException (429). IoT's
  last published figure is 10 per second per operation.

Two ways in: ``emulated_iot()`` patches moto's IoT responses, so real boto3 clients talk
to it through ``mock_aws`` or a ``ThreadedMotoServer``; ``LifecycleClient`` calls the same
lifecycle in-process, with the same errors, for simulations that make millions of calls.

The handler also asks CloudFormation for its stack's status (it deletes only at stack
teardown). ``emulated_stack`` puts a stack record with a chosen status into moto's
CloudFormation, so ``DescribeStacks`` answers it through moto; ``StackStatusClient``
answers the same call in-process. A nested stack has a ``RootId`` and a ``ParentId`` (its
root stack's and its parent's ids): ``emulated_stack(..., root_id=..., parent_id=...)``, or
``StackStatusClient(stacks={stack_id: (status, root_id)})``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

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
    "StackRecord",
    "StackStatusClient",
    "TaggingClient",
    "emulated_iot",
    "emulated_stack",
    "set_stack_status",
]

DELETING = "DELETION_IN_PROGRESS"
TERMINAL_STATUSES = frozenset({"COMPLETED", "CANCELED"})
RUNNING_STATUSES = frozenset({"IN_PROGRESS", "SCHEDULED"})
MAX_PAGE = 250
PUBLISHED_RATE_LIMIT = 10.0  # requests per second per operation and account (IoT's 2020 table)


class IotApiError(JsonRESTError):
    def __init__(self, code: str, message: str, http_status: int) -> None:
        super().__init__(code, message)
        self.code = http_status


def _not_found(job_id: str) -> IotApiError:
    return IotApiError("ResourceNotFoundException", f"Job {job_id} does not exist.", 404)


def _group_not_found(group_name: str) -> IotApiError:
    return IotApiError("ResourceNotFoundException", f"Thing group {group_name} does not exist.", 404)


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
    bucket = {
        "IN_PROGRESS": "numberOfInProgressThings",
        "SCHEDULED": "numberOfQueuedThings",  # not started: no device is at work yet
    }.get(status, "numberOfSucceededThings")
    job.job_process_details = {
        **{key: 0 for key in job.job_process_details if key.startswith("numberOf")},
        bucket: len(job.targets or []),
    }


def _move_executions(job: FakeJob, source: str, target: str) -> None:
    details = job.job_process_details
    details[target] = details.get(target, 0) + details.get(source, 0)
    details[source] = 0


_EXECUTION_STATUS_OF_COUNT = {
    "numberOfInProgressThings": "IN_PROGRESS",
    "numberOfSucceededThings": "SUCCEEDED",
    "numberOfCanceledThings": "CANCELED",
    "numberOfFailedThings": "FAILED",
    "numberOfQueuedThings": "QUEUED",
}


def _executions_follow_counts(backend: IoTBackend, job: FakeJob) -> None:
    """moto's job executions (one per target) take the statuses the counts tell, in order,
    so ListJobExecutionsForJob agrees with DescribeJob's jobProcessDetails."""
    statuses = [
        status
        for key, status in _EXECUTION_STATUS_OF_COUNT.items()
        for _ in range(job.job_process_details.get(key, 0))
    ]
    names = [target.split(":")[-1].split("/")[-1] for target in job.targets or []]  # as moto keys them
    executions = [backend.job_executions.get((job.job_id, name)) for name in names]
    for execution, status in zip([e for e in executions if e is not None], statuses, strict=False):
        execution.status = status


def _targets_group(job: FakeJob, group_name: str) -> bool:
    return any(target.endswith(f":thinggroup/{group_name}") for target in job.targets or [])


def _timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass
class RateLimit:
    """A token bucket per operation: ``per_second`` requests, at most one second's worth saved."""

    per_second: float
    clock: Callable[[], float]
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, when

    def admit(self, operation: str) -> bool:
        now = self.clock()
        tokens, then = self._buckets.get(operation, (self.per_second, now))
        tokens = min(self.per_second, tokens + (now - then) * self.per_second)
        if tokens < 1 - 1e-6:  # clock arithmetic in floating point
            self._buckets[operation] = (tokens, now)
            return False
        self._buckets[operation] = (tokens - 1, now)
        return True


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
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    sequence: dict[str, int] = field(default_factory=dict)  # creation order, for page tokens
    executions_finish_at: dict[str, float] = field(default_factory=dict)  # in-progress executions
    rate_limit: float | None = None
    throttled: Counter[str] = field(default_factory=Counter)
    tags_page_size: int | None = None  # ListTagsForResource: tags per page (None: all in one)
    deleted_groups: set[str] = field(default_factory=set)  # thing groups known not to exist
    strict_thing_groups: bool = False  # True: a group moto does not hold does not exist
    _next_sequence: int = field(default=0, repr=False)
    _limiter: RateLimit | None = field(default=None, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        if self.rate_limit:
            self._limiter = RateLimit(self.rate_limit, self.clock)

    def _admit(self, operation: str) -> None:
        """Count the call; answer ThrottlingException past the rate limit."""
        self.calls[operation] += 1
        if self._limiter and not self._limiter.admit(operation):
            self.throttled[operation] += 1
            raise IotApiError("ThrottlingException", "Rate exceeded", 429)

    # -- time passes

    def settle(self) -> None:
        """Finish every deletion whose time has come; let other stacks take freed slots."""
        now = self.clock()
        for job_id, gone_at in sorted(self.deleting.items(), key=lambda item: item[1]):
            if gone_at <= now:
                self._remove(job_id)
                self.deleted.append(job_id)
        for job_id, finish_at in list(self.executions_finish_at.items()):
            if finish_at <= now:  # the devices finished what they were doing
                del self.executions_finish_at[job_id]
                job = self.backend.jobs[job_id]
                _move_executions(job, "numberOfInProgressThings", "numberOfSucceededThings")
                _executions_follow_counts(self.backend, job)
        self._start_outside_deletions(now)

    def _start_outside_deletions(self, now: float) -> None:
        waiting = [d for d in self.outside_backlog if d.next_try <= now]
        for deletion in waiting:
            if len(self.deleting) >= self.slots:
                deletion.next_try = now + deletion.retry_seconds
                continue
            self.outside_backlog.remove(deletion)
            self._start_deletion(self.backend.jobs[deletion.job_id], deletion.seconds)

    def _remove(self, job_id: str) -> None:
        """The job is gone, with everything kept about it."""
        self.deleting.pop(job_id, None)
        self.backend.jobs.pop(job_id, None)
        for key in [key for key in self.backend.job_executions if key[0] == job_id]:
            del self.backend.job_executions[key]
        self.namespaces.pop(job_id, None)
        self.tags.pop(job_id, None)
        self.executions_finish_at.pop(job_id, None)

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

    def record_creation(
        self, job_id: str, namespace_id: str | None = None, tags: Mapping[str, str] | None = None
    ) -> None:
        """What moto's CreateJob does not keep: namespace, tags, creation order and time."""
        with self._lock:
            if namespace_id:
                self.namespaces[job_id] = namespace_id
            self.tags[job_id] = dict(tags or {})
            self.sequence[job_id] = self._next_sequence = self._next_sequence + 1
            job = self.backend.jobs[job_id]
            job.created_at = job.last_updated_at = _timestamp(self.clock())

    def record_namespace(self, job_id: str, namespace_id: str | None) -> None:
        self.record_creation(job_id, namespace_id)

    def describe_job(self, job_id: str) -> FakeJob:
        with self._lock:
            self._admit("DescribeJob")
            return self._job(job_id)

    def namespace_of(self, job_id: str) -> str | None:
        return self.namespaces.get(job_id)

    def list_tags(self, job_arn: str) -> dict[str, str]:
        """Every tag of the job, in one call (see ``list_tags_page`` for IoT's pages)."""
        with self._lock:
            self._admit("ListTagsForResource")
            job = self._job(job_arn.rsplit("/", 1)[-1])
            if job.job_arn != job_arn:
                raise _not_found(job_arn)
            return dict(self.tags.get(job.job_id, {}))

    def list_tags_page(
        self, job_arn: str, next_token: str | None = None
    ) -> tuple[dict[str, str], str | None]:
        """One ListTagsForResource page: ``tags_page_size`` tags from ``next_token`` on, and
        the token of the next page (None after the last)."""
        with self._lock:
            self._admit("ListTagsForResource")
            job = self._job(job_arn.rsplit("/", 1)[-1])
            if job.job_arn != job_arn:
                raise _not_found(job_arn)
            items = list(self.tags.get(job.job_id, {}).items())
            try:
                start = int(next_token or 0)
            except ValueError:
                raise IotApiError("InvalidRequestException", f"Bad nextToken {next_token!r}.", 400) from None
            if not 0 <= start <= len(items):
                raise IotApiError("InvalidRequestException", f"Bad nextToken {next_token!r}.", 400)
            size = self.tags_page_size or max(1, len(items))
            end = start + size
            return dict(items[start:end]), (str(end) if end < len(items) else None)

    def thing_group_exists(self, group_name: str) -> bool:
        if group_name in self.deleted_groups:
            return False
        if not self.strict_thing_groups:
            return True
        return any(group.thing_group_name == group_name for group in self.backend.thing_groups.values())

    def tagged_job_arns(self, tags: Mapping[str, str]) -> list[str]:
        """The Resource Groups Tagging API's answer, were it to serve IoT jobs (unconfirmed)."""
        with self._lock:
            self._admit("GetResources")
            self.settle()
            return [
                job.job_arn
                for job_id, job in self.backend.jobs.items()
                if all(self.tags.get(job_id, {}).get(key) == value for key, value in tags.items())
            ]

    def delete_job(self, job_id: str, force: bool, namespace_id: str | None) -> None:
        with self._lock:
            self._admit("DeleteJob")
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

    def cancel_job(
        self, job_id: str, force: bool = False, reason_code: str | None = None, comment: str | None = None
    ) -> FakeJob:
        """Cancel a running job: queued executions are cancelled, in-progress ones run on
        (cancelled too with force). Cancelling a job that is not running is an error."""
        with self._lock:
            self._admit("CancelJob")
            return self._cancel(self._job(job_id), force, reason_code, comment)

    def _cancel(self, job: FakeJob, force: bool, reason_code: str | None, comment: str | None) -> FakeJob:
        with self._lock:
            job_id = job.job_id
            if job.status not in RUNNING_STATUSES:
                raise IotApiError(
                    "InvalidStateTransitionException",
                    f"Job {job_id} is {job.status}; it cannot be canceled.",
                    409,
                )
            job.status = "CANCELED"
            job.reason_code, job.comment, job.force = reason_code, comment, force
            job.last_updated_at = job.completed_at = _timestamp(self.clock())
            _move_executions(job, "numberOfQueuedThings", "numberOfCanceledThings")
            if force:
                _move_executions(job, "numberOfInProgressThings", "numberOfCanceledThings")
                self.executions_finish_at.pop(job_id, None)
            _executions_follow_counts(self.backend, job)
            return job

    def _sequence_of(self, job_id: str) -> int:
        return self.sequence.get(job_id, 0)

    def list_jobs(
        self,
        status: str | None,
        namespace_id: str | None,
        max_results: int,
        next_token: str | None,
        thing_group_name: str | None = None,
    ) -> tuple[list[FakeJob], str | None]:
        with self._lock:
            self._admit("ListJobs")
            self.settle()
            if thing_group_name is not None and not self.thing_group_exists(thing_group_name):
                raise _group_not_found(thing_group_name)
            indexed_before = self.clock() - self.list_lag_seconds
            after = int(next_token or 0)
            # Jobs being deleted are few: listing them need not walk the whole account.
            jobs = (
                [
                    job
                    for job_id in sorted(self.deleting, key=self._sequence_of)
                    if (job := self.backend.jobs.get(job_id)) is not None
                ]
                if status == DELETING
                else self.backend.jobs.values()
            )
            matching = [
                job
                for job in jobs
                if self.sequence.get(job.job_id, 0) > after
                and (status is None or job.status == status)
                and (namespace_id is None or self.namespaces.get(job.job_id) == namespace_id)
                and not (status == DELETING and self.deletion_started.get(job.job_id, 0.0) > indexed_before)
                and (
                    thing_group_name is None
                    or (_targets_group(job, thing_group_name) and job.status != "SCHEDULED")  # aws-cli#8924
                )
            ]
            page = matching[: min(max_results, MAX_PAGE)]
            more = len(matching) > len(page)
            return page, (str(self.sequence.get(page[-1].job_id, 0)) if more else None)

    # -- scenario helpers

    def create_job(
        self,
        job_id: str,
        targets: list[str],
        status: str = "COMPLETED",
        namespace_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        executions_finish_in: float = math.inf,
    ) -> FakeJob:
        """Create a job directly in the backend, in the given status (see ``set_status``)."""
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
            self.record_creation(job_id, namespace_id, tags)
            return self.set_status(job_id, status, executions_finish_in)

    def set_status(self, job_id: str, status: str, executions_finish_in: float = math.inf) -> FakeJob:
        """Put a job in a status, with execution counts that fit it (as devices would).

        A running job's executions are in progress; they finish ``executions_finish_in``
        seconds from now (never, by default: a continuous job).
        """
        with self._lock:
            job = self.backend.jobs[job_id]
            job.status = status
            _count_executions(job, status)
            _executions_follow_counts(self.backend, job)
            if status in RUNNING_STATUSES and executions_finish_in < math.inf:
                self.executions_finish_at[job_id] = self.clock() + executions_finish_in
            else:
                self.executions_finish_at.pop(job_id, None)
            return job

    def remove_job(self, job_id: str) -> None:
        """Someone else deleted the job and the deletion has finished: it is gone now."""
        with self._lock:
            self._remove(job_id)

    def finish_job(self, job_id: str, status: str = "COMPLETED") -> FakeJob:
        """The job's devices have all finished (a snapshot job completes by itself)."""
        with self._lock:
            self.settle()
            return self.set_status(job_id, status)

    def cancel_outside(
        self, job_id: str, force: bool = False, reason_code: str | None = None, comment: str | None = None
    ) -> FakeJob:
        """Someone else cancels the job (no call of the client is counted or rate limited)."""
        with self._lock:
            self.settle()
            return self._cancel(self.backend.jobs[job_id], force, reason_code, comment)

    def delete_thing_group(self, group_name: str) -> None:
        """The thing group is deleted (jobs targeting it keep the target, as in IoT)."""
        with self._lock:
            self.deleted_groups.add(group_name)
            for arn, group in list(self.backend.thing_groups.items()):
                if group.thing_group_name == group_name:
                    del self.backend.thing_groups[arn]

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
        lifecycle = _lifecycle_of(self)
        if lifecycle:
            lifecycle._admit("CreateJob")
        result = original["create_job"](self)
        if lifecycle:
            tags = {tag["Key"]: tag.get("Value", "") for tag in self._get_param("tags") or []}
            lifecycle.record_creation(self._get_param("jobId"), self._get_param("namespaceId"), tags)
        return result

    def describe_job(self: IoTResponse) -> ActionResult:
        lifecycle = _lifecycle_of(self)
        if lifecycle is None:
            return original["describe_job"](self)
        job_id = self._get_param("jobId")
        lifecycle.describe_job(job_id)
        result = original["describe_job"](self)
        result.result["job"]["namespaceId"] = lifecycle.namespace_of(job_id)
        return result

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
        if lifecycle is None:
            return original["cancel_job"](self)
        job = lifecycle.cancel_job(
            self._get_param("jobId"),
            force=bool(self._get_bool_param("force", False)),
            reason_code=self._get_param("reasonCode"),
            comment=self._get_param("comment"),
        )
        return ActionResult({"jobArn": job.job_arn, "jobId": job.job_id, "description": job.description})

    def list_jobs(self: IoTResponse) -> ActionResult:
        lifecycle = _lifecycle_of(self)
        if lifecycle is None:
            return original["list_jobs"](self)
        jobs, token = lifecycle.list_jobs(
            status=self._get_param("status"),
            namespace_id=self._get_param("namespaceId"),
            max_results=self._get_int_param("maxResults", 50),
            next_token=self._get_param("nextToken"),
            thing_group_name=self._get_param("thingGroupName"),
        )
        return ActionResult({"jobs": [job.to_dict() for job in jobs], "nextToken": token})

    def list_tags_for_resource(self: IoTResponse) -> ActionResult:
        lifecycle = _lifecycle_of(self)
        if lifecycle is None:
            raise IotApiError("InvalidRequestException", "Tags are emulated for jobs only.", 400)
        tags, token = lifecycle.list_tags_page(self._get_param("resourceArn"), self._get_param("nextToken"))
        return ActionResult(
            {"tags": [{"Key": key, "Value": value} for key, value in tags.items()], "nextToken": token}
        )

    def create_thing_group(self: IoTResponse) -> ActionResult:
        result = original["create_thing_group"](self)
        lifecycle = _lifecycle_of(self)
        if lifecycle:
            lifecycle.deleted_groups.discard(unquote(self.path.split("/thing-groups/")[-1]))
        return result

    def delete_thing_group(self: IoTResponse) -> ActionResult:
        result = original["delete_thing_group"](self)
        lifecycle = _lifecycle_of(self)
        if lifecycle:
            lifecycle.deleted_groups.add(unquote(self.path.split("/thing-groups/")[-1]))
        return result

    return {
        "create_job": create_job,
        "describe_job": describe_job,
        "delete_job": delete_job,
        "cancel_job": cancel_job,
        "list_jobs": list_jobs,
        "list_tags_for_resource": list_tags_for_resource,
        "create_thing_group": create_thing_group,
        "delete_thing_group": delete_thing_group,
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
            _originals.update({name: getattr(IoTResponse, name, None) for name in _patched_responses({})})
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
                    if method is None:
                        delattr(IoTResponse, name)
                    else:
                        setattr(IoTResponse, name, method)


# --------------------------------------------------------------------------- in-process client


def _answered(operation: str, call: Callable[[], Any]) -> Any:
    """Run a lifecycle call; its error becomes a botocore ``ClientError``, as over the wire."""
    try:
        return call()
    except JsonRESTError as exc:
        raise ClientError(
            {
                "Error": {"Code": exc.error_type, "Message": exc.message},
                "ResponseMetadata": {"HTTPStatusCode": exc.code},
            },
            operation,
        ) from None


class LifecycleClient:
    """The IoT client calls the cleanup handler makes, answered in-process by a lifecycle.

    Errors are botocore ``ClientError`` with the same codes and HTTP statuses the moto
    endpoint sends, so handler code cannot tell the two apart.
    """

    def __init__(self, lifecycle: DeletionLifecycle) -> None:
        self.lifecycle = lifecycle

    def _run(self, operation: str, call: Callable[[], Any]) -> Any:
        return _answered(operation, call)

    def describe_job(self, jobId: str) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        job = self._run("DescribeJob", lambda: self.lifecycle.describe_job(jobId))
        return {
            "job": {
                "jobArn": job.job_arn,
                "jobId": job.job_id,
                "status": job.status,
                "targets": list(job.targets),
                "createdAt": job.created_at,
                "lastUpdatedAt": job.last_updated_at,
                "completedAt": job.completed_at,
                "jobProcessDetails": dict(job.job_process_details),
                **({"namespaceId": ns} if (ns := self.lifecycle.namespace_of(jobId)) else {}),
                **({"comment": job.comment} if job.comment is not None else {}),
                **({"reasonCode": job.reason_code} if job.reason_code is not None else {}),
                **({"forceCanceled": bool(job.force)} if job.status == "CANCELED" else {}),
            }
        }

    def delete_job(self, jobId: str, force: bool = False, namespaceId: str | None = None) -> dict[str, Any]:  # noqa: N803
        self._run("DeleteJob", lambda: self.lifecycle.delete_job(jobId, force, namespaceId))
        return {}

    def cancel_job(
        self,
        jobId: str,  # noqa: N803
        force: bool = False,
        reasonCode: str | None = None,  # noqa: N803
        comment: str | None = None,
    ) -> dict[str, Any]:
        job = self._run("CancelJob", lambda: self.lifecycle.cancel_job(jobId, force, reasonCode, comment))
        return {"jobArn": job.job_arn, "jobId": job.job_id}

    def list_jobs(
        self,
        status: str | None = None,
        namespaceId: str | None = None,  # noqa: N803
        maxResults: int = 50,  # noqa: N803
        nextToken: str | None = None,  # noqa: N803
        thingGroupName: str | None = None,  # noqa: N803
    ) -> dict[str, Any]:
        jobs, token = self._run(
            "ListJobs",
            lambda: self.lifecycle.list_jobs(status, namespaceId, maxResults, nextToken, thingGroupName),
        )
        page: dict[str, Any] = {
            "jobs": [
                {
                    "jobArn": job.job_arn,
                    "jobId": job.job_id,
                    "status": job.status,
                    "createdAt": job.created_at,
                }
                for job in jobs
            ]
        }
        if token:
            page["nextToken"] = token
        return page

    def list_job_executions_for_job(
        self,
        jobId: str,  # noqa: N803
        status: str | None = None,
        maxResults: int = 50,  # noqa: N803
    ) -> dict[str, Any]:
        def executions() -> list[Any]:
            with self.lifecycle._lock:
                self.lifecycle._admit("ListJobExecutionsForJob")
                self.lifecycle._job(jobId)
                return [
                    e
                    for (job_id, _), e in self.lifecycle.backend.job_executions.items()
                    if job_id == jobId and (status is None or e.status == status)
                ][:maxResults]

        found = self._run("ListJobExecutionsForJob", executions)
        return {
            "executionSummaries": [
                {"thingArn": e.thing_arn, "jobExecutionSummary": {"status": e.status}} for e in found
            ]
        }

    def list_tags_for_resource(self, resourceArn: str, nextToken: str | None = None) -> dict[str, Any]:  # noqa: N803
        tags, token = self._run(
            "ListTagsForResource", lambda: self.lifecycle.list_tags_page(resourceArn, nextToken)
        )
        page: dict[str, Any] = {"tags": [{"Key": key, "Value": value} for key, value in tags.items()]}
        if token:
            page["nextToken"] = token
        return page


class TaggingClient:
    """The Resource Groups Tagging API's GetResources, in-process.

    Whether that API returns IoT jobs is unconfirmed: ``serves_iot_jobs=False`` answers
    nothing for them, as moto's does; True answers from the lifecycle's tags.
    """

    def __init__(self, lifecycle: DeletionLifecycle, serves_iot_jobs: bool) -> None:
        self.lifecycle = lifecycle
        self.serves_iot_jobs = serves_iot_jobs

    def get_resources(
        self,
        TagFilters: list[dict[str, Any]],  # noqa: N803
        ResourceTypeFilters: list[str],  # noqa: N803
        ResourcesPerPage: int = 100,  # noqa: N803
        PaginationToken: str = "",  # noqa: N803
    ) -> dict[str, Any]:
        if not self.serves_iot_jobs:
            with self.lifecycle._lock:
                self.lifecycle.calls["GetResources"] += 1
            return {"ResourceTagMappingList": [], "PaginationToken": ""}
        tags = {f["Key"]: f["Values"][0] for f in TagFilters}
        arns = _answered("GetResources", lambda: self.lifecycle.tagged_job_arns(tags))
        start = int(PaginationToken or 0)
        page = arns[start : start + ResourcesPerPage]
        token = str(start + ResourcesPerPage) if start + ResourcesPerPage < len(arns) else ""
        return {
            "ResourceTagMappingList": [
                {"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
                for arn in page
            ],
            "PaginationToken": token,
        }


# --------------------------------------------------------------------------- CloudFormation stacks

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
            raise ClientError(
                {
                    "Error": {
                        "Code": "ValidationError",
                        "Message": f"Stack with id {StackName} does not exist",
                    },
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "DescribeStacks",
            )
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
