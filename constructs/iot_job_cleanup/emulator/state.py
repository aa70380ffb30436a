"""The account's state beyond moto's, how time moves it, and the read API.

``LifecycleState`` is the first part of ``DeletionLifecycle`` (``operations`` adds the API
calls, ``model`` the other actors). It holds what moto does not keep (namespaces, tags,
creation order, the deletion slots, the calls counted) over a moto ``IoTBackend``, and the
transitions every part uses: a call admitted (``admit``), time passing (``settle``), a
deletion started (``start_deletion``), a job cancelled (``cancel``) or gone (``remove_job``).

The read API is what callers read instead of the lock and moto's backend: ``locked()``,
``snapshot()``, ``snapshot_of()``, ``execution_statuses()``, ``exists()``, ``job_ids()``,
``thing_group_names()`` and ``thing_names()``. Reads change nothing, time included: call
``settle()`` first (inside ``locked()``) to see the deletions whose time has come finish.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from moto.iot.models import FakeJob, IoTBackend

from .jobs import (
    DELETING,
    RUNNING_STATUSES,
    DeletionTime,
    IotApiError,
    JobSnapshot,
    executions_follow_counts,
    move_executions,
    seconds_of,
)

__all__ = ["LifecycleState", "OutsideDeletion", "RateLimit"]


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
    """Another stack's deletion, waiting for a free slot: it tries every ``retry_seconds``."""

    job_id: str
    seconds: float
    retry_seconds: float
    next_try: float


@dataclass
class LifecycleState:
    """What one account and region's IoT keeps beyond moto's ``backend``, read and moved under
    one reentrant lock (its fields are public to read and to set up a scenario with)."""

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

    # -- calls

    def count(self, operation: str) -> None:
        """Count one call of ``operation`` (no rate limit: an answer that costs IoT nothing)."""
        with self._lock:
            self.calls[operation] += 1

    def admit(self, operation: str) -> None:
        """Count the call; answer ThrottlingException past the rate limit."""
        with self._lock:
            self.calls[operation] += 1
            if self._limiter and not self._limiter.admit(operation):
                self.throttled[operation] += 1
                raise IotApiError("ThrottlingException", "Rate exceeded", 429)

    # -- time passes

    def settle(self) -> None:
        """Finish every deletion whose time has come; let other stacks take freed slots."""
        with self._lock:
            now = self.clock()
            for job_id, gone_at in sorted(self.deleting.items(), key=lambda item: item[1]):
                if gone_at <= now:
                    self.remove_job(job_id)
                    self.deleted.append(job_id)
            for job_id, finish_at in list(self.executions_finish_at.items()):
                if finish_at <= now:  # the devices finished what they were doing
                    self.finish_executions(job_id)
            self._start_outside_deletions(now)

    def _start_outside_deletions(self, now: float) -> None:
        waiting = [d for d in self.outside_backlog if d.next_try <= now]
        for deletion in waiting:
            if len(self.deleting) >= self.slots:
                deletion.next_try = now + deletion.retry_seconds
                continue
            self.outside_backlog.remove(deletion)
            self.start_deletion(deletion.job_id, deletion.seconds)

    # -- transitions (no call counted, time not settled)

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

    def start_deletion(self, job_id: str, seconds: float) -> None:
        """The job is DELETION_IN_PROGRESS for ``seconds``, in a slot (the limit is DeleteJob's
        to check: another stack's deletion, started by someone else, takes a slot regardless)."""
        with self._lock:
            self.backend.jobs[job_id].status = DELETING
            self.deleting[job_id] = self.clock() + seconds
            self.deletion_started[job_id] = self.clock()

    def remove_job(self, job_id: str) -> None:
        """Someone else deleted the job and the deletion has finished: it is gone now, with
        everything kept about it."""
        with self._lock:
            self.deleting.pop(job_id, None)
            self.backend.jobs.pop(job_id, None)
            for key in [key for key in self.backend.job_executions if key[0] == job_id]:
                del self.backend.job_executions[key]
            self.namespaces.pop(job_id, None)
            self.tags.pop(job_id, None)
            self.executions_finish_at.pop(job_id, None)

    def cancel(
        self, job_id: str, force: bool = False, reason_code: str | None = None, comment: str | None = None
    ) -> FakeJob:
        """Cancel a running job: queued executions are cancelled, in-progress ones run on
        (cancelled too with force). Cancelling a job that is not running is an error."""
        with self._lock:
            job = self.backend.jobs[job_id]
            if job.status not in RUNNING_STATUSES:
                raise IotApiError(
                    "InvalidStateTransitionException",
                    f"Job {job_id} is {job.status}; it cannot be canceled.",
                    409,
                )
            job.status = "CANCELED"
            job.reason_code, job.comment, job.force = reason_code, comment, force
            job.last_updated_at = job.completed_at = _timestamp(self.clock())
            move_executions(job, "numberOfQueuedThings", "numberOfCanceledThings")
            if force:
                move_executions(job, "numberOfInProgressThings", "numberOfCanceledThings")
                self.executions_finish_at.pop(job_id, None)
            executions_follow_counts(self.backend, job)
            return job

    def finish_executions(self, job_id: str) -> None:
        """The job's devices finished what they were doing: its executions in progress succeed."""
        with self._lock:
            self.executions_finish_at.pop(job_id, None)
            job = self.backend.jobs[job_id]
            move_executions(job, "numberOfInProgressThings", "numberOfSucceededThings")
            executions_follow_counts(self.backend, job)

    # -- the read API (reads change nothing: settle first to let time pass)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lifecycle's lock: the reads and changes inside see one moment of the account
        (the lock is reentrant: the lifecycle's own methods may be called inside)."""
        with self._lock:
            yield

    def exists(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self.backend.jobs

    def job_ids(self) -> list[str]:
        """The jobs that exist, in the order moto holds them (creation order)."""
        with self._lock:
            return list(self.backend.jobs)

    def snapshot(self) -> dict[str, JobSnapshot]:
        """Every job that exists (in ``job_ids()`` order), as it is now."""
        with self._lock:
            return {job_id: self._snapshot_of(job) for job_id, job in self.backend.jobs.items()}

    def snapshot_of(self, job_id: str) -> JobSnapshot | None:
        """One job as it is now (None when it does not exist)."""
        with self._lock:
            job = self.backend.jobs.get(job_id)
            return None if job is None else self._snapshot_of(job)

    def _snapshot_of(self, job: FakeJob) -> JobSnapshot:
        return JobSnapshot(
            job_id=job.job_id,
            job_arn=job.job_arn,
            status=job.status,
            targets=tuple(job.targets or ()),
            tags=dict(self.tags.get(job.job_id, {})),
            namespace_id=self.namespaces.get(job.job_id),
            created_at=seconds_of(job.created_at),
            process_details=dict(job.job_process_details or {}),
            comment=job.comment,
            reason_code=job.reason_code,
            sequence=self.sequence.get(job.job_id, 0),
        )

    def execution_statuses(self, job_id: str) -> dict[str, str]:
        """The job's executions: thing name -> execution status (none for a job that is gone)."""
        with self._lock:
            return {
                thing: execution.status
                for (execution_job, thing), execution in self.backend.job_executions.items()
                if execution_job == job_id
            }

    def thing_group_names(self) -> set[str]:
        """The thing groups moto holds (a job may target one it does not)."""
        with self._lock:
            return {group.thing_group_name for group in self.backend.thing_groups.values()}

    def thing_names(self) -> set[str]:
        with self._lock:
            return {thing.thing_name for thing in self.backend.things.values()}
