"""Handler code from the cloud assembly's asset folder (what would really be uploaded), and one
CloudFormation request to a cleanup resource run with it as the Provider framework runs it
(``provider.run_request``: ``on_event``, then ``is_complete`` every query interval)."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ..cfn import RESOURCE_TYPE
from ..provider import EntryPoint, run_request, waiter_attempts
from .assembly import CleanupResource, HandlerFunction
from .base import RehearsalError, ScaledClock

__all__ = ["HandlerRequest", "Outcome", "load_handler"]


def load_handler(function: HandlerFunction) -> ModuleType:
    """Import the handler (a package, or a module as before 0.2) from its asset folder,
    under a name of its own."""
    module_name = function.handler.rsplit(".", 1)[0]
    name = f"rehearsal_{module_name}_{uuid.uuid4().hex[:8]}"
    package = function.asset_dir / module_name
    if (package / "__init__.py").is_file():
        spec = importlib.util.spec_from_file_location(
            name, package / "__init__.py", submodule_search_locations=[str(package)]
        )
    elif (function.asset_dir / f"{module_name}.py").is_file():
        spec = importlib.util.spec_from_file_location(name, function.asset_dir / f"{module_name}.py")
    else:
        raise RehearsalError(f"{package} does not exist: the asset folder does not hold the handler.")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@dataclass
class Outcome:
    """What became of one request. A destroy's states: waiting (for the resources that must be
    gone first), deleting, complete, failed, retained (no Delete sent), handed over (a stage
    k < n that ran out of time with jobs left: the next stage carries on; neither the cleanup's
    success nor its failure) or not sent (it waited for a resource whose Delete failed)."""

    resource: CleanupResource
    state: str = "waiting"  # waiting | creating | updating | deleting | complete | failed | retained
    invocations: int = 0
    elapsed: float = 0.0
    reason: str = ""
    request: str = "Delete"  # Create | Update | Delete
    physical_id: str = ""
    iot_calls: int = 0  # IoT calls while it ran (counted for the requests run one at a time)
    stack_status: str = ""  # the stack's status while it ran
    selected: list[str] = field(default_factory=list)  # jobs its filters select, at the destroy
    # Its part in the destroy, in simulated seconds since the destroy began:
    started: float | None = None  # when its Delete was sent
    ended: float | None = None
    waited_for: list[str] = field(default_factory=list)  # the cleanup resources gone before it
    deleted: dict[str, float] = field(default_factory=dict)  # job -> when it took its deletion
    left: list[str] = field(default_factory=list)  # its jobs still there when it ended

    @property
    def jobs(self) -> list[str]:
        """The jobs it deletes (or keeps): those it names, then those its filters select."""
        return list(dict.fromkeys([*self.resource.job_ids, *self.selected]))

    @property
    def keys(self) -> list[tuple[str, str]]:
        """Its jobs as (region, job id)."""
        return [(self.resource.region, job_id) for job_id in self.jobs]

    @property
    def handed_over(self) -> bool:
        return self.state == "handed over"


class HandlerRequest:
    """One CloudFormation request (``outcome.request``) to a cleanup resource, as CloudFormation
    and the Provider framework run it: ``on_event``, then ``is_complete`` every query interval.

    Made (handler modules loaded from the asset folder, clients created) before it is run, so
    that requests run in parallel start together and simulated time is not spent setting up.
    ``request`` is the event CloudFormation sends.
    """

    def __init__(
        self,
        cleanup: CleanupResource,
        outcome: Outcome,
        *,
        endpoint: str,
        clock: ScaledClock,
        stack_id: str,
        session: Any,
        physical_id: str | None = None,
        old_properties: Mapping[str, Any] | None = None,
    ) -> None:
        self.cleanup, self.outcome, self.clock = cleanup, outcome, clock
        self.request: dict[str, Any] = {
            "RequestType": outcome.request,
            "ServiceToken": cleanup.service_token_arn,
            "ResponseURL": "https://rehearsal.invalid/response",
            "StackId": stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": cleanup.logical_id,
            "ResourceType": RESOURCE_TYPE,
            "ResourceProperties": {"ServiceToken": cleanup.service_token_arn, **cleanup.properties},
        }
        if physical_id:
            self.request["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            self.request["OldResourceProperties"] = dict(old_properties)

        def entry_point(function: HandlerFunction, name: str) -> EntryPoint:
            module = load_handler(function)

            def client(service: str) -> Any:  # in the stack's region, as in its Lambda
                return session.client(
                    service, endpoint_url=endpoint, region_name=cleanup.region, config=module.CLIENT_CONFIG
                )

            return EntryPoint.of(
                module,
                name,
                client=client("iot"),
                cloudformation=client("cloudformation"),
                tagging=client("resourcegroupstaggingapi"),  # as in Lambda; moto's answers no IoT job
                timing=module.Timing.from_environment(function.environment),
                remaining_lambda_seconds=function.timeout_seconds,
                clock=clock.now,
                sleep=clock.sleep,
            )

        self.on_event = entry_point(cleanup.on_event, "on_event")
        self.is_complete = entry_point(cleanup.is_complete, "is_complete")

    def _counted(self, name: str, call: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
        self.outcome.invocations += 1
        return call()

    def run(self) -> None:
        outcome, clock = self.outcome, self.clock
        timing = self.is_complete.keywords["timing"]
        start = clock.now()
        try:
            outcome.state = {"Create": "creating", "Update": "updating"}.get(outcome.request, "deleting")
            outcome.physical_id = run_request(  # the Provider's lifecycle, the same for every request type
                self.request,
                self.on_event,
                self.is_complete,
                sleep=clock.sleep,
                query_interval=timing.query_interval,
                max_attempts=waiter_attempts(timing.total_timeout, timing.query_interval),
                invocation=self._counted,
            )
            outcome.state = "complete"
        except Exception as exc:  # the Provider reports any exception as FAILED with its message
            outcome.state, outcome.reason = "failed", str(exc) or type(exc).__name__
        finally:
            outcome.elapsed = clock.now() - start
