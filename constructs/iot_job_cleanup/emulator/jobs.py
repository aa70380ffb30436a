"""What the model says of one job: IoT's statuses and errors, deletion times, execution counts.

Nothing here holds state: the lifecycle (``state``, ``operations``, ``model``) keeps the
account, these are the terms it keeps it in.

- ``IotApiError``: an error IoT answers, with its code and HTTP status (moto renders it on
  the wire; the in-process clients turn it into a botocore ``ClientError``).
- ``DeletionTime``: how long a DeleteJob keeps a job DELETION_IN_PROGRESS.
- ``JobSnapshot``: a job as the read API tells it, detached from moto's objects.
- the execution counts: moto keeps one execution per target and DescribeJob's
  ``jobProcessDetails`` counts them; ``count_executions``, ``move_executions`` and
  ``executions_follow_counts`` keep the two in agreement as a job's devices work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.iot.models import FakeJob, IoTBackend

__all__ = [
    "DELETING",
    "MAX_PAGE",
    "PUBLISHED_RATE_LIMIT",
    "RUNNING_STATUSES",
    "TERMINAL_STATUSES",
    "DeletionTime",
    "IotApiError",
    "JobSnapshot",
    "count_executions",
    "executions_follow_counts",
    "move_executions",
    "seconds_of",
    "thing_name_of",
]

DELETING = "DELETION_IN_PROGRESS"
TERMINAL_STATUSES = frozenset({"COMPLETED", "CANCELED"})
RUNNING_STATUSES = frozenset({"IN_PROGRESS", "SCHEDULED"})
MAX_PAGE = 250
PUBLISHED_RATE_LIMIT = 10.0  # requests per second per operation and account (IoT's 2020 table)


class IotApiError(JsonRESTError):
    """An error IoT answers: ``error_type`` is its code, ``code`` its HTTP status."""

    def __init__(self, code: str, message: str, http_status: int) -> None:
        super().__init__(code, message)
        self.code = http_status


@dataclass(frozen=True)
class DeletionTime:
    """How long a deletion takes: a fixed part plus a part per job execution (target)."""

    base_seconds: float = 30.0
    per_target_seconds: float = 0.0

    def __call__(self, job: FakeJob) -> float:
        return self.base_seconds + self.per_target_seconds * len(job.targets or [])


@dataclass(frozen=True)
class JobSnapshot:
    """One job as it is at the moment of reading (a copy: it does not change with the job).

    ``created_at`` is in the lifecycle clock's seconds for a job the lifecycle saw created;
    ``process_details`` is DescribeJob's ``jobProcessDetails`` (the execution counts);
    ``sequence`` is the creation order (a job created again under its id has a later one).
    """

    job_id: str
    job_arn: str
    status: str
    targets: tuple[str, ...]
    tags: dict[str, str]
    namespace_id: str | None
    created_at: float
    process_details: dict[str, Any]
    comment: str | None = None
    reason_code: str | None = None
    sequence: int = 0

    @property
    def in_progress_things(self) -> int:
        """Executions still in progress: devices at work (a drain waits for them)."""
        return int(self.process_details.get("numberOfInProgressThings") or 0)


def seconds_of(moment: datetime | float | None) -> float:
    """A job timestamp in seconds: moto's own are naive UTC datetimes, the lifecycle's aware."""
    if moment is None:
        return 0.0
    if isinstance(moment, datetime):
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return float(moment)


def thing_name_of(target: str) -> str:
    """The name moto keys a target's job execution by (a thing's or a group's ARN)."""
    return target.split(":")[-1].split("/")[-1]


def count_executions(job: FakeJob, status: str) -> None:
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


def move_executions(job: FakeJob, source: str, target: str) -> None:
    """Every execution counted under ``source`` is counted under ``target`` now."""
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


def executions_follow_counts(backend: IoTBackend, job: FakeJob) -> None:
    """moto's job executions (one per target) take the statuses the counts tell, in order,
    so ListJobExecutionsForJob agrees with DescribeJob's jobProcessDetails."""
    statuses = [
        status
        for key, status in _EXECUTION_STATUS_OF_COUNT.items()
        for _ in range(job.job_process_details.get(key, 0))
    ]
    names = [thing_name_of(target) for target in job.targets or []]
    executions = [backend.job_executions.get((job.job_id, name)) for name in names]
    for execution, status in zip([e for e in executions if e is not None], statuses, strict=False):
        execution.status = status
