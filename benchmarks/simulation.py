"""Simulated time for the cleanup benchmark, and the three contenders it runs.

``SimTime`` is a virtual clock shared by several actors (threads): ``sleep`` hands the
baton to the actor whose wake-up time comes first, so exactly one actor runs at a time and
a run is deterministic. The handler under test, the IoT lifecycle and the contenders all
read this clock, so an hour of cleanup takes seconds.

Our handler runs as the construct deploys it: a cleanup of ``total_timeout`` is one custom
resource per hour, its stages, which CloudFormation deletes one after another
(``run_handler``); ``cleanup_total_timeout`` is the total timeout the benchmark gives a
cleanup of a given bound.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
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
from iot_job_cleanup.provider import EntryPoint, run_request, waiter_attempts

__all__ = [
    "AVERAGE_BUDGET",
    "HEADROOM",
    "OPERATION_BUDGET",
    "STAGE_GAP_SECONDS",
    "STAGE_SECONDS",
    "Call",
    "CallLog",
    "CountingClient",
    "HandOver",
    "Losses",
    "OperationPeak",
    "ResourceRun",
    "SimTime",
    "StageRun",
    "budget_problems",
    "cleanup_losses",
    "cleanup_total_timeout",
    "counting_tagging",
    "idle_slot_seconds",
    "operation_name",
    "peak_per_operation",
    "peak_per_second",
    "run_handler",
    "run_one_shot",
    "run_sequential",
    "stage_timeouts",
]

# The construct's stages (synth/options.py, synth/provider.py): a custom resource may take an
# hour (its ServiceTimeout, and the Provider waiter's total timeout, query interval 10 s); a
# cleanup is one resource per hour of total_timeout, the last one the rest, 24 at most.
STAGE_SECONDS = 3600.0
MAX_STAGES = 24
# CloudFormation's step from one stage's completion to the next stage's Delete (on_event
# invoked): a named constant, not a measured one; a few seconds at most in a stack teardown.
STAGE_GAP_SECONDS = 2.0
# The total timeout the benchmark gives a cleanup: its bound with this headroom, rounded up
# to whole hours (stages), at most 24 hours.
HEADROOM = 1.10


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
    """The most calls of all operations together in one second of the clock (fixed windows)."""
    return max(Counter(int(call.at) for log in logs for call in log.calls).values(), default=0)


# The calls budget (issue 16): a resource makes on average at most 2 IoT calls per second over
# its cleanup, and the account never sees more than 10 calls of one IoT operation in any one
# second (IoT's published rate per operation and account, its 2020 table).
AVERAGE_BUDGET = 2.0
OPERATION_BUDGET = 10


class OperationPeak(NamedTuple):
    """The most calls of one operation within one window, and where: see ``peak_per_operation``."""

    calls: int
    operation: str  # the client method, "" when there were no calls
    at: float  # the window's start: the first of those calls

    def __str__(self) -> str:
        return f"{self.calls} {operation_name(self.operation)}" if self.operation else "0"


def operation_name(operation: str) -> str:
    """The IoT API's name of a client method: describe_job -> DescribeJob."""
    return "".join(part.title() for part in operation.split("_"))


def peak_per_operation(
    logs: Sequence[CallLog], *, window: float = 1.0, exclude: Sequence[str] = ()
) -> OperationPeak:
    """The most calls of any one operation within any ``window`` seconds, over all the logs
    (all resources: the rate is the account's). Sliding windows: every half-open
    [t, t + window) is looked at (the busiest starts at a call, so those are the ones tried);
    times are taken to the microsecond, so calls 50 ms apart give 20 a second, not 21 by a
    rounding error. Every call counts, a throttled one too (it reached the service). Ties go
    to the operation first by name; ``exclude``: operations left out (another service's)."""
    times: dict[str, list[int]] = {}
    for log in logs:
        for call in log.calls:
            if call.operation not in exclude:
                times.setdefault(call.operation, []).append(round(call.at * 1e6))
    span = round(window * 1e6)
    best = OperationPeak(0, "", 0.0)
    for operation in sorted(times):
        moments = sorted(times[operation])
        end = 0
        for start, at in enumerate(moments):
            while end < len(moments) and moments[end] < at + span:
                end += 1
            if end - start > best.calls:
                best = OperationPeak(end - start, operation, at / 1e6)
    return best


