"""The command line's fixtures: moto's server on loopback with the emulated IoT (``support.serve``),
on the simulated clock or the real one, and the resource statuses its CloudFormation answers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult

from support import Endpoint, SimClock, Stacks, serve


@pytest.fixture
def endpoint(clock: SimClock) -> Iterator[Endpoint]:
    """For this process: the simulated clock the command is given too, deletions of 30 s."""
    with serve(clock, 30) as served:
        yield served


@pytest.fixture
def simulated(endpoint: Endpoint) -> Endpoint:
    """``endpoint``, by the name the tests that run real processes too (``live``) give it."""
    return endpoint


@pytest.fixture
def live() -> Iterator[Endpoint]:
    """For a real process: the real clock, deletions of half a second."""
    with serve(time.monotonic, 0.5) as served:
        yield served


@pytest.fixture
def stacks(monkeypatch: pytest.MonkeyPatch) -> Stacks:
    """Stack id -> its resource summaries, as ListStackResources answers them (statuses
    included; moto's own answer says CREATE_COMPLETE for all): patched in this process, where
    the server runs. A stack not in it gets moto's own answer. ``support.put_stack`` fills it."""
    served: Stacks = {}
    original = CloudFormationResponse.list_stack_resources

    def list_stack_resources(self: CloudFormationResponse) -> ActionResult:
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        if stack.stack_id not in served:
            return original(self)
        return ActionResult({"StackResourceSummaries": [dict(r) for r in served[stack.stack_id]]})

    monkeypatch.setattr(CloudFormationResponse, "list_stack_resources", list_stack_resources)
    return served
