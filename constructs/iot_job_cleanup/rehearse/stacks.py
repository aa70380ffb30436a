"""What CloudFormation keeps between the phases (stack ids and statuses, in each stack's region;
a nested stack's record names its root and parent, as the handler reads them; physical ids)
and how it sends a cleanup resource a request; ``Hooks``, the seam a test uses to misreport a
stack's status or to change a request before it is run."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from .assembly import CleanupResource, StackPlan
from .base import ACCOUNT, REGION, ScaledClock
from .endpoint import Endpoint, session
from .handlers import HandlerRequest, Outcome

__all__ = ["Hooks", "Stacks"]


@dataclass(frozen=True)
class Hooks:
    """Where a test may step in: ``stack_status(stack, status)`` gives the status recorded
    (the handler reads it); ``prepared(request)`` sees each request before it is run."""

    stack_status: Callable[[str, str], str] | None = None
    prepared: Callable[[HandlerRequest], None] | None = None


class Stacks:
    """CloudFormation's side of a rehearsal: stack records, physical ids, requests sent."""

    def __init__(
        self,
        endpoint: Endpoint,
        clock: ScaledClock,
        out: TextIO,
        hooks: Hooks | None = None,
        plans: list[StackPlan] | None = None,
    ) -> None:
        self.session = session()  # clients made here
        self.endpoint = endpoint
        self.clock = clock
        self.out = out
        self.hooks = hooks or Hooks()
        self.plans: dict[str, StackPlan] = {plan.name: plan for plan in plans or []}
        self.stack_ids: dict[str, str] = {}
        self.physical_ids: dict[tuple[str, str], str] = {}

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def set_status(self, stack: str, status: str) -> None:
        from ..emulator import emulated_stack, set_stack_status

        if self.hooks.stack_status is not None:
            status = self.hooks.stack_status(stack, status)
        plan = self.plans.get(stack)
        region = plan.region if plan is not None else REGION
        if stack in self.stack_ids:
            set_stack_status(ACCOUNT, region, self.stack_ids[stack], status)
            return
        name, nesting = stack, {}
        if plan is not None and plan.parent is not None:
            if plan.parent not in self.stack_ids:  # a parent's record comes first
                self.set_status(plan.parent, status)
            # CloudFormation names a nested stack <parent>-<logical id>-<suffix>; DescribeStacks
            # tells its RootId and ParentId, and the handler follows the root's status.
            name = f"{stack}-{uuid.uuid4().hex[:12].upper()}"
            nesting = {"root_id": self.stack_ids[plan.root], "parent_id": self.stack_ids[plan.parent]}
        stack_id = f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/{name}/{uuid.uuid4()}"
        self.stack_ids[stack] = emulated_stack(ACCOUNT, region, name, status, stack_id=stack_id, **nesting)

    def iot_call_count(self) -> int:
        return sum(self.endpoint.calls().values())

    def request(
        self,
        cleanup: CleanupResource,
        request: str,
        status: str,
        old: CleanupResource | None = None,
        physical_id: str | None = None,
    ) -> Outcome:
        """One request, run to its end (the requests of deploy and update run one at a time)."""
        outcome = Outcome(cleanup, request=request, stack_status=status)
        key = (cleanup.stack, cleanup.logical_id)
        prepared = self.prepare(
            outcome,
            physical_id=physical_id or (self.physical_ids.get(key) if request != "Create" else None),
            old_properties=(
                {"ServiceToken": old.service_token_arn, **old.properties} if old is not None else None
            ),
        )
        before = self.iot_call_count()
        prepared.run()
        outcome.iot_calls = self.iot_call_count() - before
        if outcome.state == "complete" and request != "Delete":
            self.physical_ids[key] = outcome.physical_id
        return outcome

    def prepare(
        self,
        outcome: Outcome,
        physical_id: str | None = None,
        old_properties: Mapping[str, Any] | None = None,
    ) -> HandlerRequest:
        cleanup = outcome.resource
        prepared = HandlerRequest(
            cleanup,
            outcome,
            endpoint=self.endpoint.url,
            clock=self.clock,
            stack_id=self.stack_ids[cleanup.stack],
            physical_id=physical_id or self.physical_ids.get((cleanup.stack, cleanup.logical_id)),
            old_properties=old_properties,
            session=self.session,
        )
        if self.hooks.prepared is not None:
            self.hooks.prepared(prepared)
        return prepared

    @staticmethod
    def describe(outcome: Outcome, why: str = "") -> str:
        text = f"{outcome.resource.name}: {outcome.request}{f' ({why})' if why else ''} -> "
        if outcome.state == "failed":
            return text + f"{outcome.request.upper()}_FAILED: {outcome.reason}"
        return text + f"{outcome.request.upper()}_COMPLETE, IoT calls: {outcome.iot_calls}"