def budget_problems(average: float, peak: OperationPeak) -> list[str]:
    """How a cleanup breaks the calls budget (none: within it)."""
    problems = []
    if average > AVERAGE_BUDGET:
        problems.append(f"{average:.2f} calls/s per resource > {AVERAGE_BUDGET:g}")
    if peak.calls > OPERATION_BUDGET:
        problems.append(f"{peak} in 1 s > {OPERATION_BUDGET}")
    return problems


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


def cleanup_total_timeout(bound: float, headroom: float = HEADROOM) -> float:
    """The total timeout given a cleanup of this bound: bound x headroom in whole hours, 1 to 24."""
    hours = math.ceil(round(bound * headroom / STAGE_SECONDS, 9))
    return min(MAX_STAGES, max(1, hours)) * STAGE_SECONDS


def stage_timeouts(total_timeout: float) -> list[float]:
    """Each stage's TotalTimeoutSeconds (its ServiceTimeout): an hour, the last the rest
    (the construct's ``Settings.stage_timeouts``: 2.5 h gives 3600, 3600, 1800)."""
    full, rest = divmod(int(total_timeout), int(STAGE_SECONDS))
    return [STAGE_SECONDS] * full + ([float(rest)] if rest else [])


@dataclass
class StageRun:
    """One stage of a cleanup: its own custom resource, Delete event and Provider waiter."""

    number: int
    of: int
    timeout: float | None  # its TotalTimeoutSeconds and ServiceTimeout; None: the cap lifted
    started: float
    finished: float = 0.0
    on_event_seconds: float = 0.0
    first_deletion: float | None = None  # its first DeleteJob that started a deletion
    handed_over: bool = False  # it logged "stage k of n hands over"
    jobs_left_at_hand_over: int | None = None  # as that record says
    failure: str = ""
    invocations: int = 0
    lambda_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass
class ResourceRun:
    """What one cleanup resource did and when: one row of the benchmark per contender.

    A cleanup of our handler longer than an hour is several resources, its stages, run one
    after another: ``stages`` has each; the run's start, finish, invocations and Lambda
    seconds are the whole cleanup's.
    """

    job_ids: list[str]
    started: float = 0.0
    finished: float | None = None  # when the resource reported success (or failed)
    failure: str = ""
    invocations: int = 0
    lambda_seconds: float = 0.0
    log: CallLog = field(default_factory=CallLog)
    jobs_failed: list[str] = field(default_factory=list)
    stages: list[StageRun] = field(default_factory=list)

    @property
    def hand_overs(self) -> int:
        return sum(1 for stage in self.stages if stage.handed_over)


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
    total_timeout: float | None,
    on_event_timeout: float = 120.0,
    logical_id: str = "Cleanup",
    properties: Mapping[str, Any] | None = None,
    tagging: Any = None,
    stage_gap: float = STAGE_GAP_SECONDS,
) -> None:
    """The Provider contract for each stage: on_event once, then is_complete every query interval.

    ``total_timeout`` is the cleanup's: it runs as the construct deploys it, one custom
    resource per hour (``stage_timeouts``), each with the cleanup's properties plus
    ``Cleanup``, its ``TotalTimeoutSeconds`` and, past one hour, ``Stage`` and ``Stages``;
    stage 1 is ``logical_id``, then ``<logical_id>Stage2``... CloudFormation deletes them
    one after another, ``stage_gap`` apart, on the same clock, each under the Provider's
    waiter (total timeout an hour, query interval ``timing.query_interval``); a failed stage
    fails the stack's deletion and the stages after it do not run. ``None``: one resource
    with no TotalTimeoutSeconds and no waiter limit, ``timing``'s total timeout (the cap lifted).

    ``properties`` are the resource's (default: the run's jobs by id, without force);
    ``tagging`` is the tagging API client the handler gets (none by default). The
    handler's container starts cold (no job facts kept from another scenario, whose jobs
    may have the same ids and creation times) and stays warm for the whole cleanup, its
    stages included.
    """
    handler.forget_cached_facts()
    client = CountingClient(LifecycleClient(lifecycle), sim, run.log, latency)
    rng = random.Random(seed)
    common = {
        "client": client,
        "tagging": tagging,
        "cloudformation": StackStatusClient("DELETE_IN_PROGRESS"),  # the stack is torn down
        "timing": timing,
        "clock": sim.now,
        "sleep": sim.sleep,
        "random": rng.random,
    }
    timeouts: list[float | None] = [None] if total_timeout is None else list(stage_timeouts(total_timeout))
    run.started = sim.now()
    for number, timeout in enumerate(timeouts, start=1):
        if number > 1:
            sim.sleep(stage_gap)  # CloudFormation goes on to the next stage's Delete
        stage = _run_stage(
            handler,
            sim,
            run,
            common,
            number=number,
            timeout=timeout,
            stages=len(timeouts),
            logical_id=logical_id,
            properties=dict(properties or {"JobIds": run.job_ids, "Force": "false"}),
            query_interval=timing.query_interval,
            lambda_timeout=lambda_timeout,
            on_event_timeout=on_event_timeout,
        )
        run.stages.append(stage)
        if stage.failure:  # the stack's deletion fails: CloudFormation deletes no more stages
            run.failure = stage.failure
            break
    run.finished = sim.now()


