"""Fault injection, other actors and an independent oracle, to check the trust invariants (issue 12).

A ``World`` is an offline account: the emulator's IoT (``DeletionLifecycle`` answered
in-process by ``LifecycleClient``), the cleanup's CloudFormation stack (``StackStatusClient``)
and optionally the tagging API, in simulated time (``Clock``). Each client the engine gets is
a ``FaultyClient``: for any operation, at a chosen call (by count, job id or a predicate on
the call), a ``Fault`` can

- answer an error before IoT acted (``throttled``, ``unavailable``, ``connection_error``,
  ``denied``, ``invalid_request``, ``client_error(code, status)``),
- lose the answer after IoT acted (``lost=True``: the call raises, e.g. ``read_timeout``),
- let another actor race the engine at that moment (``race=``: before the call reaches IoT,
  or with ``phase="after"`` once IoT answered), with the ``Race`` actions below.

Other actors can also act while the engine waits: ``World.at_pause(n, race)`` runs a race at
the engine's n-th sleep of at least ``PAUSE`` seconds, so whatever the engine knew from before
it is stale. Those are the pauses between its rounds (every 2 s, or every second while others
delete too) and between waiter invocations, and also a call's wait for its turn at IoT's rate
(at most just over a second, before the call it holds back: a race there is less than
``FRESH`` seconds before that call, so I1 excuses what the engine could not have seen).

``World.iam`` models the construct's policy for a selection: named jobs by ARN; with a
prefix, only ``job/<prefix>*``; with tags, DescribeJob, DeleteJob and CancelJob conditioned
on ``aws:ResourceTag`` for every tag, so a job without them answers AccessDeniedException.

Every CancelJob and DeleteJob the engine sends is recorded (``Journal.actions``) with the
world's truth at that moment, before any race injected at that very call: did the job match
the selection, which incarnation of the id it was, whether the engine had cancelled that
incarnation, when the engine last looked at it and when another actor last changed it.
Every AccessDenied answer is recorded too (``Journal.denials``).

``Chosen`` is a selection and the oracle of which jobs it selects, written apart from the
engine's ``Selection`` on purpose: named ids by id; otherwise every filter (id prefix, every
tag, a target in any of the thing groups, by the ARN's resource part) and the namespace.

``check_trust`` (or ``trust_violations``) judges a run against I1-I4:

I1  every CancelJob/DeleteJob was for a job the selection selects at that moment; with a
    drain time, DeleteJob never reaches a running job (a job created again under a drained
    job's id is cancelled first). Excused: a change by another actor after the engine's last
    look at the job and less than ``FRESH`` seconds before the call (no look can see it).
I2  a success (IsComplete true, exit 0) leaves no selected job, DELETION_IN_PROGRESS ones
    included. Excused: a job changed at or after ``excuse_after``; and the final look's
    window: a named job another actor changed after the engine's last look at it, when that
    look came after the engine's last DeleteJob (of any job) and the job is neither running
    nor being deleted at the end (those the engine lists after its last look).
I3  an AccessDenied on a job the selection selects (IAM's tag conditions cannot explain it)
    never ends in success with the job left, and the failure names the job, the call, the
    error and what to check (an SCP, a permissions boundary).
I4  the Lambda path raises only the engine's ``CleanupError`` subclasses (never a botocore
    error, a ``TransientError`` or the waiter's own timeout); the command line returns 0, 1,
    2 or 130 and never shows a traceback or a raw botocore message. Neither may run past
    ``Clock.limit`` of simulated time.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from moto.iot.models import IoTBackend

import iot_job_cleanup_handler as handler
from iot_job_cleanup import cli
from iot_job_cleanup.emulator import (
    DeletionLifecycle,
    DeletionTime,
    LifecycleClient,
    StackRecord,
    StackStatusClient,
    TaggingClient,
)
from iot_job_cleanup.provider import EntryPoint, ProviderTimeoutError, run_request
from iot_job_cleanup_handler import Timing
from support import ACCOUNT, REGION, SimClock

STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/OtaFleet/6f1e2a40-cbf4-11f0-9a3e-0a1b2c3d4e5f"
ENDPOINT = f"https://iot.{REGION}.amazonaws.com"
RUNNING = frozenset({"IN_PROGRESS", "SCHEDULED"})
DELETING = "DELETION_IN_PROGRESS"
FRESH = 2.0  # seconds: a change this close before a call, after the engine's last look, is excused
# seconds: a sleep this long or longer is where other actors may move (``World.at_pause``):
# the pauses between rounds (2 s; 1 s while others delete too) and between invocations, and a
# call's wait for its turn at IoT's rate (up to just over 1 s, just before that call)
PAUSE = 0.95
TIMING = handler.Timing(
    query_interval=10, total_timeout=3600, poll_interval=2, poll_window=60, report_margin=30
)
SCP_HINT = re.compile(r"service control polic|\bSCP\b|permissions? boundar", re.IGNORECASE)
BOTOCORE_TEXT = re.compile(r"An error occurred \(|when calling the \w+ operation|Traceback \(most recent")


def group_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{name}"


def thing_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"


def _target(spec: str) -> str:
    """A group name ("fleet"), "thing:NAME", or an ARN as it is."""
    if spec.startswith("arn:"):
        return spec
    if spec.startswith("thing:"):
        return thing_arn(spec.removeprefix("thing:"))
    return group_arn(spec)


def _group_of(target: str) -> str | None:
    """The thing group an ARN names, read from the ARN's resource part (the oracle's own)."""
    parts = target.split(":", 5)
    if len(parts) != 6 or parts[2] != "iot":
        return None
    kind, _, name = parts[5].partition("/")
    return name if kind == "thinggroup" and name else None


# --------------------------------------------------------------------------- what the trust tests share

PATHS = ["lambda", "cli"]  # the Lambda entry points, and the command line
LONG_WINDOW = Timing(
    query_interval=10, total_timeout=3600, poll_interval=2, poll_window=600, report_margin=30
)
OURS = {"fleet": "demo"}
OUR_TAGS = (("fleet", "demo"),)


def named(count: int, prefix: str = "ota") -> tuple[str, ...]:
    return tuple(f"{prefix}-{index:03d}" for index in range(count))


# --------------------------------------------------------------------------- simulated time


class SimulatedTimeExhaustedError(BaseException):
    """The run went on past ``Clock.limit`` (or made more calls than the cap): it would hang.

    A BaseException, so the engine's own ``except Exception`` does not take it for an error of AWS.
    """


@dataclass
class Clock(SimClock):
    """The tests' simulated clock, bounded (a run past ``limit`` would hang), telling the
    ``on_sleep`` hooks after each pause."""

    limit: float = 12 * 3600.0  # simulated seconds a run may last at most
    on_sleep: list[Callable[[float], None]] = field(default_factory=list)
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.now

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self.now - self.started > self.limit:
            raise SimulatedTimeExhaustedError(f"still running after {self.now - self.started:.0f} s")
        for hook in list(self.on_sleep):
            hook(seconds)


# --------------------------------------------------------------------------- the oracle


@dataclass(frozen=True)
class JobTruth:
    """A job as it really is, read from the emulator's state (no API call)."""

    job_id: str
    incarnation: int  # a job created again under its id is another incarnation
    status: str
    targets: tuple[str, ...]
    tags: Mapping[str, str]
    namespace: str | None
    devices_busy: int
    comment: str | None = None
    reason_code: str | None = None


