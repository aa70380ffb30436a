"""CloudFormation's teardown, played in its order (``order.DeletionOrder``).

A cleanup resource's Delete is sent once the cleanup resources that must be gone before it
are; those that wait for nothing go at once, in parallel. A stack's deletion starts once what
must be gone before it is (``DELETE_IN_PROGRESS`` then; ``DELETE_COMPLETE`` or
``DELETE_FAILED`` once its resources, its nested stacks' included, are done). A resource that
waits for one whose Delete failed is never sent its Delete, as CloudFormation leaves it; nor
are the resources of a stack whose deletion never starts (cdk destroy stops at a failed stack).

When a request ends, the jobs it owns that are still there are noted (``Outcome.left``), and
when each of them took its deletion (``Outcome.deleted``): a stage k < n that ends with jobs
left has handed over to stage k + 1 (``handed over``), which CloudFormation deletes next.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .assembly import StackPlan
from .base import counted
from .handlers import HandlerRequest, Outcome
from .order import DeletionOrder, Key
from .stacks import Stacks

__all__ = ["BAD", "DONE", "StackPart", "Teardown"]

DONE = frozenset({"complete", "handed over", "failed", "retained", "not sent"})
BAD = frozenset({"failed", "not sent"})  # what stops the resources that wait for it
FINAL = frozenset({"DELETE_COMPLETE", "DELETE_FAILED", "not deleted"})


@dataclass
class StackPart:
    """A stack's part in the teardown, in simulated seconds since the destroy began."""

    name: str
    after: list[str] = field(default_factory=list)  # the stacks gone before it (a top stack's)
    nested_in: str | None = None
    status: str = "waiting"  # waiting | DELETE_IN_PROGRESS | DELETE_COMPLETE | DELETE_FAILED | not deleted
    started: float | None = None
    ended: float | None = None