def _run_stage(
    handler: ModuleType,
    sim: SimTime,
    run: ResourceRun,
    common: Mapping[str, Any],
    *,
    number: int,
    stages: int,
    timeout: float | None,
    logical_id: str,
    properties: dict[str, Any],
    query_interval: float,
    lambda_timeout: float,
    on_event_timeout: float,
) -> StageRun:
    """One stage's Delete through the Provider, as CloudFormation sends it."""
    resource_id = logical_id if number == 1 else f"{logical_id}Stage{number}"
    if timeout is not None:
        properties["Cleanup"] = logical_id  # the construct's path: every stage shares it
        properties["TotalTimeoutSeconds"] = f"{timeout:g}"
        if stages > 1:
            properties["Stage"], properties["Stages"] = str(number), str(stages)
    request = {
        "RequestType": "Delete",
        "LogicalResourceId": resource_id,
        "StackId": f"arn:aws:cloudformation:{OFFLINE_REGION}:{OFFLINE_ACCOUNT}:stack/Benchmark/1",
        "PhysicalResourceId": f"iot-job-cleanup:{resource_id}",
        "ResourceType": RESOURCE_TYPE,
        "ResourceProperties": properties,
    }
    stage = StageRun(number, stages, timeout, started=sim.now())
    calls_before = run.log.count()

    def timed(name: str, call: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
        """One Lambda invocation: counted, and its duration added to the Lambda seconds."""
        began = sim.now()
        try:
            return call()
        finally:
            seconds = sim.now() - began
            run.invocations += 1
            run.lambda_seconds += seconds
            stage.invocations += 1
            stage.lambda_seconds += seconds
            if name == "on_event":
                stage.on_event_seconds += seconds

    hand_overs = _HandOvers(resource_id)
    logger = logging.getLogger("iot_job_cleanup")
    logger.addHandler(hand_overs)
    try:
        run_request(
            request,
            EntryPoint.of(handler, "on_event", **common, remaining_lambda_seconds=on_event_timeout),
            EntryPoint.of(handler, "is_complete", **common, remaining_lambda_seconds=lambda_timeout),
            sleep=sim.sleep,
            query_interval=query_interval,
            max_attempts=None if timeout is None else waiter_attempts(STAGE_SECONDS, query_interval),
            invocation=timed,
        )
    except Exception as exc:  # the Provider turns any exception into a failed resource
        stage.failure = f"{type(exc).__name__}: {exc}"
    finally:
        logger.removeHandler(hand_overs)
    stage.finished = sim.now()
    if timeout is not None and stage.seconds > timeout and not stage.failure:
        # CloudFormation would have failed the resource at its ServiceTimeout.
        stage.failure = (
            f"stage {number} of {stages} ran {stage.seconds:.0f} s, past its ServiceTimeout {timeout:g} s"
        )
    stage.handed_over = bool(hand_overs.records)
    if hand_overs.records:
        stage.jobs_left_at_hand_over = getattr(hand_overs.records[-1], "jobsLeft", None)
    calls = run.log.calls[calls_before:]
    stage.first_deletion = next(
        (call.at for call in calls if call.operation == "delete_job" and not call.code), None
    )
    return stage


class _HandOvers(logging.Handler):
    """Collects the handler's "stage k of n hands over" records of one stage's resource."""

    def __init__(self, resource_id: str) -> None:
        super().__init__(logging.INFO)
        self.resource_id = resource_id
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        ours = getattr(record, "logicalResourceId", None) == self.resource_id
        if ours and getattr(record, "handedOver", False):
            self.records.append(record)


# --------------------------------------------------------------------------- where the time goes


@dataclass(frozen=True)
class HandOver:
    """One stage's hand-over to the next: from its end to the next one's first deletion."""

    resource: int
    stage: int  # the stage that handed over (k of n)
    at: float  # when, from the cleanup's start
    stage_seconds: float  # how long stage k ran (its hour less the report margin, about)
    jobs_left: int | None
    gap: float  # CloudFormation's step to the next stage
    next_on_event: float  # the next stage's on_event: the stack's status, its first looks
    pause: float  # stage k's end to stage k+1's first DeleteJob (no deletion starts)
    idle_slot_seconds: float  # free slots over the pause, times its length


@dataclass(frozen=True)
class Losses:
    """makespan - bound, split by where the slots stood idle (slot-seconds / slots) and what
    came after the last job was gone. With the slot bound binding, exactly:
    makespan = bound + (start + hand_overs + between + last_round) + report."""

    bound: float
    makespan: float
    last_gone: float
    start: float  # before the first deletion: stage 1's on_event (stack status, a look at each job)
    hand_overs: float  # from a stage's end to the next stage's first deletion
    between: float  # every other moment a job waited while a slot was free (the poll grid)
    last_round: float  # after the last deletion started: nothing left to start
    report: float  # from the last job gone to the destroy's end: final looks, later stages
    pauses: list[HandOver] = field(default_factory=list)

    @property
    def slots_part(self) -> float:
        return self.start + self.hand_overs + self.between + self.last_round


def _merged(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for begin, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


def idle_slot_seconds(
    deletions: dict[str, tuple[float, float]], slots: int, intervals: list[tuple[float, float]]
) -> float:
    """Free slot-seconds (slots less our deletions under way) over the union of the intervals."""
    changes = sorted(
        [(start, 1) for start, _ in deletions.values()]
        + [(start + seconds, -1) for start, seconds in deletions.values()]
    )
    total = 0.0
    for begin, end in _merged(intervals):
        busy = sum(step for at, step in changes if at <= begin)
        at_ = begin
        for when, step in changes:
            if when <= begin:
                continue
            if when >= end:
                break
            total += (slots - busy) * (when - at_)
            busy += step
            at_ = when
        total += (slots - busy) * (end - at_)
    return total


def cleanup_losses(
    runs: list[ResourceRun],
    deletions: dict[str, tuple[float, float]],
    slots: int,
    bound: float,
    makespan: float,
) -> Losses:
    """Where a cleanup's time beyond the bound went: its slots' idle time, and the end."""
    starts = sorted(start for start, _ in deletions.values())
    first, last_start = starts[0], starts[-1]
    last_gone = max(start + seconds for start, seconds in deletions.values())
    began = min(run.started for run in runs)
    pauses: list[HandOver] = []
    for index, run in enumerate(runs):
        for stage, after in itertools.pairwise(run.stages):
            if not stage.handed_over:
                continue
            resumed = after.first_deletion if after.first_deletion is not None else after.finished
            pauses.append(
                HandOver(
                    resource=index,
                    stage=stage.number,
                    at=stage.finished - began,
                    stage_seconds=stage.seconds,
                    jobs_left=stage.jobs_left_at_hand_over,
                    gap=after.started - stage.finished,
                    next_on_event=after.on_event_seconds,
                    pause=resumed - stage.finished,
                    idle_slot_seconds=idle_slot_seconds(deletions, slots, [(stage.finished, resumed)]),
                )
            )
    windows = [(max(first, began + p.at), min(last_start, began + p.at + p.pause)) for p in pauses]
    in_hand_overs = idle_slot_seconds(deletions, slots, windows)
    return Losses(
        bound=bound,
        makespan=makespan,
        last_gone=last_gone - began,
        start=idle_slot_seconds(deletions, slots, [(began, first)]) / slots,
        hand_overs=in_hand_overs / slots,
        between=(idle_slot_seconds(deletions, slots, [(first, last_start)]) - in_hand_overs) / slots,
        last_round=idle_slot_seconds(deletions, slots, [(last_start, last_gone)]) / slots,
        report=makespan - (last_gone - began),
        pauses=pauses,
    )


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
