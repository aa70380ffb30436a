"""The destroy's live view: each region's deletion slots in use, each cleanup resource's jobs
gone, deleting, draining and waiting (and whose turn it waits for), redrawn in place on a
terminal (else a progress line every 30 s simulated); the teardown's events between frames."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from .base import KEPT, ScaledClock, counted
from .endpoint import Endpoint
from .handlers import Outcome
from .oracle import JobKey

__all__ = ["View"]


@dataclass
class View:
    out: TextIO
    clock: ScaledClock
    endpoint: Endpoint
    outcomes: list[Outcome]
    live: bool
    max_job_lines: int = 30
    _lines_drawn: int = 0
    gone_at: dict[JobKey, float] = field(default_factory=dict)
    origin: float = field(init=False)

    def __post_init__(self) -> None:
        self.origin = self.clock.now()  # the destroy starts now

    def elapsed(self) -> float:
        return self.clock.now() - self.origin

    def deleted_by(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.state != "retained"]

    def job_state(self, key: JobKey, jobs: Mapping[JobKey, Any]) -> str:
        """A job's state on screen, from a ``snapshot`` of the endpoint's jobs."""
        job = jobs.get(key)
        if job is None:
            self.gone_at.setdefault(key, self.elapsed())
            return f"gone after {self.gone_at[key]:.0f} s"
        if job.status == "DELETION_IN_PROGRESS":
            return "deleting"
        if not self.outcomes_started():
            return str(job.status).lower()
        if job.status == "CANCELED" and job.process_details.get("numberOfInProgressThings"):
            return "cancelled, devices busy"  # a drain: deleted once they finish
        return "waiting for a slot"

    def outcomes_started(self) -> bool:
        return any(outcome.state != "waiting" for outcome in self.deleted_by())

    def _slots(self) -> tuple[dict[JobKey, Any], list[str], int]:
        """The jobs of every region now, the slot text of each region, LimitExceeded answers."""
        jobs: dict[JobKey, Any] = {}
        texts: list[str] = []
        refused = 0
        ours = {key for outcome in self.deleted_by() for key in outcome.keys}
        for region, lifecycle in self.endpoint.lifecycles.items():
            with lifecycle.locked():
                lifecycle.settle()
                jobs |= {(region, job_id): job for job_id, job in lifecycle.snapshot().items()}
                deleting = {(region, job_id) for job_id in lifecycle.deleting}
                slots = lifecycle.slots
                refused += lifecycle.refusals["LimitExceededException"]
            in_use, ours_in_use = len(deleting), len(ours & deleting)
            texts.append(
                f"{in_use:2d}/{slots} (ours {ours_in_use}, other stacks {in_use - ours_in_use})"
                if len(self.endpoint.lifecycles) == 1
                else f"{region} {in_use}/{slots} (ours {ours_in_use}, other stacks {in_use - ours_in_use})"
            )
        return jobs, texts, refused

    def frame(self) -> list[str]:
        jobs, slots, limit_exceeded = self._slots()
        several = len(slots) > 1
        slots_text = f"deletion slots: {', '.join(slots)}" if several else f"deletion slots in use {slots[0]}"
        lines = [
            f"destroy: {self.elapsed():5.0f} s simulated   {slots_text}   "
            f"LimitExceededException answered: {limit_exceeded}"
        ]
        for outcome in self.outcomes:
            resource = outcome.resource
            name = resource.name + (
                f" (stage {resource.stage} of {resource.stages})" if resource.stages > 1 else ""
            )
            if outcome.state == "retained":
                lines.append(f"  {name}: {counted(len(outcome.jobs), 'job')} {KEPT}, no Delete sent")
                continue
            states = [self.job_state(key, jobs) for key in outcome.keys]
            gone = sum(state.startswith("gone") for state in states)
            being_deleted = states.count("deleting")
            draining = states.count("cancelled, devices busy")
            waiting = len(states) - gone - being_deleted - draining
            if outcome.state == "waiting" and outcome.waited_for:
                state = f"waiting for {', '.join(outcome.waited_for)}"
            else:
                state = f"{outcome.state}, invocation {outcome.invocations}"
            lines.append(
                f"  {name}: {gone} gone, {being_deleted} deleting, "
                f"{f'{draining} draining, ' if draining else ''}{waiting} waiting   [{state}]"
            )
        shown = list(dict.fromkeys(key for outcome in self.deleted_by() for key in outcome.keys))
        lines += [
            f"    {self.endpoint.label(key) if several else key[1]:<40} {self.job_state(key, jobs)}"
            for key in shown[: self.max_job_lines]
        ]
        return lines

    def note(self, line: str) -> None:
        """A line of what happened (a stack's deletion starts, a stage hands over), printed
        above the frame (on a terminal the frame is drawn again below it)."""
        if self.live and self._lines_drawn:
            self.out.write(f"\x1b[{self._lines_drawn}F\x1b[J")
            self._lines_drawn = 0
        self.out.write(line + "\n")
        self.out.flush()

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