@dataclass(frozen=True)
class Chosen:
    """A selection as a user writes it, and the oracle of which jobs it selects."""

    job_ids: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    groups: tuple[str, ...] = ()
    prefix: str | None = None
    namespace: str | None = None
    force: bool = False
    drain: float | None = None

    @property
    def has_filters(self) -> bool:
        return bool(self.tags or self.groups or self.prefix is not None)

    def selects(self, job: JobTruth | None) -> bool:
        if job is None:
            return False
        if job.job_id in self.job_ids:
            return True  # named: selected by id, whatever the job's history
        if not self.has_filters:
            return False
        if (job.namespace or None) != (self.namespace or None):
            return False
        if self.prefix is not None and job.job_id[: len(self.prefix)] != self.prefix:
            return False
        if any(key not in job.tags or job.tags[key] != value for key, value in self.tags):
            return False
        return not self.groups or bool({_group_of(target) for target in job.targets} & set(self.groups))

    def iam_allows(self, operation: str, job_id: str, job: JobTruth | None) -> bool:
        """The construct's policy for this selection (see the module's docstring)."""
        if operation in ("ListJobs", "GetResources", "DescribeStacks") or job_id in self.job_ids:
            return True
        if not self.has_filters:
            return False
        if self.prefix is not None and not job_id.startswith(self.prefix):
            return False
        if operation in ("DescribeJob", "DeleteJob", "CancelJob") and self.tags:
            return job is not None and all(job.tags.get(key) == value for key, value in self.tags)
        return True

    def properties(self) -> dict[str, Any]:
        """The resource properties the construct would render (CloudFormation's strings)."""
        properties: dict[str, Any] = {"Force": "true" if self.force else "false"}
        if self.job_ids or not self.has_filters:
            properties["JobIds"] = list(self.job_ids)
        if self.tags:
            properties["JobTags"] = [{"Key": key, "Value": value} for key, value in self.tags]
        if self.groups:
            properties["ThingGroupNames"] = list(self.groups)
        if self.prefix is not None:
            properties["JobIdPrefix"] = self.prefix
        if self.namespace:
            properties["NamespaceId"] = self.namespace
        if self.drain is not None:
            properties["DrainSeconds"] = f"{self.drain:g}"
        return properties

    def argv(self) -> list[str]:
        """The same selection for ``iot-job-cleanup delete``."""
        args: list[str] = []
        for job_id in self.job_ids:
            args += ["--job-id", job_id]
        for key, value in self.tags:
            args += ["--tag", f"{key}={value}"]
        for group in self.groups:
            args += ["--thing-group", group]
        if self.prefix is not None:
            args += ["--prefix", self.prefix]
        if self.namespace:
            args += ["--namespace-id", self.namespace]
        if self.force:
            args.append("--force")
        if self.drain is not None:
            args += ["--drain", f"{self.drain:g}"]
        return args


