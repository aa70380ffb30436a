"""What CloudFormation keeps between the phases (stack ids and statuses, physical ids) and how
it sends a cleanup resource a request; ``Hooks``, the seam a test uses to misreport a stack's
status or to change a request before it is run."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from .assembly import CleanupResource
from .base import ACCOUNT, REGION, ScaledClock
from .endpoint import session
from .handlers import HandlerRequest, Outcome

if TYPE_CHECKING:
    from ..emulator import DeletionLifecycle

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
        endpoint: str,
        lifecycle: DeletionLifecycle,
        clock: ScaledClock,
        out: TextIO,
        hooks: Hooks | None = None,
    ) -> None:
        self.session = session()  # clients made here
        self.endpoint = endpoint
        self.lifecycle = lifecycle
        self.clock = clock
        self.out = out
        self.hooks = hooks or Hooks()
        self.stack_ids: dict[str, str] = {}
        self.physical_ids: dict[tuple[str, str], str] = {}

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def set_status(self, stack: str, status: str) -> None:
        from ..emulator import emulated_stack, set_stack_status

        if self.hooks.stack_status is not None:
            status = self.hooks.stack_status(stack, status)
        if stack in self.stack_ids:
            set_stack_status(ACCOUNT, REGION, self.stack_ids[stack], status)
        else:
            stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/{uuid.uuid4()}"
            self.stack_ids[stack] = emulated_stack(ACCOUNT, REGION, stack, status, stack_id=stack_id)

    def iot_call_count(self) -> int:
        with self.lifecycle.locked():
            return sum(self.lifecycle.calls.values())

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
            endpoint=self.endpoint,
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
