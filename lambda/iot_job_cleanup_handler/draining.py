"""Draining jobs, looked at again while their devices finish (a cleanup with a drain time).

A running job is cancelled first (``JobCleanup.apply``, on the guard's decision) and waits
in ``Place.DRAINING``; a look at it later tells whether its devices are done (it goes next
in line), whether its drain time is over (deleted with force, or the cleanup fails without
it), or whether a new job took its id (judged afresh). What a look shows is placed by the
cleanup's ``apply``; this module decides only which draining jobs are looked at, and when.

``DrainChecks`` paces those looks:

- each job at most every ``DRAIN_CHECK_INTERVAL`` (or the poll interval, if slower): devices
  take minutes, and 30 jobs looked at every 2 s were 15 calls a second;
- the drain checks' own looks at most ``DRAIN_LOOKS_PER_SECOND`` on average, with
  ``DRAIN_LOOKS_AT_ONCE`` to start with: 40 jobs looked at every 10 s were 4 DescribeJob a
  second, twice the calls budget (the looks made elsewhere, before a cancel, at an
  invocation's start or by a walk, only make their job not due for the interval);
- those past their drain time first (they are to be acted on), then those looked at longest
  ago (one never seen since a cancel that failed for now comes first among them), then those
  whose drain time ends first.

The checks go on while jobs wait for the slots: a drained job found ready goes to the front of
the line, and drained jobs, which have devices, tend to be the longest deletions, best started
early. Skipping the checks while enough jobs waited saved calls but started such jobs late:
over the 12 seeded accounts of an independent review (long and short terminal jobs, one to
four long running ones), cleanups took 12 % longer on average with the skip, 23 % at worst;
the pace keeps the cost of the checks within the budget anyway.

It uses the cleanup's public face only, as ``finding`` and ``final_look`` do. What it knows
is the invocation's: a new one starts with its allowance whole, each drained named job looked
at by its survey, and each draining job a filter selects by the walk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .ledger import Place

if TYPE_CHECKING:
    from .scheduling import JobCleanup

__all__ = ["DRAIN_CHECK_INTERVAL", "DRAIN_LOOKS_AT_ONCE", "DRAIN_LOOKS_PER_SECOND", "DrainChecks", "check"]

DRAIN_CHECK_INTERVAL = 10.0  # the least time between two looks at one draining job
DRAIN_LOOKS_PER_SECOND = 1.0  # the drain's share of the calls budget (2 a second on average)
DRAIN_LOOKS_AT_ONCE = 10  # the looks a round may make when none were made for a while


class DrainChecks:
    """Which draining jobs to look at now: an allowance earned over time, spent one a look."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.allowance = float(DRAIN_LOOKS_AT_ONCE)
        self.earned_at = clock()
        self.looked_at: dict[str, float] = {}

    def due(self, draining: Iterable[str], ends: Callable[[str], float], every: float) -> list[str]:
        """The jobs to look at now, in order, as many as the allowance admits."""
        now = self.clock()
        self.allowance = min(
            float(DRAIN_LOOKS_AT_ONCE), self.allowance + (now - self.earned_at) * DRAIN_LOOKS_PER_SECOND
        )
        self.earned_at = now
        last = self.looked_at
        ready = [job_id for job_id in draining if now >= last.get(job_id, -math.inf) + every]
        ready.sort(key=lambda job_id: (ends(job_id) > now, last.get(job_id, -math.inf), ends(job_id), job_id))
        return ready[: max(0, math.floor(self.allowance))]

    def looked(self, job_id: str) -> None:
        """A look left the job draining (``JobCleanup.apply``), whoever made it: the job is not
        due again for the interval."""
        self.looked_at[job_id] = self.clock()

    def spend(self) -> None:
        """A drain check's own look: it spends the allowance. The looks made elsewhere (the
        plan's before each cancel, an invocation's survey, the walk's) do not, so they never
        hold back the checks of jobs past their drain time."""
        self.allowance -= 1


def check(cleanup: JobCleanup, poll_interval: float) -> None:
    """Look at the draining jobs due, each placed by what its look shows."""
    draining = cleanup.ledger.at(Place.DRAINING)
    if not draining:
        return
    every = max(poll_interval, DRAIN_CHECK_INTERVAL)
    for job_id in cleanup.drain_checks.due(draining, cleanup.drain_ends, every):
        if cleanup.clock() >= cleanup.hard_stop:
            return
        entry = cleanup.ledger.get(job_id)
        if entry is None or entry.place is not Place.DRAINING:  # moved by an earlier look's decision
            continue
        cleanup.drain_checks.spend()
        cleanup.apply(cleanup.guard.look(job_id, named=entry.named), named=entry.named)
