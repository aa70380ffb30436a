"""The destroy's live view: deletion slots in use, each cleanup's jobs gone, deleting, draining
and waiting, redrawn in place on a terminal (else a progress line every 30 s simulated)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from .base import KEPT, ScaledClock
from .handlers import Outcome

if TYPE_CHECKING:
    from ..emulator import DeletionLifecycle

__all__ = ["View"]


@dataclass
class View:
    out: TextIO
    clock: ScaledClock
    lifecycle: DeletionLifecycle
    outcomes: list[Outcome]
    live: bool
    max_job_lines: int = 30
    _lines_drawn: int = 0
    gone_at: dict[str, float] = field(default_factory=dict)
    origin: float = field(init=False)

    def __post_init__(self) -> None:
        self.origin = self.clock.now()  # the destroy starts now

    def elapsed(self) -> float:
        return self.clock.now() - self.origin

    def deleted_by(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.state != "retained"]

    def job_state(self, job_id: str, jobs: Mapping[str, Any]) -> str:
        """A job's state on screen, from a ``snapshot`` of the endpoint's jobs."""
        job = jobs.get(job_id)
        if job is None:
            self.gone_at.setdefault(job_id, self.elapsed())
            return f"gone after {self.gone_at[job_id]:.0f} s"
        if job.status == "DELETION_IN_PROGRESS":
            return "deleting"
        if not self.outcomes_started():
            return str(job.status).lower()
        if job.status == "CANCELED" and job.process_details.get("numberOfInProgressThings"):
            return "cancelled, devices busy"  # a drain: deleted once they finish
        return "waiting for a slot"

    def outcomes_started(self) -> bool:
        return any(outcome.state != "waiting" for outcome in self.deleted_by())

    def frame(self) -> list[str]:
        lifecycle = self.lifecycle
        with lifecycle.locked():
            lifecycle.settle()
            jobs = lifecycle.snapshot()
            deleting = set(lifecycle.deleting)
            limit_exceeded = lifecycle.refusals["LimitExceededException"]
        ours = {job for outcome in self.deleted_by() for job in outcome.jobs}
        in_use, ours_in_use = len(deleting), len(ours & deleting)
        lines = [
            f"destroy: {self.elapsed():5.0f} s simulated   deletion slots in use {in_use:2d}/10 "
            f"(ours {ours_in_use}, other stacks {in_use - ours_in_use})   "
            f"LimitExceededException answered: {limit_exceeded}"
        ]
        for outcome in self.outcomes:
            name = outcome.resource.name
            if outcome.state == "retained":
                lines.append(f"  {name}: {len(outcome.jobs)} jobs {KEPT}, no Delete sent")
                continue
            states = [self.job_state(job, jobs) for job in outcome.jobs]
            gone = sum(state.startswith("gone") for state in states)
            being_deleted = states.count("deleting")
            draining = states.count("cancelled, devices busy")
            waiting = len(states) - gone - being_deleted - draining
            lines.append(
                f"  {name}: {gone} gone, {being_deleted} deleting, "
                f"{f'{draining} draining, ' if draining else ''}{waiting} waiting   "
                f"[{outcome.state}, invocation {outcome.invocations}]"
            )
        shown = [job for outcome in self.deleted_by() for job in outcome.jobs]
        lines += [f"    {job:<40} {self.job_state(job, jobs)}" for job in shown[: self.max_job_lines]]
        return lines

    def draw(self) -> None:
        lines = self.frame()
        if self.live:
            if self._lines_drawn:
                self.out.write(f"\x1b[{self._lines_drawn}F")
            self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
            self._lines_drawn = len(lines)
        else:
            self.out.write(lines[0] + "\n" + "\n".join(lines[1 : 1 + len(self.outcomes)]) + "\n")
        self.out.flush()