# --------------------------------------------------------------------------- what happened


@dataclass
class Call:
    """One call the engine made, as a fault sees it."""

    service: str
    operation: str  # the API's name: DeleteJob
    n: int  # the n-th call of this operation on this client (from 1)
    params: Mapping[str, Any]
    job_id: str | None
    at: float
    answer: Any = None
    error: str | None = None  # the code the call raised, if it raised one

    @property
    def force(self) -> bool:
        return bool(self.params.get("force"))


@dataclass(frozen=True)
class Action:
    """A CancelJob or DeleteJob the engine sent, with the truth at that moment."""

    operation: str
    job_id: str
    at: float
    force: bool
    truth: JobTruth | None  # before any race injected at this very call
    selected: bool
    cancelled_by_engine: bool  # this incarnation was cancelled by an earlier CancelJob of the engine
    last_look_at: float | None  # the engine's last DescribeJob answer about this id
    changed_at: float | None  # another actor's last change to this id
    iam_denied: bool = False  # the IAM model refused it: nothing was touched
    outcome: str = "ok"  # "ok", the error code, or "lost"


@dataclass(frozen=True)
class Denial:
    """An AccessDenied answered to the engine about a job."""

    operation: str
    job_id: str
    at: float
    selected: bool  # the selection selects the job: IAM's tag conditions cannot explain it
    injected: bool  # an injected fault (an SCP, a boundary), not the IAM model


@dataclass
class Journal:
    calls: list[Call] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    denials: list[Denial] = field(default_factory=list)
    races: list[tuple[float, str]] = field(default_factory=list)

    def count(self, operation: str, job_id: str | None = None) -> int:
        return sum(1 for c in self.calls if c.operation == operation and job_id in (None, c.job_id))

    def sent(self, operation: str, job_id: str | None = None) -> list[Action]:
        return [a for a in self.actions if a.operation == operation and job_id in (None, a.job_id)]


# --------------------------------------------------------------------------- errors to inject

ErrorFactory = Callable[[Call], Exception]


