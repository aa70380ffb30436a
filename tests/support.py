"""What the tests share: simulated time, the emulated account, injected errors, one way
to run the handler's entry points (the Provider framework's driver, ``provider.run_request``),
moto's server on loopback for the command line (an ``Endpoint``, the stacks its CloudFormation
answers), and the lines of the processes the tests start.

Fixtures live in ``conftest.py`` and build on these; test modules import from here, never
from each other.
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import queue
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from moto.cloudformation.models import cloudformation_backends
from moto.iot.models import iot_backends

import iot_job_cleanup_handler as handler
from iot_job_cleanup import cli
from iot_job_cleanup.cfn import OFFLINE_ACCOUNT, OFFLINE_REGION, RESOURCE_TYPE
from iot_job_cleanup.emulator import (
    DeletionLifecycle,
    DeletionTime,
    emulated_iot,
    emulated_stack,
    set_stack_status,
)
from iot_job_cleanup.provider import EntryPoint, run_request
from iot_job_cleanup.rehearse import free_port
from iot_job_cleanup_handler import Timing

ACCOUNT = OFFLINE_ACCOUNT
REGION = OFFLINE_REGION
THING_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/sensor-1"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/OtaFleet/6f1e2a40-cbf4-11f0-9a3e-0a1b2c3d4e5f"
FLEET = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/fleet"
REPO = Path(__file__).resolve().parents[1]
PYTHONPATH = os.pathsep.join([str(REPO / "constructs"), str(REPO / "lambda")])  # the library and the engine


# --------------------------------------------------------------------------- time and the account


@dataclass
class SimClock:
    """Simulated wall clock; ``sleep`` advances it and records each pause."""

    now: float = 1_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Iot:
    """IoT with the DeletionLifecycle, and the CloudFormation stack the cleanup lives in.

    The stack starts in DELETE_IN_PROGRESS: a Delete event is a stack teardown unless a
    test puts the stack in another status.
    """

    client: object
    lifecycle: DeletionLifecycle
    cloudformation: object

    def stack_status(self, status: str) -> None:
        set_stack_status(ACCOUNT, REGION, STACK_ID, status)

    def create_jobs(
        self, *job_ids: str, status: str = "COMPLETED", namespace_id: str | None = None, things: int = 1
    ) -> None:
        targets = [f"{THING_ARN}-{index}" for index in range(things)]
        for job_id in job_ids:
            self.lifecycle.create_job(job_id, targets=targets, status=status, namespace_id=namespace_id)

    def existing(self) -> set[str]:
        self.lifecycle.settle()
        return set(self.lifecycle.job_ids())

    def status(self, job_id: str) -> str:
        return self.client.describe_job(jobId=job_id)["job"]["status"]


def listed(client: Any, **filters: Any) -> list[str]:
    """Every job ListJobs answers with ``filters``, page after page."""
    ids, token = [], None
    while True:
        page = client.list_jobs(maxResults=250, **filters, **({"nextToken": token} if token else {}))
        ids += [job["jobId"] for job in page["jobs"]]
        token = page.get("nextToken")
        if not token:
            return ids


# --------------------------------------------------------------------------- injected errors


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self._body


def fail_calls(client: object, operation: str, code: str, status: int, times: int) -> list[int]:
    """Make the next ``times`` calls of ``operation`` answer an error over HTTP.

    The response goes through botocore's own parser, as a real service error would.
    Returns a one-element list counting the failures served.
    """
    served = [0]

    query_protocol = client.meta.service_model.protocol == "query"  # CloudFormation: XML errors

    def respond(request: object, **_: object) -> AWSResponse | None:
        if served[0] >= times:
            return None
        served[0] += 1
        if query_protocol:
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                f"<Message>injected {code}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
            ).encode()
            headers = {"Content-Type": "text/xml"}
        else:
            body = json.dumps({"message": f"injected {code}"}).encode()
            headers = {"x-amzn-ErrorType": code, "Content-Type": "application/json"}
        return AWSResponse(request.url, status, headers, _Raw(body))

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-send.{service}.{operation}", respond)
    return served


# ------------------------------------------------------------------- the handler, run as the Provider does


TIMING = Timing(query_interval=10, total_timeout=3600, poll_interval=2, poll_window=60, report_margin=30)


def event(request_type: str, job_ids: list[str], **properties: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "RequestType": request_type,
        "LogicalResourceId": "OtaJobsCleanup",
        "StackId": STACK_ID,
        "ResourceType": "Custom::IotJobCleanup",
        "ResourceProperties": {
            "ServiceToken": "arn:token",
            "JobIds": job_ids,
            "Force": "false",
            **properties,
        },
    }
    if request_type != "Create":
        body["PhysicalResourceId"] = "iot-job-cleanup:OtaJobsCleanup"
    return body


@dataclass
class Outcome:
    complete: bool
    invocations: int
    elapsed: float
    error: Exception | None = None


def entry_points(
    iot: Iot, clock: SimClock, timing: Timing = TIMING, **more: Any
) -> tuple[EntryPoint, EntryPoint]:
    """The engine's on_event and is_complete with the keywords the tests give them: the
    account's clients, simulated time, equal jitter (``random`` 0.5), and ``more``."""
    keywords: dict[str, Any] = {
        "client": iot.client,
        "cloudformation": iot.cloudformation,
        "timing": timing,
        "clock": clock,
        "sleep": clock.sleep,
        "random": lambda: 0.5,
        **more,
    }
    return EntryPoint.of(handler, "on_event", **keywords), EntryPoint.of(handler, "is_complete", **keywords)


