"""Custom resource handler that deletes AWS IoT jobs when their stack is torn down.

Entry points for the CDK Provider framework: ``on_event`` and ``is_complete``.
Imports only the standard library, boto3 and botocore (the Lambda runtime provides them).

Contract (resource properties, every value a string as CloudFormation hands them over):
  JobIds               list of job ids to delete on Delete (empty strings are ignored)
  Force                "true" or "false": "true" also deletes jobs that are not in a terminal state
  NamespaceId          optional customer-managed job namespace
  QueryIntervalSeconds optional: how often to check IoT while deletions are under way (default 2)
  TotalTimeoutSeconds  optional: how long a Delete may take, at most 3600 (default 3600)

Create and Update change nothing in IoT. A Delete deletes jobs only when the stack itself is
torn down: the handler asks CloudFormation for the status of the stack in the event and
goes on only in DELETE_IN_PROGRESS (the stack is being deleted) or ROLLBACK_IN_PROGRESS (a
failed stack creation is rolled back). Any other Delete (a renamed, moved or removed
resource, an update rolling back) deletes nothing and succeeds.

On teardown, ``on_event`` starts deletions and ``is_complete`` reports complete only when
every job is gone. No state is kept between invocations except what ``on_event`` hands to
``is_complete`` in the event (the Provider framework merges ``on_event``'s result into it):
the start and give-up times, whether the stack is torn down, and the order to delete in,
which ``on_event`` derives from IoT. Everything else is recomputed from IoT at the start of
each invocation.
"""

from __future__ import annotations

import logging
import math
import os
import random as _random
import re
import reprlib
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

__all__ = [
    "CleanupError",
    "CleanupTimeoutError",
    "ForceRequiredError",
    "InvalidPropertiesError",
    "is_complete",
    "on_event",
]

logger = logging.getLogger("iot_job_cleanup")
logger.setLevel(logging.INFO)

DELETION_SLOTS = 10  # IoT allows 10 jobs in DELETION_IN_PROGRESS per account and region.
DELETING = "DELETION_IN_PROGRESS"
TERMINAL_STATUSES = frozenset({"COMPLETED", "CANCELED"})
DEADLINE_KEY = "IotJobCleanupGiveUpAt"
STARTED_KEY = "IotJobCleanupStartedAt"
ORDER_KEY = "IotJobCleanupOrder"
TEARDOWN_KEY = "IotJobCleanupTeardown"  # "true" or "false" once the stack status is known
# The stack statuses in which a Delete is a teardown: the stack is being deleted, or a failed
# creation is rolled back. A Delete in any other status comes from an update (a renamed,
# moved or removed resource, an update rolling back): the stack lives on, so do its jobs.
TEARDOWN_STATUSES = frozenset({"DELETE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"})
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
MAX_TOTAL_TIMEOUT = 3600.0  # CloudFormation's limit for a custom resource
JOB_ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]{1,64}")
NAMESPACE_ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]+")
GONE_CODES = frozenset({"ResourceNotFoundException"})
LIMIT_CODES = frozenset({"LimitExceededException"})
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "InternalFailureException",
        "InternalServerException",
        "InternalFailure",
        "RequestTimeoutException",
    }
)
STATUSES_IN_TIMEOUT_MESSAGE = 20
# CloudFormation takes at most 4096 bytes of response body, and the Provider framework's
# Reason is our message plus a "Logs:" line and a JavaScript stack: keep ours well inside.
MAX_MESSAGE_BYTES = 1500
STACK_STATUS_ATTEMPTS = 4  # in on_event; is_complete asks again if they all fail
FAST_POLL_INTERVAL = 0.5  # while one of our deletions is expected to finish
# A Lambda timeout is a failed resource (the Provider reports it as FAILED): every loop
# stops this many seconds before the invocation's own timeout.
LAMBDA_MARGIN = 10.0


class CleanupError(Exception):
    """The cleanup cannot go on; the message says why and what to do."""


class InvalidPropertiesError(CleanupError, ValueError):
    """The resource properties break the contract."""


class ForceRequiredError(CleanupError):
    """A job is not in a terminal state and the resource does not allow force."""


class CleanupTimeoutError(CleanupError):
    """The total timeout passed with jobs still not deleted."""