class Teardown:
    """Sends each cleanup resource its Delete when its turn comes (from the request threads as
    they end, so a successor starts at once) and records the stacks' and resources' parts;
    ``events`` are the lines the view prints as they happen."""

    def __init__(
        self,
        stacks: Stacks,
        plans: list[StackPlan],
        outcomes: list[Outcome],
        requests: dict[Key, HandlerRequest],
        order: DeletionOrder,
        origin: float,
    ) -> None:
        self.stacks, self.plans, self.order, self.origin = stacks, plans, order, origin
        self.outcomes = {(o.resource.stack, o.resource.logical_id): o for o in outcomes}
        self.requests = requests
        self.finished: set[Key] = {key for key, o in self.outcomes.items() if o.state == "retained"}
        self.running: set[Key] = set()
        self.parts = {
            plan.name: StackPart(
                plan.name,
                after=[name for name in self._stacks_before(plan) if name != plan.name],
                nested_in=plan.parent,
            )
            for plan in plans
        }
        self.events: list[str] = []
        self._lock = threading.RLock()

    def _stacks_before(self, plan: StackPlan) -> list[str]:
        if plan.parent is not None:
            return []
        return [
            other.name for other in self.plans if other.parent is None and plan.name in other.dependencies
        ]

    def now(self) -> float:
        return self.stacks.clock.now() - self.origin

    def begin(self) -> None:
        with self._lock:
            self._advance()

    def over(self) -> bool:
        with self._lock:
            return len(self.finished) == len(self.outcomes) and all(
                part.status in FINAL for part in self.parts.values()
            )

    def take_events(self) -> list[str]:
        with self._lock:
            events, self.events = self.events, []
            return events

    # -- the rules

    def _done(self, keys: frozenset[Key]) -> bool:
        return all(key in self.finished for key in keys if key in self.outcomes)

    def _failed(self, keys: frozenset[Key]) -> list[str]:
        return sorted(
            self.outcomes[key].resource.name
            for key in keys
            if key in self.outcomes and self.outcomes[key].state in BAD
        )

    def _advance(self) -> None:
        """Everything whose turn has come, until nothing more changes."""
        changed = True
        while changed:
            changed = self._start_stacks() | self._send_deletes() | self._end_stacks()
        if not self.running and len(self.finished) < len(self.outcomes):
            for key, outcome in self.outcomes.items():  # nothing left to wait for: cannot be
                if key not in self.finished:
                    outcome.state, outcome.reason = "not sent", "never sent: what it waits for never ended"
                    self.finished.add(key)
            self._advance()

    def _start_stacks(self) -> bool:
        changed = False
        for plan in self.plans:
            part, waits = self.parts[plan.name], self.order.stack_waits.get(plan.name, frozenset())
            parent = self.parts.get(plan.parent) if plan.parent else None
            if part.status != "waiting" or not self._done(waits):
                continue
            if parent is not None and parent.status == "waiting":
                continue
            before = [self.parts[name] for name in part.after]  # the stacks that depend on it
            if any(other.status not in FINAL for other in before):
                continue  # they are gone only once their deletion has ended
            failed = self._failed(waits) + [o.name for o in before if o.status != "DELETE_COMPLETE"]
            if failed or (parent is not None and parent.status == "not deleted"):
                part.status = "not deleted"
                why = f"{', '.join(failed)} failed to delete" if failed else f"{plan.parent} was not deleted"
                self.events.append(f"destroy: {plan.name}: not deleted: {why}")
            else:
                part.status, part.started = "DELETE_IN_PROGRESS", self.now()
                self.stacks.set_status(plan.name, "DELETE_IN_PROGRESS")
                if part.after or part.nested_in:
                    after = f"after {', '.join(part.after)}" if part.after else f"nested in {part.nested_in}"
                    self.events.append(
                        f"destroy: {plan.name}: DELETE_IN_PROGRESS at {part.started:.0f} s simulated "
                        f"({after})"
                    )
            changed = True
        return changed

    def _send_deletes(self) -> bool:
        changed = False
        for key, outcome in self.outcomes.items():
            if key in self.finished or key in self.running:
                continue
            part, waits = self.parts[key[0]], self.order.waits.get(key, frozenset())
            if part.status == "not deleted":
                outcome.state = "not sent"
                outcome.reason = f"never sent: the deletion of {key[0]} never started"
            elif part.status == "DELETE_IN_PROGRESS" and self._done(waits):
                failed = self._failed(waits)
                if failed:
                    outcome.state = "not sent"
                    outcome.reason = f"never sent: it waits for {', '.join(failed)}, which failed to delete"
                else:
                    self._start(key, outcome)
                    changed = True
                    continue
            else:
                continue
            self.finished.add(key)
            self.events.append(f"destroy:   {outcome.resource.name}: {outcome.reason}")
            changed = True
        return changed

    def _end_stacks(self) -> bool:
        changed = False
        for plan in reversed(self.plans):  # nested stacks end before their parents
            part = self.parts[plan.name]
            members = self.order.members.get(plan.name, frozenset())
            nested = [self.parts[p.name] for p in self.plans if p.parent == plan.name]
            if part.status != "DELETE_IN_PROGRESS" or not self._done(members):
                continue
            if any(child.status not in FINAL for child in nested):
                continue
            failed = self._failed(members) or [
                child.name for child in nested if child.status != "DELETE_COMPLETE"
            ]
            part.status, part.ended = ("DELETE_FAILED" if failed else "DELETE_COMPLETE"), self.now()
            self.stacks.set_status(plan.name, part.status)
            self.events.append(f"destroy: {plan.name}: {part.status} at {part.ended:.0f} s simulated")
            changed = True
        return changed

    # -- the requests

    def _start(self, key: Key, outcome: Outcome) -> None:
        outcome.started = self.now()
        outcome.state = "deleting"
        self.running.add(key)
        if outcome.waited_for:
            self.events.append(
                f"destroy:   {outcome.resource.name}: Delete sent at {outcome.started:.0f} s simulated, "
                f"after {', '.join(outcome.waited_for)}"
            )
        threading.Thread(target=self._run, args=(key, outcome), daemon=True).start()

    def _run(self, key: Key, outcome: Outcome) -> None:
        try:
            self.requests[key].run()
        finally:
            with self._lock:
                self._ended(outcome)
                self.running.discard(key)
                self.finished.add(key)
                self._advance()

    def _ended(self, outcome: Outcome) -> None:
        """What it left and what it deleted; a stage k < n that left jobs handed over."""
        outcome.ended = self.now()
        resource = outcome.resource
        lifecycle = self.stacks.endpoint.lifecycle(resource.region)
        started_at = self.origin + (outcome.started or 0.0)
        with lifecycle.locked():
            lifecycle.settle()
            jobs = lifecycle.snapshot()
            began = dict(lifecycle.deletion_started)
        outcome.left = [job for job in outcome.jobs if job in jobs]
        outcome.deleted = {
            job: began[job] - self.origin
            for job in outcome.jobs
            if job in began and started_at - 1e-6 <= began[job] <= self.origin + outcome.ended + 1e-6
        }
        if outcome.state == "complete" and resource.stage < resource.stages and outcome.left:
            outcome.state = "handed over"
            deleting = sum(jobs[job].status == "DELETION_IN_PROGRESS" for job in outcome.left)
            left = counted(len(outcome.left), "job")
            self.events.append(
                f"destroy:   {resource.name}: stage {resource.stage} of {resource.stages} hands over at "
                f"{outcome.ended:.0f} s simulated: {left} left ({deleting} deleting), "
                f"stage {resource.stage + 1} carries on"
            )
        elif outcome.state == "failed":
            self.events.append(
                f"destroy:   {resource.name}: DELETE_FAILED at {outcome.ended:.0f} s simulated: "
                f"{outcome.reason}"
            )
