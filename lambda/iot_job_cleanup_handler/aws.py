"""The AWS calls the cleanup makes, with error codes turned into outcomes.

botocore's own retries are off: LimitExceededException lasts minutes and botocore would
retry it as throttling within seconds, so the engine owns every retry. Throttling, 5xx and
connection errors are tried again on the spot a few times (a throttled operation is paced
from then on); only when they persist do they become ``TransientError``, and the engine
backs off and tries the round again.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from .errors import LookExpiredError, TransientError

logger = logging.getLogger("iot_job_cleanup")

__all__ = [
    "CLIENT_CONFIG",
    "DELETING",
    "IotJobs",
    "call_aws",
    "error_code",
]

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=15
)
DELETING = "DELETION_IN_PROGRESS"
RUNNING_STATUSES = frozenset({"IN_PROGRESS", "SCHEDULED"})
TERMINAL_STATUSES = frozenset({"COMPLETED", "CANCELED"})
GONE_CODES = frozenset({"ResourceNotFoundException"})
LIMIT_CODES = frozenset({"LimitExceededException"})
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
TRANSIENT_CODES = THROTTLING_CODES | frozenset(
    {
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "InternalFailureException",
        "InternalServerException",
        "InternalFailure",
        "RequestTimeoutException",
    }
)
PAGE_SIZE = 250  # ListJobs' largest page
# Listing and tag look-ups go at most this often per operation: IoT's last published rate
# is 10 requests per second per operation for the whole account, shared with everyone else.
DISCOVERY_CALL_INTERVAL = 0.25
# Other calls go as fast as IoT answers until it throttles one: from then on that operation
# goes at most this often, and a throttled call is tried again a few times on the spot.
THROTTLED_CALL_INTERVAL = 0.125
THROTTLED_RETRIES = 4
# Whatever the operation, no more than this many calls of it go out within any one second:
# IoT's published rate per operation and account. A call that would be one more waits.
OPERATION_RATE = 10
RATE_WINDOW = 1.0
RATE_SLACK = 0.001  # a millisecond past the window: clocks and sums of floats are not exact
# Other transient errors (5xx, a connection that failed) are tried again on the spot too,
# after a short pause that doubles: at 10 % of calls failing, nearly every call goes through
# within its retries, so errors cost little more than their own calls.
TRANSIENT_RETRIES = 4
TRANSIENT_PAUSE = 0.1


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def _is_transient(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(exc) in TRANSIENT_CODES or int(status or 0) >= 500


def call_aws(client: Any, operation: str, **params: Any) -> Any:
    """One AWS call; throttling, 5xx and connection errors become ``TransientError``.

    Other botocore errors (no credentials, no region, a bad parameter) are no better on a
    later try: they propagate.
    """
    try:
        return getattr(client, operation)(**params)
    except ClientError as exc:
        if _is_transient(exc):
            throttled = error_code(exc) in THROTTLING_CODES
            raise TransientError(f"{operation}: {error_code(exc)}", throttled=throttled) from exc
        raise
    except (BotoConnectionError, HTTPClientError) as exc:
        raise TransientError(f"{operation}: {exc}") from exc


class IotJobs:
    """The IoT calls of a cleanup, counted and paced.

    Listings and tag look-ups are always paced (they come in runs of thousands in a large
    account). Any other operation is paced from its first throttled answer on, and a
    throttled call is retried on the spot a few times before it counts as transient.
    """

    def __init__(
        self,
        client: Any,
        namespace_id: str | None,
        *,
        tagging: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        pace: float = DISCOVERY_CALL_INTERVAL,
        recent_calls: Mapping[str, tuple[int, float]] | None = None,
    ) -> None:
        self._client = client
        self._tagging = tagging
        self._namespace = {"namespaceId": namespace_id} if namespace_id else {}
        self._clock, self._sleep = clock, sleep
        self._intervals: dict[str, float] = {}  # operation -> at most one call this often
        self._last_call: dict[str, float] = {}
        # operation -> when its latest calls went out (at most OPERATION_RATE): this
        # invocation's, and those the previous one handed on (``recent_calls``), each taken
        # as made at the latest of them (never later than now: a clock may run ahead)
        now = clock()
        self._sent: dict[str, deque[float]] = {
            operation: deque([min(latest, now)] * min(count, OPERATION_RATE), maxlen=OPERATION_RATE)
            for operation, (count, latest) in (recent_calls or {}).items()
        }
        self._discovery_pace = pace
        self.calls = 0
        self.throttled = 0  # throttled answers, retried or not
        self._arn_prefix: str | None = None  # "arn:aws:iot:<region>:<account>:job/", once seen
        self.hard_stop = float("inf")  # no throttled call is retried past it

    def _call(self, operation: str, *, send_until: float = float("inf"), **params: Any) -> Any:
        return self._send(self._client, operation, params, send_until)

    def _paced(self, client: Any, operation: str, **params: Any) -> Any:
        self._intervals.setdefault(operation, self._discovery_pace)
        return self._send(client, operation, params)

    def _send(
        self, client: Any, operation: str, params: Mapping[str, Any], send_until: float = float("inf")
    ) -> Any:
        """The call, retried on the spot while transient; no attempt is sent after ``send_until``
        (the look a CancelJob or DeleteJob rests on is stale by then: ``LookExpiredError``)."""
        attempt = 0
        while True:
            self._wait_for_turn(operation)
            if self._clock() > send_until:
                raise LookExpiredError(f"{operation} not sent: the look it rests on is no longer fresh")
            self.calls += 1
            try:
                return call_aws(client, operation, **params)
            except TransientError as exc:
                if exc.throttled:
                    self.throttled += 1
                limit = THROTTLED_RETRIES if exc.throttled else TRANSIENT_RETRIES
                if attempt >= limit or self._clock() >= self.hard_stop:
                    raise
                if exc.throttled:
                    slower = max(self._intervals.get(operation, 0.0), THROTTLED_CALL_INTERVAL / 2) * 2
                    self._intervals[operation] = min(slower, 2.0)
                else:
                    self._sleep(min(TRANSIENT_PAUSE * 2**attempt, max(0.0, self.hard_stop - self._clock())))
                attempt += 1

    def next_turn(self, operation: str) -> float:
        """The earliest moment a call of ``operation`` may go out: after its pace's interval,
        if it is paced, and once the window holds fewer than OPERATION_RATE of its calls."""
        turn = -float("inf")
        interval, last = self._intervals.get(operation), self._last_call.get(operation)
        if interval and last is not None:
            turn = last + interval
        sent = self._sent.get(operation)
        if sent is not None and len(sent) == OPERATION_RATE:
            turn = max(turn, sent[0] + RATE_WINDOW + RATE_SLACK)
        return turn

    def _wait_for_turn(self, operation: str) -> None:
        wait = self.next_turn(operation) - self._clock()
        if wait > 0:
            self._sleep(wait)
        now = self._clock()
        self._last_call[operation] = now
        self._sent.setdefault(operation, deque(maxlen=OPERATION_RATE)).append(now)

    def recent_calls(self) -> dict[str, tuple[int, float]]:
        """Each operation's calls of the last second: how many, and when the latest went out.
        For the next invocation, which may start at once (``on_event`` to the first
        ``is_complete``): taking them all as made at the latest keeps the rate, and is short."""
        since = self._clock() - RATE_WINDOW - RATE_SLACK
        recent = {operation: [at for at in sent if at > since] for operation, sent in self._sent.items()}
        return {operation: (len(times), round(times[-1], 3)) for operation, times in recent.items() if times}

    # -- one job

    def describe(self, job_id: str) -> Mapping[str, Any] | None:
        """The job, or None when it no longer exists."""
        try:
            job = self._call("describe_job", jobId=job_id)["job"]
        except ClientError as exc:
            if error_code(exc) in GONE_CODES:
                return None
            raise
        self._learn_arn(job)
        return job

    def _learn_arn(self, job: Mapping[str, Any]) -> None:
        arn = job.get("jobArn")
        if self._arn_prefix is None and isinstance(arn, str) and "/" in arn:
            self._arn_prefix = arn.rsplit("/", 1)[0] + "/"

    def job_arn(self, job_id: str) -> str | None:
        """A job's ARN, from the ARNs IoT has answered so far (None before any)."""
        return None if self._arn_prefix is None else self._arn_prefix + job_id

    def status(self, job_id: str) -> str | None:
        job = self.describe(job_id)
        return None if job is None else job["status"]

    def delete(self, job_id: str, force: bool, *, send_until: float = float("inf")) -> None:
        self._call("delete_job", send_until=send_until, jobId=job_id, force=force, **self._namespace)

    def cancel(
        self, job_id: str, reason_code: str, comment: str, *, send_until: float = float("inf")
    ) -> None:
        self._call("cancel_job", send_until=send_until, jobId=job_id, reasonCode=reason_code, comment=comment)

    def devices_in_progress(self, job_id: str, limit: int = 5) -> list[str]:
        """Up to ``limit`` things whose execution of the job is still in progress (for a
        message: none when IoT does not tell)."""
        try:
            page = self._call(
                "list_job_executions_for_job", jobId=job_id, status="IN_PROGRESS", maxResults=limit
            )
        except (ClientError, TransientError):
            return []
        return [summary["thingArn"].rsplit("/", 1)[-1] for summary in page.get("executionSummaries", [])]

    def tags_of(self, job_arn: str) -> dict[str, str] | None:
        """The job's tags, every page of them, or None when it no longer exists."""
        tags: dict[str, str] = {}
        token: str | None = None
        while True:
            try:
                answer = self._paced(
                    self._client,
                    "list_tags_for_resource",
                    resourceArn=job_arn,
                    **({"nextToken": token} if token else {}),
                )
            except ClientError as exc:
                if error_code(exc) in GONE_CODES:
                    return None
                raise
            tags.update({tag["Key"]: tag.get("Value", "") for tag in answer.get("tags", [])})
            token = answer.get("nextToken")
            if not token:
                return tags

    # -- listings

    def deleting_job_ids(self) -> set[str]:
        """Every job in DELETION_IN_PROGRESS: ours and anyone else's (they share the slots)."""
        return self.job_ids_with_status(DELETING)

    def running_job_ids(self) -> set[str]:
        """Every job IN_PROGRESS or SCHEDULED: two listings, not a look per job."""
        # SCHEDULED first: a job only moves from SCHEDULED to IN_PROGRESS, so none is missed between them.
        return self.job_ids_with_status("SCHEDULED") | self.job_ids_with_status("IN_PROGRESS")

    def job_ids_with_status(self, status: str) -> set[str]:
        """Every job ListJobs gives in ``status`` (in the cleanup's namespace, if any)."""
        found: set[str] = set()
        token: str | None = None
        while True:
            page = self._call(
                "list_jobs",
                status=status,
                maxResults=PAGE_SIZE,
                **self._namespace,
                **({"nextToken": token} if token else {}),
            )
            for job in page.get("jobs", []):
                found.add(job["jobId"])
                self._learn_arn(job)
            token = page.get("nextToken")
            if not token:
                return found

    def list_page(
        self, filters: Mapping[str, Any], token: str | None
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        """One ListJobs page (250 jobs) of a discovery listing."""
        page = self._paced(
            self._client,
            "list_jobs",
            maxResults=PAGE_SIZE,
            **filters,
            **self._namespace,
            **({"nextToken": token} if token else {}),
        )
        jobs = list(page.get("jobs", []))
        for job in jobs[:1]:
            self._learn_arn(job)
        return jobs, page.get("nextToken") or None

    def tagged_job_arns(self, tags: tuple[tuple[str, str], ...]) -> set[str] | None:
        """The job ARNs the Resource Groups Tagging API finds with every tag.

        None when that API does not serve IoT jobs (unconfirmed): it is first asked for any
        IoT job at all, so an API that knows none is never taken for "no job has the tags".
        """
        if self._tagging is None or not self._tagged_arns([], pages=1):
            return None
        return self._tagged_arns([{"Key": key, "Values": [value]} for key, value in tags])

    def _tagged_arns(self, tag_filters: list[dict[str, Any]], pages: int = 1_000_000) -> set[str] | None:
        arns: set[str] = set()
        token = ""
        for _ in range(pages):
            try:
                page = self._paced(
                    self._tagging,
                    "get_resources",
                    TagFilters=tag_filters,
                    ResourceTypeFilters=["iot:job"],
                    ResourcesPerPage=100,
                    **({"PaginationToken": token} if token else {}),
                )
            except ClientError as exc:  # e.g. not allowed: IoT answers job by job instead
                logger.info(
                    "the tagging API did not answer; asking IoT job by job", extra={"error": str(exc)}
                )
                return None
            arns.update(mapping["ResourceARN"] for mapping in page.get("ResourceTagMappingList", []))
            token = page.get("PaginationToken") or ""
            if not token:
                break
        return arns