def client_error(code: str, status: int = 400, message: str | None = None) -> ErrorFactory:
    def make(call: Call) -> Exception:
        return ClientError(
            {
                "Error": {"Code": code, "Message": message or f"injected {code}"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            },
            call.operation,
        )

    make.__name__ = code
    return make


throttled = client_error("ThrottlingException", 400, "Rate exceeded")
unavailable = client_error("ServiceUnavailableException", 503, "Service unavailable")
internal_failure = client_error("InternalFailureException", 500)
invalid_request = client_error("InvalidRequestException", 400)


def denied(call: Call) -> Exception:
    """AccessDeniedException as IAM words it (it does not say which policy denied)."""
    resource = f"arn:aws:iot:{REGION}:{ACCOUNT}:job/{call.job_id}" if call.job_id else "*"
    action = f"iot:{call.operation}"
    return client_error(
        "AccessDeniedException",
        403,
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/cleanup-handler/fn is not authorized to perform: "
        f"{action} on resource: {resource}",
    )(call)


def connection_error(call: Call) -> Exception:
    return EndpointConnectionError(endpoint_url=ENDPOINT)


def read_timeout(call: Call) -> Exception:
    return ReadTimeoutError(endpoint_url=ENDPOINT)


# --------------------------------------------------------------------------- other actors


@dataclass(frozen=True)
class Race:
    """Another actor's move; ``job_id`` is the job it changes (None: none in particular)."""

    name: str
    job_id: str | None
    act: Callable[[World], None] = field(repr=False, compare=False)

    def __call__(self, world: World) -> None:
        self.act(world)
        world.journal.races.append((world.clock(), repr(self)))
        if self.job_id is not None:
            world.changed_at[self.job_id] = world.clock()
            world.changed_seq[self.job_id] = world.total_calls

    def __repr__(self) -> str:
        return f"{self.name}({self.job_id or ''})"


def _exists(world: World, job_id: str) -> bool:
    world.lifecycle.settle()
    return world.lifecycle.exists(job_id)


def removed(job_id: str) -> Race:
    """Someone deleted the job, and the deletion has finished."""
    return Race("removed", job_id, lambda w: w.lifecycle.remove_job(job_id) if _exists(w, job_id) else None)


def recreated(job_id: str, **job: Any) -> Race:
    """Someone deleted the job and created another under its id (``World.job``'s arguments)."""

    def act(world: World) -> None:
        world.lifecycle.remove_job(job_id)
        world.job(job_id, **job)

    return Race(f"recreated[{_short(job)}]", job_id, act)


def created(job_id: str, **job: Any) -> Race:
    """Someone creates a job (if no job has the id now)."""
    return Race(
        f"created[{_short(job)}]", job_id, lambda w: None if _exists(w, job_id) else w.job(job_id, **job)
    )


def cancelled(job_id: str, force: bool = False) -> Race:
    def act(world: World) -> None:
        job = world.truth(job_id)
        if job is not None and job.status in RUNNING:
            world.lifecycle.cancel_outside(job_id, force=force, comment="cancelled by an operator")

    return Race("cancelled", job_id, act)


def finished(job_id: str) -> Race:
    """The job's devices all finished: it is COMPLETED (a cancelled one stays CANCELED, devices idle)."""

    def act(world: World) -> None:
        job = world.truth(job_id)
        if job is None or job.status == DELETING:
            return
        if job.status in RUNNING:
            world.lifecycle.finish_job(job_id)
        elif job.devices_busy:
            world.lifecycle.finish_executions(job_id)

    return Race("finished", job_id, act)


def retagged(job_id: str, tags: Mapping[str, str]) -> Race:
    def act(world: World) -> None:
        if _exists(world, job_id):
            world.lifecycle.tags[job_id] = dict(tags)

    return Race(f"retagged[{dict(tags)}]", job_id, act)


def outside_deletion(job_id: str, seconds: float = 45.0) -> Race:
    """Someone else starts deleting the job (with force): it is DELETION_IN_PROGRESS for ``seconds``."""

    def act(world: World) -> None:
        job = world.truth(job_id)
        if job is not None and job.status != DELETING:
            world.lifecycle.start_deletion(job_id, seconds)

    return Race("outside_deletion", job_id, act)


def group_deleted(name: str) -> Race:
    return Race(f"group_deleted[{name}]", None, lambda w: w.lifecycle.delete_thing_group(name))


def _short(job: Mapping[str, Any]) -> str:
    return ",".join(f"{key}={value}" for key, value in job.items())


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    """What happens at the calls it matches.

    ``operation``: the API's name ("DeleteJob") or boto3's ("delete_job"); None: any.
    ``at``: the n-th call of that operation (of any, without one). ``job``: only calls about
    that job id. ``when(call, world)``: any other condition (with ``phase="after"`` it sees
    ``call.answer``/``call.error``). ``times``: how many calls it acts on (None: all), each
    with probability ``rate`` (the world's seeded random). Then, in order: ``race`` (another
    actor moves), ``error`` (before IoT acted, unless ``lost``), ``lost`` (IoT acted, then the
    answer is lost: the call raises ``error``, a read timeout by default).
    """

    operation: str | None = None
    at: int | None = None
    job: str | None = None
    when: Callable[[Call, World], bool] | None = None
    times: int | None = 1
    rate: float = 1.0
    phase: str = "before"
    race: Callable[[World], None] | None = None
    error: ErrorFactory | None = None
    lost: bool = False
    fired: int = 0

    def __post_init__(self) -> None:
        if self.operation is not None:
            self.operation = api_name(self.operation)
        assert self.phase in ("before", "after"), self.phase
        assert not (self.phase == "after" and self.error and not self.lost), (
            "an error after IoT acted is lost"
        )

    def matches(self, call: Call, world: World, phase: str) -> bool:
        if self.phase != phase or (self.times is not None and self.fired >= self.times):
            return False
        if self.operation is not None and call.operation != self.operation:
            return False
        if self.at is not None and call.n != self.at:
            return False
        if self.job is not None and call.job_id != self.job:
            return False
        if self.when is not None and not self.when(call, world):
            return False
        if self.rate < 1.0 and world.rng.random() >= self.rate:
            return False
        self.fired += 1
        return True


def fail(operation: str | None, error: ErrorFactory, **match: Any) -> Fault:
    """An error before IoT acted."""
    return Fault(operation, error=error, **match)


def lose(operation: str | None, error: ErrorFactory = read_timeout, **match: Any) -> Fault:
    """IoT acts, then the answer is lost."""
    return Fault(operation, error=error, lost=True, **match)


def race(operation: str | None, move: Callable[[World], None], **match: Any) -> Fault:
    """Another actor moves at that call (``phase="after"``: once IoT answered it)."""
    return Fault(operation, race=move, **match)


def api_name(operation: str) -> str:
    return operation if "_" not in operation and operation[:1].isupper() else _camel(operation)


def _camel(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def _job_id_of(params: Mapping[str, Any]) -> str | None:
    if "jobId" in params:
        return str(params["jobId"])
    arn = params.get("resourceArn")
    return str(arn).rsplit("/", 1)[-1] if arn and ":job/" in str(arn) else None


def _code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


class FaultyClient:
    """A client the engine is given: every call goes through the world's faults and records."""

    def __init__(self, inner: Any, world: World, service: str) -> None:
        self._inner = inner
        self._world = world
        self._service = service
        self.faults: list[Fault] = []
        self.counts: Counter[str] = Counter()

    @property
    def inner(self) -> Any:
        return self._inner

    def inject(self, *faults: Fault) -> FaultyClient:
        self.faults.extend(faults)
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or not callable(getattr(self._inner, name, None)):
            raise AttributeError(name)
        return functools.partial(self._call, name)

    def _call(self, method: str, **params: Any) -> Any:
        world = self._world
        operation = api_name(method)
        self.counts[operation] += 1
        world.total_calls += 1
        if world.total_calls > world.call_cap:
            raise SimulatedTimeExhaustedError(f"more than {world.call_cap} calls")
        call = Call(
            self._service, operation, self.counts[operation], params, _job_id_of(params), world.clock()
        )
        world.journal.calls.append(call)
        if self._service == "iot" and operation == "DeleteJob":
            world.last_delete_seq = world.total_calls
        firing = [f for f in self.faults if f.matches(call, world, "before")]
        for fault in firing:
            if fault.race is not None:
                fault.race(world)
        before = world.truth(call.job_id) if call.job_id else None
        action = self._action(call, before)
        erring = [f for f in firing if f.error is not None and not f.lost]
        losing = [f for f in firing if f.lost]
        try:
            if self._service == "iot" and world.iam_denies(operation, call.job_id):
                if action is not None:
                    action = _with(action, iam_denied=True)
                raise denied(call)
            if erring:
                raise erring[0].error(call)  # type: ignore[misc]
            answer = getattr(self._inner, method)(**params)
        except Exception as exc:
            call.error = _code(exc)
            if operation == "DescribeJob" and call.error == "ResourceNotFoundException":
                world.look_seq[call.job_id or ""] = world.total_calls
            if action is not None:
                world.journal.actions.append(_with(action, outcome=call.error))
            self._note_denial(call, exc)
            self._after(call)
            raise
        call.answer = answer
        if operation == "DescribeJob":
            world.last_look[call.job_id or ""] = world.clock()
            world.look_seq[call.job_id or ""] = world.total_calls
        if operation == "CancelJob" and before is not None:
            world.cancelled_by_engine.add((before.job_id, before.incarnation))
        if action is not None:
            world.journal.actions.append(_with(action, outcome="lost" if losing else "ok"))
        self._after(call)
        if losing:
            exc = (losing[0].error or read_timeout)(call)
            call.error = _code(exc)
            raise exc
        return answer

    def _after(self, call: Call) -> None:
        for fault in [f for f in self.faults if f.matches(call, self._world, "after")]:
            if fault.race is not None:
                fault.race(self._world)

    def _action(self, call: Call, truth: JobTruth | None) -> Action | None:
        if call.operation not in ("CancelJob", "DeleteJob") or call.job_id is None:
            return None
        world = self._world
        return Action(
            operation=call.operation,
            job_id=call.job_id,
            at=call.at,
            force=call.force,
            truth=truth,
            selected=world.chosen.selects(truth) if world.chosen else True,
            cancelled_by_engine=truth is not None
            and (truth.job_id, truth.incarnation) in world.cancelled_by_engine,
            last_look_at=world.last_look.get(call.job_id),
            changed_at=world.changed_at.get(call.job_id),
        )

    def _note_denial(self, call: Call, exc: BaseException) -> None:
        if call.job_id is None or _code(exc) not in ("AccessDeniedException", "AccessDenied"):
            return
        world = self._world
        truth = world.truth(call.job_id)
        injected = not world.iam_denies(call.operation, call.job_id)
        selected = world.chosen.selects(truth) if world.chosen else True
        world.journal.denials.append(Denial(call.operation, call.job_id, call.at, selected, injected))


def _with(action: Action, **changes: Any) -> Action:
    return Action(**{**action.__dict__, **changes})


# --------------------------------------------------------------------------- the world


class World:
    """An offline account with IoT jobs, the cleanup's stack, other actors and faults."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        deletion_seconds: float = 30.0,
        per_target_seconds: float = 0.0,
        tags_page_size: int | None = None,
        slots: int = 10,
        seed: int = 0,
        tagging_api: bool = False,
        stacks: Mapping[str, StackRecord | tuple[str, str | None]] | None = None,
        call_cap: int = 200_000,
        iam_denies_missing: bool = False,
    ) -> None:
        self.clock = clock or Clock()
        self.lifecycle = DeletionLifecycle(
            IoTBackend(REGION, ACCOUNT),
            clock=self.clock,
            deletion_time=DeletionTime(deletion_seconds, per_target_seconds),
            slots=slots,
            tags_page_size=tags_page_size,
        )
        self.rng = random.Random(seed)
        self.journal = Journal()
        self.chosen: Chosen | None = None  # the selection the records are judged by
        self.iam: Chosen | None = None  # the IAM model: the construct's policy for this selection
        self.iam_denies_missing = iam_denies_missing
        self.iot = FaultyClient(LifecycleClient(self.lifecycle), self, "iot")
        self.cloudformation = FaultyClient(
            StackStatusClient(stacks=dict(stacks or {STACK_ID: StackRecord("DELETE_IN_PROGRESS")})),
            self,
            "cloudformation",
        )
        self.tagging = (
            FaultyClient(TaggingClient(self.lifecycle, serves_iot_jobs=True), self, "tagging")
            if tagging_api
            else None
        )
        self.changed_at: dict[str, float] = {}
        self.last_look: dict[str, float] = {}
        # In calls made so far (simulated time stands still within a round): another actor's
        # last change to an id, the engine's last DescribeJob answered about it (gone too),
        # and the engine's last DeleteJob.
        self.changed_seq: dict[str, int] = {}
        self.look_seq: dict[str, int] = {}
        self.last_delete_seq = -1
        self.cancelled_by_engine: set[tuple[str, int]] = set()
        self.total_calls = 0
        self.call_cap = call_cap
        self.pauses = 0
        self.pause_times: list[float] = []
        self._at_pause: dict[int, list[Callable[[World], None]]] = {}
        self._when_paused: list[tuple[Callable[[World], bool], Callable[[World], None]]] = []
        self.clock.on_sleep.append(self._paused)

    # -- making it

    def job(
        self,
        job_id: str,
        *,
        targets: Iterable[str] = ("fleet",),
        status: str = "COMPLETED",
        tags: Mapping[str, str] | None = None,
        namespace: str | None = None,
        finish_in: float = math.inf,
        busy_after_cancel: bool = False,
    ) -> str:
        """A job; ``busy_after_cancel``: someone cancelled it and its devices are still at work
        (``finish_in`` seconds more)."""
        self.lifecycle.create_job(
            job_id,
            targets=[_target(t) for t in targets],
            status="IN_PROGRESS" if busy_after_cancel else status,
            namespace_id=namespace,
            tags=dict(tags or {}),
            executions_finish_in=finish_in,
        )
        if busy_after_cancel:
            self.lifecycle.cancel_outside(job_id, comment="cancelled by an operator")
        return job_id

    def select(self, chosen: Chosen, *, iam: bool = True) -> Chosen:
        """The selection records are judged by; with ``iam`` the construct's policy applies."""
        self.chosen = chosen
        self.iam = chosen if iam else None
        return chosen

    def iam_denies(self, operation: str, job_id: str | None) -> bool:
        """Whether the IAM model refuses the call. A job that does not exist is IoT's to answer
        (404) unless ``iam_denies_missing``: whether a tag condition on a missing job answers
        AccessDenied instead is undocumented."""
        if self.iam is None or job_id is None:
            return False
        truth = self.truth(job_id)
        if truth is None and not self.iam_denies_missing:
            return False
        return not self.iam.iam_allows(operation, job_id, truth)

    def at_pause(self, n: int, move: Callable[[World], None]) -> None:
        """Another actor moves at the engine's n-th pause of at least PAUSE seconds (from 1)."""
        self._at_pause.setdefault(n, []).append(move)

    def at_pause_when(self, condition: Callable[[World], bool], move: Callable[[World], None]) -> None:
        """Another actor moves at the first pause of at least PAUSE seconds where ``condition`` holds."""
        self._when_paused.append((condition, move))

    def _paused(self, seconds: float) -> None:
        if seconds < PAUSE:
            return
        self.pauses += 1
        self.pause_times.append(self.clock())
        for move in self._at_pause.pop(self.pauses, []):
            move(self)
        for entry in list(self._when_paused):
            condition, move = entry
            if condition(self):
                self._when_paused.remove(entry)
                move(self)

    @property
    def last_pause_at(self) -> float | None:
        return self.pause_times[-1] if self.pause_times else None

    def set_stack_status(self, status: str, stack_id: str = STACK_ID) -> None:
        self.cloudformation.inner.set_status(stack_id, status)

    # -- the truth

    def truth(self, job_id: str | None) -> JobTruth | None:
        if job_id is None:
            return None
        lifecycle = self.lifecycle
        with lifecycle.locked():
            lifecycle.settle()
            job = lifecycle.snapshot_of(job_id)
        if job is None:
            return None
        return JobTruth(
            job_id=job_id,
            incarnation=job.sequence,
            status=job.status,
            targets=job.targets,
            tags=job.tags,
            namespace=job.namespace_id,
            devices_busy=job.in_progress_things,
            comment=job.comment,
            reason_code=job.reason_code,
        )

    def existing(self) -> set[str]:
        with self.lifecycle.locked():
            self.lifecycle.settle()
            return set(self.lifecycle.job_ids())

    def selected_left(self, chosen: Chosen | None = None) -> list[str]:
        chosen = chosen or self.chosen
        assert chosen is not None
        return sorted(job_id for job_id in self.existing() if chosen.selects(self.truth(job_id)))


# --------------------------------------------------------------------------- running the engine


@dataclass
class Outcome:
    path: str  # "lambda" or "cli"
    succeeded: bool
    error: BaseException | None = None
    exit_code: int | None = None
    output: str = ""
    elapsed: float = 0.0
    hung: bool = False

    @property
    def message(self) -> str:
        return self.output if self.path == "cli" else str(self.error or "")

    def __repr__(self) -> str:
        what = f"exit {self.exit_code}" if self.path == "cli" else ("SUCCESS" if self.succeeded else "FAILED")
        return f"<{self.path} {what} after {self.elapsed:.0f} s: {self.message[-600:]!r}>"


def delete_event(
    chosen: Chosen, *, stack_id: str = STACK_ID, properties: Mapping[str, Any] | None = None
) -> dict:
    return {
        "RequestType": "Delete",
        "LogicalResourceId": "OtaJobsCleanup",
        "StackId": stack_id,
        "ResourceType": "Custom::IotJobCleanup",
        "PhysicalResourceId": "iot-job-cleanup:OtaJobsCleanup",
        "ResourceProperties": {"ServiceToken": "arn:token", **(properties or chosen.properties())},
    }


def run_lambda(
    world: World,
    chosen: Chosen | None = None,
    *,
    timing: handler.Timing = TIMING,
    stack_id: str = STACK_ID,
    properties: Mapping[str, Any] | None = None,
) -> Outcome:
    """on_event, then is_complete every query interval, as the Provider's waiter does (cold container)."""
    chosen = chosen or world.chosen
    assert chosen is not None
    handler.forget_cached_facts()
    total = float((properties or chosen.properties()).get("TotalTimeoutSeconds") or timing.total_timeout)
    keywords = {
        "client": world.iot,
        "cloudformation": world.cloudformation,
        "tagging": world.tagging,
        "timing": timing,
        "clock": world.clock,
        "sleep": world.clock.sleep,
        "random": lambda: 0.5,
    }
    start = world.clock()
    try:
        run_request(
            delete_event(chosen, stack_id=stack_id, properties=properties),
            EntryPoint.of(handler, "on_event", **keywords),
            EntryPoint.of(handler, "is_complete", **keywords),
            sleep=world.clock.sleep,
            query_interval=timing.query_interval,
            max_attempts=int(total // timing.query_interval),
        )
    except SimulatedTimeExhaustedError as exc:
        return Outcome("lambda", False, exc, elapsed=world.clock() - start, hung=True)
    except Exception as exc:  # the Provider reports any exception as FAILED
        return Outcome("lambda", False, exc, elapsed=world.clock() - start)
    return Outcome("lambda", True, elapsed=world.clock() - start)


def run_cli(
    world: World, chosen: Chosen | None = None, *args: str, stdin: io.StringIO | None = None, yes: bool = True
) -> Outcome:
    """``iot-job-cleanup delete <selection> --yes`` with the world's clients; standard error captured."""
    chosen = chosen or world.chosen
    assert chosen is not None
    handler.forget_cached_facts()
    out, err = io.StringIO(), io.StringIO()
    start = world.clock()
    argv = ["delete", *chosen.argv(), *(["--yes"] if yes else []), *args]
    try:
        with contextlib.redirect_stderr(err):
            code = cli.main(
                argv,
                out=out,
                stdin=stdin or io.StringIO(""),
                clock=world.clock,
                sleep=world.clock.sleep,
                clients=cli.Clients(world.iot, world.tagging, world.cloudformation),
            )
    except SimulatedTimeExhaustedError as exc:
        return Outcome(
            "cli",
            False,
            exc,
            output=out.getvalue() + err.getvalue(),
            elapsed=world.clock() - start,
            hung=True,
        )
    except BaseException as exc:  # a crash of the command is what is judged
        return Outcome(
            "cli", False, exc, output=out.getvalue() + err.getvalue(), elapsed=world.clock() - start
        )
    return Outcome("cli", code == 0, None, code, out.getvalue() + err.getvalue(), world.clock() - start)


def run(path: str, world: World, chosen: Chosen | None = None, *, timing: handler.Timing = TIMING) -> Outcome:
    """The Lambda path (with ``timing``) or the command line, on the same world."""
    return run_lambda(world, chosen, timing=timing) if path == "lambda" else run_cli(world, chosen)


# --------------------------------------------------------------------------- the invariants


def i1_violations(world: World, chosen: Chosen | None = None) -> list[str]:
    chosen = chosen or world.chosen
    assert chosen is not None
    found = []
    for action in world.journal.actions:
        if action.iam_denied:
            continue  # IAM refused it: nothing was touched
        excused = (
            action.changed_at is not None
            and action.changed_at > (action.last_look_at if action.last_look_at is not None else -math.inf)
            and action.at - action.changed_at <= FRESH
        )
        if excused:
            continue
        truth = action.truth
        if not chosen.selects(truth) and truth is not None:
            found.append(
                f"I1: {action.operation} of {action.job_id!r} at +{action.at - world.clock.started:.0f} s, "
                f"but it does not match the selection (status {truth.status}, targets {list(truth.targets)}, "
                f"tags {dict(truth.tags)}, namespace {truth.namespace}); last changed by another actor at "
                f"{_ago(world, action.changed_at)}, last looked at {_ago(world, action.last_look_at)}"
            )
        elif (
            chosen.drain is not None
            and action.operation == "DeleteJob"
            and truth is not None
            and truth.status in RUNNING
        ):
            found.append(
                f"I1: DeleteJob(force={action.force}) of {action.job_id!r} while it was {truth.status}, "
                f"with a drain time: a running job is cancelled first (incarnation {truth.incarnation}, "
                f"cancelled by the engine: {action.cancelled_by_engine}; changed by another actor at "
                f"{_ago(world, action.changed_at)})"
            )
    return found


def _ago(world: World, at: float | None) -> str:
    return "never" if at is None else f"+{at - world.clock.started:.0f} s"


def _changed_after_its_final_look(world: World, job_id: str) -> bool:
    """I2's window: a named job changed by another actor after the engine's last look at it,
    that look made after the engine's last DeleteJob, and not running or being deleted now."""
    look, changed, truth = world.look_seq.get(job_id), world.changed_seq.get(job_id), world.truth(job_id)
    return (
        world.chosen is not None
        and job_id in world.chosen.job_ids
        and look is not None
        and changed is not None
        and world.last_delete_seq < look < changed
        and truth is not None
        and truth.status not in RUNNING | {DELETING}
    )


def i2_violations(world: World, outcome: Outcome, excuse_after: float | None = None) -> list[str]:
    if not outcome.succeeded:
        return []
    left = [
        job_id
        for job_id in world.selected_left()
        if (excuse_after is None or world.changed_at.get(job_id, -math.inf) < excuse_after)
        and not _changed_after_its_final_look(world, job_id)
    ]
    if not left:
        return []
    details = ", ".join(f"{job_id} ({world.truth(job_id).status})" for job_id in left[:10])  # type: ignore[union-attr]
    return [f"I2: {outcome.path} reported success with {len(left)} selected job(s) left: {details}"]


def i3_violations(world: World, outcome: Outcome) -> list[str]:
    left = set(world.selected_left())
    refused = [d for d in world.journal.denials if d.selected and d.job_id in left]
    if not refused:
        return []
    if outcome.succeeded:
        return [
            f"I3: {outcome.path} reported success after {d.operation} of {d.job_id!r} was refused "
            f"(AccessDeniedException), and the job is still there"
            for d in refused[:3]
        ]
    message = outcome.message
    for denial in refused:
        if (
            denial.job_id in message
            and denial.operation in message
            and "AccessDenied" in message
            and SCP_HINT.search(message)
        ):
            return []
    first = refused[0]
    return [
        f"I3: {first.operation} of {first.job_id!r} was refused with AccessDeniedException, and the failure "
        f"does not name the job, the call ({first.operation}), the error and what to check (an SCP, a "
        f"permissions boundary): {message[-500:]!r}"
    ]


def i4_violations(outcome: Outcome) -> list[str]:
    if outcome.hung:
        return [f"I4: {outcome.path} never finished: {outcome.error}"]
    found = []
    if outcome.path == "lambda":
        error = outcome.error
        if isinstance(error, ProviderTimeoutError):
            found.append("I4: the waiter's own timeout came first: the engine never said which jobs are left")
        elif error is not None and not isinstance(error, handler.CleanupError):
            found.append(
                f"I4: {type(error).__module__}.{type(error).__name__} reached CloudFormation: {error}"
            )
    else:
        if outcome.error is not None:
            found.append(f"I4: the command line raised {type(outcome.error).__name__}: {outcome.error}")
        elif outcome.exit_code not in (0, 1, 2, 130):
            found.append(f"I4: the command line exited {outcome.exit_code}")
    if BOTOCORE_TEXT.search(outcome.message):
        found.append(f"I4: a raw botocore error or traceback reached the user: {outcome.message[-400:]!r}")
    return found


def trust_violations(world: World, outcome: Outcome, *, excuse_after: float | None = None) -> list[str]:
    return [
        *i1_violations(world),
        *i2_violations(world, outcome, excuse_after),
        *i3_violations(world, outcome),
        *i4_violations(outcome),
    ]


def check_trust(world: World, outcome: Outcome, *, excuse_after: float | None = None) -> None:
    violations = trust_violations(world, outcome, excuse_after=excuse_after)
    assert not violations, "\n".join([*violations, f"outcome: {outcome!r}", f"races: {world.journal.races}"])