class _TransientIotError(Exception):
    """Throttling, service unavailable, 5xx or a connection problem: try again later."""


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 80
_SHORT_REPR.maxlist = 5


def _shown(value: Any) -> str:
    """A value for a message: its repr, shortened so a message stays small."""
    return _SHORT_REPR.repr(value)


# --------------------------------------------------------------------------- contract


@dataclass(frozen=True)
class CleanupRequest:
    job_ids: tuple[str, ...]
    force: bool
    namespace_id: str | None
    query_interval: float | None = None  # None: the handler's default
    total_timeout: float | None = None

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> CleanupRequest:
        return cls(
            job_ids=_parse_job_ids(properties.get("JobIds")),
            force=_parse_force(properties.get("Force", "false")),
            namespace_id=_parse_namespace_id(properties.get("NamespaceId")),
            query_interval=_parse_seconds(properties, "QueryIntervalSeconds", 1, 300),
            total_timeout=_parse_seconds(properties, "TotalTimeoutSeconds", 60, MAX_TOTAL_TIMEOUT),
        )


def _parse_job_ids(value: Any) -> tuple[str, ...]:
    """The job ids; empty strings (what an empty CommaDelimitedList gives) are ignored."""
    if not isinstance(value, list):
        raise InvalidPropertiesError(
            f"JobIds is {_shown(value)}: it must be a list of job ids. "
            'Set JobIds to the jobs to delete, e.g. ["ota-2026-11"].'
        )
    seen: set[str] = set()
    for job_id in value:
        if job_id == "":
            continue
        if not isinstance(job_id, str) or not JOB_ID_PATTERN.fullmatch(job_id):
            raise InvalidPropertiesError(
                f"JobIds contains {_shown(job_id)}: a job id is 1 to 64 characters of "
                "[a-zA-Z0-9_-]. Fix or remove that id."
            )
        if job_id in seen:
            raise InvalidPropertiesError(
                f"JobIds names {job_id!r} twice: each job may be listed once. Remove the duplicate."
            )
        seen.add(job_id)
    return tuple(job_id for job_id in value if job_id != "")


def _parse_force(value: Any) -> bool:
    text = str(value).lower()
    if text not in ("true", "false"):
        raise InvalidPropertiesError(
            f'Force is {value!r}: it must be "true" or "false". Set Force to one of them.'
        )
    return text == "true"


def _parse_namespace_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not NAMESPACE_ID_PATTERN.fullmatch(value):
        raise InvalidPropertiesError(
            f"NamespaceId is {_shown(value)}: it must match [a-zA-Z0-9_-]+. "
            "Fix it, or leave it out for jobs without a namespace."
        )
    return value