@dataclass
class Handler:
    """One call at a time to the entry points (what a single Lambda invocation does)."""

    iot: Iot
    clock: SimClock
    timing: Timing = field(default_factory=lambda: TIMING)

    def on_event(self, request: Mapping[str, Any], **more: Any) -> dict[str, Any]:
        return dict(entry_points(self.iot, self.clock, self.timing, **more)[0](request))

    def is_complete(self, request: Mapping[str, Any], **more: Any) -> dict[str, Any]:
        return dict(entry_points(self.iot, self.clock, self.timing, **more)[1](request))


def run_delete(iot: Iot, clock: SimClock, request: dict[str, Any], timing: Timing = TIMING) -> Outcome:
    """on_event, then is_complete at the query interval, as the Provider's waiter does."""
    start = clock()
    invocations: list[str] = []

    def counted(name: str, call: Any) -> Any:
        invocations.append(name)
        return call()

    on_event, is_complete = entry_points(iot, clock, timing)
    try:
        run_request(
            request,
            on_event,
            is_complete,
            sleep=clock.sleep,
            query_interval=timing.query_interval,
            max_attempts=10_000,
            invocation=counted,
        )
    except Exception as exc:  # the Provider reports any exception as FAILED
        return Outcome(False, len(invocations), clock() - start, exc)
    return Outcome(True, len(invocations), clock() - start)


def lambda_clients(iot: Iot) -> dict[str, Any]:
    """The clients the Lambda entry points use, one per service (no tagging API: IoT is asked)."""
    return {"iot": iot.client, "cloudformation": iot.cloudformation, "resourcegroupstaggingapi": None}


def planned(result: dict[str, Any], ids: list[str]) -> list[str]:
    """The order on_event planned: the event carries positions in JobIds."""
    return [ids[position] for position in result[handler.ORDER_KEY]]


def job_ids(count: int, prefix: str = "ota") -> list[str]:
    return [f"{prefix}-{index:03d}" for index in range(count)]


# ------------------------------------------------------------------- moto's server, for the command line


@dataclass
class Endpoint:
    """moto's server on loopback (``url``) with the emulated IoT (``lifecycle``), on ``clock``:
    a ``SimClock``, or the real ``time.monotonic`` for a command run as a real process."""

    url: str
    lifecycle: DeletionLifecycle
    clock: SimClock | Callable[[], float]

    def job(self, job_id: str, *, targets: list[str] | None = None, **kwargs: Any) -> str:
        self.lifecycle.create_job(job_id, targets=targets or [FLEET], **kwargs)
        return job_id

    def existing(self) -> set[str]:
        with self.lifecycle.locked():
            self.lifecycle.settle()
            return set(self.lifecycle.job_ids())

    def client(self, service: str, config: Config | None = None) -> Any:
        """A client of the endpoint; ``config`` None is botocore's defaults."""
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, config=config)

    def run(
        self,
        *argv: str,
        out: io.StringIO | None = None,
        stdin: io.StringIO | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        **kwargs: Any,
    ) -> tuple[int, str]:
        """The command in this process against the endpoint, on its clock unless ``clock`` and
        ``sleep`` are given; the exit code and what it wrote."""
        out = out or io.StringIO()
        code = cli.main(
            [*argv, "--endpoint-url", self.url, "--region", REGION],
            out=out,
            stdin=stdin or io.StringIO(""),
            clock=clock or self.clock,
            sleep=sleep or self.clock.sleep,  # type: ignore[union-attr]
            **kwargs,
        )
        return code, out.getvalue()


