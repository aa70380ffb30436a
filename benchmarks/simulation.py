"""Simulated time for the cleanup benchmark, and the three contenders it runs.

``SimTime`` is a virtual clock shared by several actors (threads): ``sleep`` hands the
baton to the actor whose wake-up time comes first, so exactly one actor runs at a time and
a run is deterministic. The handler under test, the IoT lifecycle and the contenders all
read this clock, so an hour of cleanup takes seconds.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Any, NamedTuple

import botocore.session
from botocore.exceptions import ClientError
from botocore.retries.standard import (
    ExponentialBackoff,
    RetryContext,
    RetryPolicy,
    StandardRetryConditions,
)

from iot_job_cleanup.cfn import OFFLINE_ACCOUNT, OFFLINE_REGION, RESOURCE_TYPE
from iot_job_cleanup.emulator import (
    DeletionLifecycle,
    LifecycleClient,
    StackStatusClient,
    TaggingClient,
)
from iot_job_cleanup.provider import EntryPoint, run_request

__all__ = [
    "Call",
    "CallLog",
    "CountingClient",
    "ResourceRun",
    "SimTime",
    "counting_tagging",
    "peak_per_second",
    "run_handler",
    "run_one_shot",
    "run_sequential",
]


class SimTime:
    """A virtual clock for cooperating threads: whoever sleeps hands over the baton."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, object]] = []
        self._order = itertools.count()
        self._running: object | None = None
        self._local = threading.local()

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        token = self._local.token
        with self._cond:
            heapq.heappush(self._queue, (self._now + max(0.0, seconds), next(self._order), token))
            self._hand_over()
            self._cond.wait_for(lambda: self._running is token)

    def _hand_over(self) -> None:
        wake_at, _, token = heapq.heappop(self._queue)
        self._now = max(self._now, wake_at)
        self._running = token
        self._cond.notify_all()

    def run(self, actors: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run the actors from now until all have returned; results in their order."""
        results: list[Any] = [None] * len(actors)
        errors: list[BaseException] = []
        alive = [len(actors)]

        def body(index: int, actor: Callable[[], Any], token: object) -> None:
            self._local.token = token
            with self._cond:
                self._cond.wait_for(lambda: self._running is token)
            try:
                results[index] = actor()
            except BaseException as exc:  # reported to the caller below
                errors.append(exc)
            finally:
                with self._cond:
                    alive[0] -= 1
                    if self._queue:
                        self._hand_over()
                    else:
                        self._running = None
                        self._cond.notify_all()

        threads = []
        for index, actor in enumerate(actors):
            token = object()
            heapq.heappush(self._queue, (self._now, next(self._order), token))
            threads.append(threading.Thread(target=body, args=(index, actor, token), daemon=True))
        for thread in threads:
            thread.start()
        with self._cond:
            self._hand_over()
            self._cond.wait_for(lambda: alive[0] == 0)
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results


class Call(NamedTuple):
    """One API call: when it reached the service, what it was, what it answered."""

    at: float
    operation: str  # the client method: describe_job, list_jobs, get_resources, ...
    code: str  # the error code answered, "" for success
    detail: str = ""  # describe_job and friends: the job id; list_jobs: which listing


# ListJobs serves two purposes: the status poll that tells which deletions are under way,
# and discovery's listings (all jobs, a thing group's, the SCHEDULED ones).
STATUS_POLL = "status=DELETION_IN_PROGRESS"


def listing_of(params: Mapping[str, Any]) -> str:
    """Which listing a ListJobs call walks, from its filters."""
    if "thingGroupName" in params:
        return f"thingGroupName={params['thingGroupName']}"
    if "status" in params:
        return f"status={params['status']}"
    return "all jobs"


@dataclass
class CallLog:
    """Every API call made, with its simulated time: for rates and per-job counts."""

    calls: list[Call] = field(default_factory=list)

    def count(self) -> int:
        return len(self.calls)

    def by_operation(self) -> Counter[str]:
        return Counter(call.operation for call in self.calls)

    def deletions_started(self) -> list[float]:
        return [call.at for call in self.calls if call.operation == "delete_job" and not call.code]

    def answered(self, code: str) -> int:
        return sum(1 for call in self.calls if call.code == code)


def peak_per_second(logs: Sequence[CallLog]) -> int:
    return max(Counter(int(call.at) for log in logs for call in log.calls).values(), default=0)


class CountingClient:
    """An in-process client with a simulated round-trip time and a call log.

    Wraps the IoT ``LifecycleClient`` (or the tagging API's ``TaggingClient``): every
    method the wrapped client has is offered, logged and timed alike.
    """

    def __init__(self, client: Any, sim: SimTime, log: CallLog, latency: float) -> None:
        self._client = client
        self._sim = sim
        self._log = log
        self._latency = latency

    def _call(self, operation: str, **params: Any) -> Any:
        self._sim.sleep(self._latency / 2)
        at, code = self._sim.now(), ""
        try:
            return getattr(self._client, operation)(**params)
        except ClientError as exc:
            code = _code(exc)
            raise
        finally:
            detail = listing_of(params) if operation == "list_jobs" else str(params.get("jobId", ""))
            self._log.calls.append(Call(at, operation, code, detail))
            self._sim.sleep(self._latency / 2)

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        if operation.startswith("_") or not callable(getattr(self._client, operation, None)):
            raise AttributeError(operation)
        return partial(self._call, operation)


def counting_tagging(
    lifecycle: DeletionLifecycle, sim: SimTime, log: CallLog, latency: float, *, serves_iot_jobs: bool
) -> CountingClient:
    """The Resource Groups Tagging API stand-in, logged and timed like the IoT client."""
    return CountingClient(TaggingClient(lifecycle, serves_iot_jobs), sim, log, latency)


@dataclass
class ResourceRun:
    """What one cleanup resource did and when: one row of the benchmark per contender."""

    job_ids: list[str]
    started: float = 0.0
    finished: float | None = None  # when the resource reported success (or failed)
    failure: str = ""
    invocations: int = 0
    lambda_seconds: float = 0.0
    log: CallLog = field(default_factory=CallLog)
    jobs_failed: list[str] = field(default_factory=list)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# --------------------------------------------------------------------------- our handler


def run_handler(
    handler: ModuleType,
    lifecycle: DeletionLifecycle,
    sim: SimTime,
    run: ResourceRun,
    *,
    timing: Any,
    latency: float,
    seed: int,
    lambda_timeout: float,
    on_event_timeout: float = 120.0,
    logical_id: str = "Cleanup",
    properties: Mapping[str, Any] | None = None,
    tagging: Any = None,
) -> None:
    """The Provider contract: on_event once, then is_complete every query interval.

    ``properties`` are the resource's (default: the run's jobs by id, without force);
    ``tagging`` is the tagging API client the handler gets (none by default). The
    handler's container starts cold (no job facts kept from another scenario, whose jobs
    may have the same ids and creation times) and stays warm for the whole cleanup.
    """
    handler.forget_cached_facts()
    client = CountingClient(LifecycleClient(lifecycle), sim, run.log, latency)
    rng = random.Random(seed)
    request = {
        "RequestType": "Delete",
        "LogicalResourceId": logical_id,
        "StackId": f"arn:aws:cloudformation:{OFFLINE_REGION}:{OFFLINE_ACCOUNT}:stack/Benchmark/1",
        "PhysicalResourceId": f"iot-job-cleanup:{logical_id}",
        "ResourceType": RESOURCE_TYPE,
        "ResourceProperties": dict(properties or {"JobIds": run.job_ids, "Force": "false"}),
    }
    common = {
        "client": client,
        "tagging": tagging,
        "cloudformation": StackStatusClient("DELETE_IN_PROGRESS"),  # the stack is torn down
        "timing": timing,
        "clock": sim.now,
        "sleep": sim.sleep,
        "random": rng.random,
    }
    run.started = sim.now()

    def timed(name: str, call: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
        """One Lambda invocation: counted, and its duration added to the Lambda seconds."""
        began = sim.now()
        try:
            return call()
        finally:
            run.invocations += 1
            run.lambda_seconds += sim.now() - began

    try:
        run_request(
            request,
            EntryPoint.of(handler, "on_event", **common, remaining_lambda_seconds=on_event_timeout),
            EntryPoint.of(handler, "is_complete", **common, remaining_lambda_seconds=lambda_timeout),
            sleep=sim.sleep,
            query_interval=timing.query_interval,
            invocation=timed,
        )
    except Exception as exc:  # the Provider turns any exception into a failed resource
        run.failure = f"{type(exc).__name__}: {exc}"
    run.finished = sim.now()


# --------------------------------------------------------------------------- naive contenders


def run_sequential(
    lifecycle: DeletionLifecycle, sim: SimTime, run: ResourceRun, *, poll: float, latency: float
) -> None:
    """Delete one job, wait until it is gone, then the next (one process, polling)."""
    client = CountingClient(LifecycleClient(lifecycle), sim, run.log, latency)
    run.started = sim.now()
    run.invocations = 1
    for job_id in run.job_ids:
        while True:
            try:
                client.delete_job(jobId=job_id, force=False)
                break
            except ClientError as exc:
                if _code(exc) == "ResourceNotFoundException":
                    break
                if _code(exc) != "LimitExceededException":
                    raise
                sim.sleep(poll)
        while True:
            try:
                client.describe_job(jobId=job_id)
            except ClientError as exc:
                if _code(exc) == "ResourceNotFoundException":
                    break
                raise
            sim.sleep(poll)
    run.finished = sim.now()
    run.lambda_seconds = run.finished - run.started


def run_one_shot(
    lifecycle: DeletionLifecycle, sim: SimTime, run: ResourceRun, *, latency: float, seed: int
) -> None:
    """One DeleteJob per job, all at once, each with botocore's standard retries, as one
    AwsCustomResource per job would do; success as soon as the calls return."""
    client = CountingClient(LifecycleClient(lifecycle), sim, run.log, latency)
    operation = botocore.session.get_session().get_service_model("iot").operation_model("DeleteJob")
    policy = RetryPolicy(
        StandardRetryConditions(max_attempts=3), ExponentialBackoff(random=random.Random(seed).random)
    )
    run.started = sim.now()
    attempts: list[tuple[float, int, str]] = [(sim.now(), 1, job_id) for job_id in run.job_ids]
    heapq.heapify(attempts)
    while attempts:
        at, attempt, job_id = heapq.heappop(attempts)
        sim.sleep(at - sim.now())
        try:
            client.delete_job(jobId=job_id, force=False)
        except ClientError as exc:
            context = RetryContext(
                attempt_number=attempt,
                operation_model=operation,
                parsed_response=exc.response,
                http_response=_HttpStatus(exc.response["ResponseMetadata"]["HTTPStatusCode"]),
            )
            if policy.should_retry(context):
                heapq.heappush(
                    attempts, (sim.now() + policy.compute_retry_delay(context), attempt + 1, job_id)
                )
            elif _code(exc) != "ResourceNotFoundException":
                run.jobs_failed.append(job_id)
    run.invocations = len(run.job_ids)
    run.finished = sim.now()
    run.lambda_seconds = run.finished - run.started
    if run.jobs_failed:
        run.failure = f"{len(run.jobs_failed)} DeleteJob calls failed after botocore's retries"


@dataclass
class _HttpStatus:
    """What botocore's retry policy reads of an HTTP response: the status and headers."""

    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