def _parse_seconds(properties: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = properties.get(name)
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not low <= seconds <= high:
        raise InvalidPropertiesError(
            f"{name} is {_shown(value)}: it must be a number of seconds from {low:g} to {high:g}. "
            f'Fix it (e.g. "{high:g}"), or leave it out for the default.'
        )
    return seconds


@dataclass(frozen=True)
class Timing:
    """How the handler paces itself; set by the construct through the environment.

    query_interval and total_timeout mirror the Provider's waiter. Inside one
    ``is_complete`` invocation the handler polls every ``poll_interval`` for up to
    ``poll_window`` so that a freed deletion slot is reused within seconds, not at the
    next waiter retry. It gives up ``report_margin`` before ``total_timeout`` so that
    its failure, naming the jobs left, reaches CloudFormation before CloudFormation's
    own timeout does.
    """

    query_interval: float = 10.0
    total_timeout: float = 3600.0
    poll_interval: float = 2.0
    poll_window: float = 300.0
    report_margin: float = 30.0

    def for_request(self, request: CleanupRequest) -> Timing:
        """This timing with the resource's own query interval and total timeout, if it sets them."""
        return replace(
            self,
            poll_interval=request.query_interval or self.poll_interval,
            total_timeout=request.total_timeout or self.total_timeout,
        )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Timing:
        def seconds(name: str, default: float) -> float:
            return float(environ.get(name, default))

        return cls(
            query_interval=seconds("QUERY_INTERVAL_SECONDS", cls.query_interval),
            total_timeout=seconds("TOTAL_TIMEOUT_SECONDS", cls.total_timeout),
            poll_interval=seconds("POLL_INTERVAL_SECONDS", cls.poll_interval),
            poll_window=seconds("POLL_WINDOW_SECONDS", cls.poll_window),
            report_margin=seconds("REPORT_MARGIN_SECONDS", cls.report_margin),
        )


# --------------------------------------------------------------------------- IoT calls


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _is_transient(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return _error_code(exc) in TRANSIENT_CODES or int(status or 0) >= 500


def _call_aws(client: Any, operation: str, **params: Any) -> Any:
    """One AWS call; throttling, 5xx and connection errors become ``_TransientIotError``."""
    try:
        return getattr(client, operation)(**params)
    except ClientError as exc:
        if _is_transient(exc):
            raise _TransientIotError(f"{operation}: {_error_code(exc)}") from exc
        raise
    except BotoCoreError as exc:
        raise _TransientIotError(f"{operation}: {exc}") from exc


class IotJobs:
    """The three IoT calls the cleanup makes, with error codes turned into outcomes."""

    def __init__(self, client: Any, namespace_id: str | None) -> None:
        self._client = client
        self._namespace = {"namespaceId": namespace_id} if namespace_id else {}
        self.calls = 0

    def _call(self, operation: str, **params: Any) -> Any:
        self.calls += 1
        return _call_aws(self._client, operation, **params)

    def describe(self, job_id: str) -> Mapping[str, Any] | None:
        """The job, or None when it no longer exists."""
        try:
            return self._call("describe_job", jobId=job_id)["job"]
        except ClientError as exc:
            if _error_code(exc) in GONE_CODES:
                return None
            raise

    def status(self, job_id: str) -> str | None:
        job = self.describe(job_id)
        return None if job is None else job["status"]

    def delete(self, job_id: str, force: bool) -> None:
        self._call("delete_job", jobId=job_id, force=force, **self._namespace)

    def deleting_job_ids(self) -> set[str]:
        """Every job in DELETION_IN_PROGRESS: ours and anyone else's (they share the slots)."""
        found: set[str] = set()
        token: str | None = None
        while True:
            page = self._call(
                "list_jobs",
                status=DELETING,
                maxResults=250,
                **self._namespace,
                **({"nextToken": token} if token else {}),
            )
            found.update(job["jobId"] for job in page.get("jobs", []))
            token = page.get("nextToken")
            if not token:
                return found


# --------------------------------------------------------------------------- the stack's lifecycle


def stack_status(cloudformation: Any, stack_id: str) -> str:
    """The stack's status from CloudFormation (DescribeStacks on the event's StackId).

    Raises ``_TransientIotError`` when the answer may come on a later try, and
    ``CleanupError`` naming the permission to grant when the handler may not ask.
    """
    try:
        stacks = _call_aws(cloudformation, "describe_stacks", StackName=stack_id)["Stacks"]
    except ClientError as exc:
        if _error_code(exc) in DENIED_CODES:
            raise CleanupError(
                f"CloudFormation denied DescribeStacks on {stack_id}: the handler asks for the stack's "
                "status to delete jobs only when the stack itself is torn down, and nothing was "
                "deleted. Grant the handler's role cloudformation:DescribeStacks on this stack."
            ) from exc
        raise CleanupError(
            f"CloudFormation could not describe the stack {stack_id} ({_error_code(exc)}: "
            f"{exc.response.get('Error', {}).get('Message', '')}), so nothing was deleted."
        ) from exc
    return str(stacks[0]["StackStatus"])


def is_teardown(status: str) -> bool:
    return status in TEARDOWN_STATUSES


def _log_not_a_teardown(event: Mapping[str, Any], status: str) -> None:
    logger.info(
        "the stack is not being torn down (a renamed, moved or removed cleanup, or an update "
        "rolling back): no job was deleted; this resource's jobs stay with the stack",
        extra={"stackStatus": status, "logicalResourceId": event.get("LogicalResourceId")},
    )


# --------------------------------------------------------------------------- policy


@dataclass
class Backoff:
    """Exponential backoff with equal jitter: half the step fixed, half random."""

    base: float = 2.0
    cap: float = 30.0
    random: Callable[[], float] = _random.random
    attempts: int = 0

    def next_delay(self) -> float:
        step = min(self.cap, self.base * 2**self.attempts)
        self.attempts += 1
        return step / 2 + self.random() * step / 2

    def reset(self) -> None:
        self.attempts = 0


def execution_count(job: Mapping[str, Any]) -> int:
    """How many job executions a job has: its deletion takes longer the more it has."""
    details = job.get("jobProcessDetails") or {}
    return sum(
        value for key, value in details.items() if key.startswith("numberOf") and isinstance(value, int)
    )


class JobCleanup:
    """Deletes one resource's jobs through the shared 10 deletion slots.

    Jobs are started in a fixed order (``plan``: the longest deletions first), so at any
    moment that order is a prefix of jobs that are gone or being deleted, followed by jobs
    nobody touched yet. ``survey`` finds that frontier again from IoT with a binary search,
    which is what lets the handler keep no state between invocations. ``all_gone`` checks
    every job before reporting success, so a job deleted or recreated out of order by
    someone else is still caught.
    """

    def __init__(
        self,
        iot: IotJobs,
        request: CleanupRequest,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        order: tuple[str, ...] | None = None,
        hard_stop: float = math.inf,
    ) -> None:
        self.iot = iot
        self.request = request
        self.order = order or request.job_ids
        self.hard_stop = hard_stop  # the Lambda's own timeout, less a margin: never run past it
        self.clock = clock
        self.sleep = sleep
        self.backoff = Backoff(random=random)
        self.pending: deque[str] = deque(self.order)
        self.ours_deleting: set[str] = set()
        self.deleting_anywhere: set[str] = set()
        self.seen_gone: set[str] = set()  # seen gone during this invocation
        self.unconfirmed: set[str] = set()  # left the deleting list; not yet seen gone
        self.no_delete_before = 0.0
        self.started_at: dict[str, float] = {}  # deletions this invocation started
        self.last_poll_at: float | None = None
        self.duration: tuple[float, float] | None = None  # the latest deletion: longer, at most

    # -- reading the state from IoT

    def plan(self) -> tuple[str, ...]:
        """Describe every job once, before deleting any: fail now on a job that needs force,
        and order the rest longest deletion first (deletion time grows with a job's
        executions, and starting the longest first keeps the 10 slots evenly busy to the end).
        """
        touched: list[str] = []
        untouched: list[tuple[int, int, str]] = []
        unplanned: list[str] = []  # not described before the hard stop: they keep list order
        for position, job_id in enumerate(self.request.job_ids):
            if self.clock() >= self.hard_stop:
                unplanned.append(job_id)
                continue
            job = self.iot.describe(job_id)
            if job is None:
                self.seen_gone.add(job_id)
                touched.append(job_id)
            elif job["status"] == DELETING:
                self.ours_deleting.add(job_id)
                touched.append(job_id)
            else:
                self._require_deletable(job_id, job["status"])
                untouched.append((-execution_count(job), position, job_id))
        self.pending = deque([*(job_id for *_, job_id in sorted(untouched)), *unplanned])
        self.order = (*touched, *self.pending)
        self.deleting_anywhere = self.iot.deleting_job_ids() | self.ours_deleting
        return self.order

    def survey(self) -> None:
        self.deleting_anywhere = self.iot.deleting_job_ids()
        ids = self.order
        frontier = self._first_untouched(ids)
        self.pending = deque(ids[frontier:])
        self.ours_deleting = {job_id for job_id in ids[:frontier] if job_id in self.deleting_anywhere}

    def _first_untouched(self, ids: tuple[str, ...]) -> int:
        low, high = 0, len(ids)
        while low < high:
            middle = (low + high) // 2
            if self._touched(ids[middle]):
                low = middle + 1
            else:
                high = middle
        return low

    def _touched(self, job_id: str) -> bool:
        if job_id in self.deleting_anywhere:
            return True
        return self._status(job_id) in (None, DELETING)

    def _status(self, job_id: str) -> str | None:
        status = self.iot.status(job_id)
        if status is None:
            self.seen_gone.add(job_id)
        return status

    def refresh(self) -> None:
        """One poll: which deletions are still under way.

        A job of ours that left the DELETION_IN_PROGRESS list frees its slot at once; it
        is confirmed gone afterwards (``confirm_gone``), so the slot is reused without
        waiting for the confirmation and a list that lags behind never ends the wait early.
        """
        polled_before, self.last_poll_at = self.last_poll_at, self.clock()
        self.deleting_anywhere = self.iot.deleting_job_ids()
        vanished = self.ours_deleting - self.deleting_anywhere
        self.ours_deleting -= vanished
        self.unconfirmed |= vanished
        # The most recently started of them says most about the deletions still running.
        for job_id in sorted(vanished & self.started_at.keys(), key=lambda job: (self.started_at[job], job)):
            started = self.started_at.pop(job_id)
            if polled_before is not None and polled_before > started:
                self.duration = (polled_before - started, self.last_poll_at - started)

    def next_poll_in(self, poll_interval: float) -> float:
        """Poll fast while a deletion of ours is expected to finish, else every interval.

        The latest deletion seen to finish took longer than its last poll still listing it
        and at most until the poll that no longer did: a deletion started at s is expected
        to finish between s plus those two, and is looked for there every half second.
        Only while no one else is deleting: under contention a resource that polled faster
        would keep taking back the slots it frees, and the others would wait.
        """
        others_deleting = self.deleting_anywhere.difference(self.request.job_ids)
        if self.duration is None or others_deleting:
            return poll_interval
        shortest, longest = self.duration
        now = self.clock()
        windows = [(s + shortest, s + longest + poll_interval) for s in self.started_at.values()]
        if any(start <= now <= end for start, end in windows):
            return FAST_POLL_INTERVAL
        upcoming = [start - now for start, _ in windows if start > now]
        return max(FAST_POLL_INTERVAL / 5, min([poll_interval, *upcoming]))

    def confirm_gone(self) -> None:
        for job_id in sorted(self.unconfirmed):
            status = self._status(job_id)
            if status == DELETING:  # the list lagged behind
                self.ours_deleting.add(job_id)
                self.deleting_anywhere.add(job_id)
            elif status is not None:  # deleted, then created again under the same id
                self.pending.appendleft(job_id)
            self.unconfirmed.discard(job_id)

    # -- acting

    def free_slots(self) -> int:
        return max(0, DELETION_SLOTS - len(self.deleting_anywhere | self.ours_deleting))

    def start_deletions(self) -> int:
        """Start deletions while slots are free; returns how many were started."""
        started = 0
        while (
            self.pending and self.free_slots() > 0 and self.no_delete_before <= self.clock() < self.hard_stop
        ):
            job_id = self.pending[0]
            outcome = self._delete(job_id)
            if outcome == "limit":
                self.no_delete_before = self.clock() + self.backoff.next_delay()
                logger.info("deletion slots are full; backing off", extra={"jobId": job_id})
                break
            self.pending.popleft()
            if outcome in ("started", "deleting"):
                self.ours_deleting.add(job_id)
                self.deleting_anywhere.add(job_id)
            if outcome == "started":
                started += 1
                self.started_at[job_id] = self.clock()
                self.backoff.reset()
        return started

    def _delete(self, job_id: str) -> str:
        try:
            self.iot.delete(job_id, self.request.force)
            logger.info("deletion started", extra={"jobId": job_id})
            return "started"
        except ClientError as exc:
            code = _error_code(exc)
            if code in GONE_CODES:
                self.seen_gone.add(job_id)
                return "gone"
            if code in LIMIT_CODES:
                return "limit"
            return self._explain_refusal(job_id, exc)

    def _explain_refusal(self, job_id: str, exc: ClientError) -> str:
        status = self._status(job_id)
        if status is None:
            return "gone"
        if status == DELETING:
            logger.info("deletion already under way; waiting for it", extra={"jobId": job_id})
            return "deleting"
        self._require_deletable(job_id, status)
        raise CleanupError(
            f"IoT refused to delete job {job_id!r} (status {status}): "
            f"{_error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"
        ) from exc

    def _require_deletable(self, job_id: str, status: str) -> None:
        if not self.request.force and status not in TERMINAL_STATUSES:
            raise ForceRequiredError(
                f"Job {job_id!r} is {status}: without force only COMPLETED or CANCELED jobs "
                "can be deleted, so it was left as it is. Cancel the job first, or set "
                'force=True on IotJobCleanup (Force: "true") to delete it while it runs.'
            )

    def done(self) -> bool:
        return not self.pending and not self.ours_deleting and not self.unconfirmed

    def all_gone(self) -> bool:
        """Check every job not yet seen gone; requeue any that still exists.

        The frontier search trusts list order; this sweep is what catches a job that
        someone else deleted, or created again, out of that order.
        """
        stragglers: list[str] = []
        for job_id in self.order:
            if job_id in self.seen_gone:
                continue
            if self.clock() >= self.hard_stop:
                return False  # the next invocation checks again
            status = self._status(job_id)
            if status == DELETING:
                self.ours_deleting.add(job_id)
            elif status is not None:
                stragglers.append(job_id)
        self.pending.extendleft(reversed(stragglers))
        return not stragglers and not self.ours_deleting

    # -- the loop

    def run_until(self, stop_at: float, poll_interval: float) -> bool:
        """Work until every job is gone (True) or ``stop_at`` comes (False).

        Transient IoT errors never escape: the step is retried after a backoff.
        """
        surveyed = False
        while True:
            try:
                if not surveyed:
                    self.survey()
                    surveyed = True
                self.start_deletions()
                self.confirm_gone()
                if self.done() and self.all_gone():
                    return True
                pause = self.next_poll_in(poll_interval)
            except _TransientIotError as exc:
                surveyed = False
                pause = self.backoff.next_delay()
                logger.warning("transient IoT error; will retry", extra={"error": str(exc)})
            if self.clock() + pause > stop_at:
                return False
            self.sleep(pause)
            if surveyed:
                try:
                    self.refresh()
                except _TransientIotError as exc:
                    surveyed = False
                    logger.warning("transient IoT error; will retry", extra={"error": str(exc)})

    def remaining_with_status(self, limit: int = STATUSES_IN_TIMEOUT_MESSAGE) -> tuple[int, list[str]]:
        """Jobs not known to be gone, and 'id (status)' for the first ``limit`` of them."""
        remaining = sorted(self.ours_deleting) + [j for j in self.pending if j not in self.ours_deleting]
        described: list[str] = []
        for job_id in remaining[:limit]:
            if job_id in self.ours_deleting:
                described.append(f"{job_id} ({DELETING})")
                continue
            try:
                status = self.iot.status(job_id)
            except (_TransientIotError, ClientError):
                status = "status unknown"
            described.append(f"{job_id} ({status or 'gone'}, waiting for a deletion slot)")
        return len(remaining), described


# --------------------------------------------------------------------------- entry points


def _physical_resource_id(event: Mapping[str, Any]) -> str:
    return event.get("PhysicalResourceId") or f"iot-job-cleanup:{event['LogicalResourceId']}"


def _remaining_lambda_seconds(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else math.inf


# botocore's own retries are off: LimitExceededException lasts minutes and botocore would
# retry it as throttling within seconds, so the handler owns every retry.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=15
)
_client_cache: dict[str, Any] = {}


def _client(service: str) -> Any:
    """One client per service and container."""
    if service not in _client_cache:
        _client_cache[service] = boto3.client(service, config=CLIENT_CONFIG)
    return _client_cache[service]


def _teardown_in_on_event(
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
            return _teardown(event, cloudformation)
        except _TransientIotError as exc:
            logger.warning("transient CloudFormation error; will retry", extra={"error": str(exc)})
            pause = backoff.next_delay()
            if attempt + 1 == STACK_STATUS_ATTEMPTS or clock() + pause >= hard_stop:
                break
            sleep(pause)
    return None


def _teardown(event: Mapping[str, Any], cloudformation: Any) -> bool:
    status = stack_status(cloudformation, str(event["StackId"]))
    if not is_teardown(status):
        _log_not_a_teardown(event, status)
        return False
    return True


def handle_on_event(
    event: Mapping[str, Any],
    *,
    client: Any,
    cloudformation: Any,
    timing: Timing,
    remaining_lambda_seconds: float = math.inf,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    random: Callable[[], float] = _random.random,
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
    backoff = Backoff(random=random)
    teardown = _teardown_in_on_event(
        event, cloudformation, clock=clock, sleep=sleep, backoff=backoff, hard_stop=hard_stop
    )
    if teardown is None:  # is_complete asks again
        return result
    result[TEARDOWN_KEY] = "true" if teardown else "false"
    if not teardown:
        return result
    iot = IotJobs(client, request.namespace_id)
    cleanup = JobCleanup(iot, request, clock=clock, sleep=sleep, random=random, hard_stop=hard_stop)
    try:
        result[ORDER_KEY] = list(cleanup.plan())
        started = cleanup.start_deletions()
        logger.info("cleanup started", extra={"jobs": len(request.job_ids), "started": started})
    except _TransientIotError as exc:  # is_complete starts over, in list order
        logger.warning("transient IoT error; is_complete will retry", extra={"error": str(exc)})
    return result


def _planned_order(event: Mapping[str, Any], request: CleanupRequest) -> tuple[str, ...] | None:
    """The order on_event planned, if the event carries one for exactly these jobs."""
    order = event.get(ORDER_KEY)
    if isinstance(order, list) and sorted(order) == sorted(request.job_ids):
        return tuple(order)
    return None


def _log_dropped_jobs(event: Mapping[str, Any], request: CleanupRequest) -> None:
    old_ids = (event.get("OldResourceProperties") or {}).get("JobIds") or []
    dropped = sorted(set(old_ids) - set(request.job_ids) - {""}) if isinstance(old_ids, list) else []
    if dropped:
        logger.info(
            "jobs dropped from JobIds are no longer this resource's to delete; nothing was deleted",
            extra={"droppedJobIds": dropped},
        )


def handle_is_complete(
    event: Mapping[str, Any],
    *,
    client: Any,
    cloudformation: Any,
    timing: Timing,
    remaining_lambda_seconds: float = math.inf,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    random: Callable[[], float] = _random.random,
) -> dict[str, Any]:
    if event["RequestType"] != "Delete" or event.get(TEARDOWN_KEY) == "false":
        return {"IsComplete": True}
    request = CleanupRequest.from_properties(event.get("ResourceProperties", {}))
    timing = timing.for_request(request)
    now = clock()
    started_at = float(event.get(STARTED_KEY, now))
    give_up_at = float(event.get(DEADLINE_KEY, now + timing.total_timeout))
    if event.get(TEARDOWN_KEY) != "true":
        try:
            if not _teardown(event, cloudformation):
                return {"IsComplete": True}
        except _TransientIotError as exc:
            if now >= give_up_at - timing.poll_interval:
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
    iot = IotJobs(client, request.namespace_id)
    order = _planned_order(event, request)
    cleanup = JobCleanup(
        iot, request, clock=clock, sleep=sleep, random=random, order=order, hard_stop=hard_stop
    )
    if cleanup.run_until(window_end, timing.poll_interval):
        logger.info("every job is gone", extra={"jobs": len(request.job_ids), "iotCalls": iot.calls})
        return {"IsComplete": True}
    if last_chance and clock() >= give_up_at - timing.poll_interval:
        raise CleanupTimeoutError(_timeout_message(cleanup, clock() - started_at))
    return {"IsComplete": False}


def _timeout_message(cleanup: JobCleanup, elapsed: float) -> str:
    """Which jobs are left and what to do, named while the message stays within its budget."""
    count, described = cleanup.remaining_with_status()
    head = (
        f"Timed out after {elapsed:.0f} s with {count} of {len(cleanup.request.job_ids)} jobs not deleted: "
    )
    tail = ". Deletions under way go on in IoT; run cdk destroy again to wait for them and delete the rest."
    budget = MAX_MESSAGE_BYTES - len((head + tail).encode()) - len(b", and 99999 more")
    named: list[str] = []
    for item in described:
        if len(", ".join([*named, item]).encode()) > budget:
            break
        named.append(item)
    more = f", and {count - len(named)} more" if count > len(named) else ""
    return f"{head}{', '.join(named)}{more}{tail}"


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
            timing=Timing.from_environment(),
            remaining_lambda_seconds=_remaining_lambda_seconds(context),
        )
    except CleanupError as exc:
        raise type(exc)(_where_the_logs_are(str(exc))) from exc


def on_event(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return _reported(handle_on_event, event, context)


def is_complete(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return _reported(handle_is_complete, event, context)