@contextmanager
def serve(clock: SimClock | Callable[[], float], deletion_seconds: float) -> Iterator[Endpoint]:
    """moto's server on a free loopback port, IoT and CloudFormation reset, IoT emulated with
    deletions of ``deletion_seconds`` on ``clock``."""
    from moto.server import ThreadedMotoServer  # flask and werkzeug: for the tests that serve only

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    iot_backends[ACCOUNT][REGION].reset()
    cloudformation_backends[ACCOUNT][REGION].reset()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        with emulated_iot(
            ACCOUNT, REGION, clock=clock, deletion_time=DeletionTime(deletion_seconds)
        ) as lifecycle:
            host, port = server.get_host_and_port()
            yield Endpoint(f"http://{host}:{port}", lifecycle, clock)
    finally:
        server.stop()


# Stack id -> its resource summaries, as ListStackResources answers them: the ``stacks``
# fixture (tests/cli/conftest.py) serves them, as moto's own answer says CREATE_COMPLETE for all.
Stacks = dict[str, list[dict[str, Any]]]


@dataclass
class Stack:
    """A stack in moto's CloudFormation, with the resource statuses the test plays."""

    stack_id: str
    resources: list[dict[str, Any]]

    def status(self, status: str) -> None:
        set_stack_status(ACCOUNT, REGION, self.stack_id, status)

    def resource(self, logical_id: str, status: str, reason: str = "") -> None:
        (summary,) = [r for r in self.resources if r["LogicalResourceId"] == logical_id]
        summary["ResourceStatus"] = status
        summary.pop("ResourceStatusReason", None)
        if reason:
            summary["ResourceStatusReason"] = reason

    def gone(self) -> None:
        """Deleted and forgotten: DescribeStacks finds it neither by name nor by id (CloudFormation
        answers a deleted stack by its id for 90 days; moto as long as it keeps it)."""
        backend = cloudformation_backends[ACCOUNT][REGION]
        backend.delete_stack(self.stack_id)
        backend.deleted_stacks.pop(self.stack_id)


def cleanup_resource(properties: dict[str, Any], **declared: Any) -> dict[str, Any]:
    """A cleanup as a template declares it: ``properties`` and the Provider's ServiceToken."""
    token = {"ServiceToken": {"Fn::GetAtt": ["ProviderframeworkonEvent", "Arn"]}}
    return {"Type": RESOURCE_TYPE, "Properties": {**token, **properties}, **declared}


def put_stack(
    stacks: Stacks,
    status: str,
    template: dict[str, Any],
    statuses: dict[str, str] | None = None,
    parameters: dict[str, str] | None = None,
) -> Stack:
    """A stack Fleet with ``template`` in ``status``, each resource in its status in ``statuses``
    (else CREATE_COMPLETE), and ``parameters`` as DescribeStacks answers them."""
    stack_id = emulated_stack(ACCOUNT, REGION, "Fleet", status)
    record = cloudformation_backends[ACCOUNT][REGION].stacks[stack_id]
    record.template = json.dumps(template)
    record.resource_map.resolved_parameters.update(parameters or {})
    resources = [
        {
            "LogicalResourceId": logical_id,
            "PhysicalResourceId": f"Fleet-{logical_id}-0123",
            "ResourceType": declared["Type"],
            "ResourceStatus": (statuses or {}).get(logical_id, "CREATE_COMPLETE"),
            "LastUpdatedTimestamp": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        }
        for logical_id, declared in template["Resources"].items()
    ]
    stacks[stack_id] = resources
    return Stack(stack_id, resources)


# --------------------------------------------------------------------------- processes


def lines_of(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """The process's output lines as they come (an empty string at its end)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return lines
