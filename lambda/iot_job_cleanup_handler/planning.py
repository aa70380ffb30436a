"""A cleanup's plan, made in ``on_event``: the first deletions start at once, and the named
jobs are put in the order that keeps the 10 slots evenly busy to the end.

1. Which named jobs run comes from two listings (SCHEDULED, then IN_PROGRESS: a job only
   moves from the one to the other, so none is missed between them), not a look per job.
   Those are looked at (fresh) and decided now: one that needs force fails the cleanup
   before anything is deleted; with a drain time it is cancelled and goes last.
2. The other named jobs fill the free slots at once, in list order, each deleted as the
   cleanup deletes a named job (IoT itself refuses a running job without force, and a
   refusal is looked at afresh; with a drain time each is looked at first).
3. While those deletions run, the rest are described and ordered longest deletion first
   (deletion time grows with a job's executions: ``execution_count``), for up to
   ``PLAN_LOOKS_SECONDS``; every ``PLAN_REFILL_INTERVAL`` the slots that freed meanwhile get
   the longest described so far. Any not described in time keep list order.

The order the plan returns is what the next invocations' frontier search relies on: the
jobs gone or started (in the order they were started), then the jobs in line, in the order
they will start, then the draining ones. It uses the cleanup's public face only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .guard import Decision
from .ledger import Place

if TYPE_CHECKING:
    from .scheduling import JobCleanup

__all__ = ["PLAN_LOOKS_SECONDS", "PLAN_REFILL_INTERVAL", "execution_count", "plan"]

logger = logging.getLogger("iot_job_cleanup")

PLAN_LOOKS_SECONDS = 60.0  # how long on_event describes named jobs to order them, deletions running
PLAN_REFILL_INTERVAL = 2.0  # how often those looks pause to poll and refill the freed slots


def execution_count(job: Mapping[str, Any]) -> int:
    """How many job executions a job has: its deletion takes longer the more it has."""
    details = job.get("jobProcessDetails") or {}
    return sum(
        value for key, value in details.items() if key.startswith("numberOf") and isinstance(value, int)
    )


class _Order:
    """The parts of the order as the plan builds it."""

    def __init__(self) -> None:
        self.touched: list[str] = []  # gone, being deleted by us or others, started by the plan
        self.waiting: list[str] = []  # turned back (LimitExceeded) after being chosen: next in line
        self.drained: list[str] = []  # cancelled to drain: deleted as their devices finish
        self.untouched: list[tuple[int, int, str]] = []  # (-executions, position, id): described

    def sort_chosen(self, cleanup: JobCleanup, job_ids: list[str]) -> None:
        """Jobs the plan tried to start, by where the attempt left them."""
        for job_id in job_ids:
            place = cleanup.ledger.place(job_id)
            part = (
                self.waiting
                if place is Place.WAITING
                else self.drained
                if place is Place.DRAINING
                else self.touched
            )
            part.append(job_id)


def plan(cleanup: JobCleanup) -> tuple[str, ...]:
    """Plan ``cleanup``'s named jobs and start the first deletions; the order (see the module)."""
    request, ledger = cleanup.request, cleanup.ledger
    cleanup.deleting_anywhere = cleanup.iot.deleting_job_ids()
    running = cleanup.iot.running_job_ids() if not request.force else set()
    order = _Order()
    ready: list[str] = []  # looked at in step 1 and deletable after all: go first
    for job_id in request.job_ids:
        listed = job_id in running or job_id in cleanup.deleting_anywhere
        if listed and not _held_back(cleanup, job_id) and _look(cleanup, job_id, order) is not None:
            ready.append(job_id)
    fresh = [
        j
        for j in request.job_ids
        if j not in ready and ledger.place(j) is None and not _held_back(cleanup, j)
    ]
    first = [*ready, *fresh[: max(0, cleanup.free_slots() - len(ready))]]
    for job_id in first:
        ledger.wait(job_id, named=True)
    cleanup.order = (*order.touched, *first)
    cleanup.planned = True
    cleanup.start_deletions()
    order.sort_chosen(cleanup, first)
    unplanned: list[str] = []  # not described in time: they keep list order
    look_until = min(cleanup.hard_stop, cleanup.clock() + PLAN_LOOKS_SECONDS)
    refill_at = cleanup.clock() + PLAN_REFILL_INTERVAL
    for position, job_id in enumerate(request.job_ids):
        if ledger.place(job_id) is not None or _held_back(cleanup, job_id):
            continue
        if cleanup.clock() >= look_until:
            unplanned.append(job_id)
            continue
        executions = _look(cleanup, job_id, order)
        if executions is not None:
            order.untouched.append((-executions, position, job_id))
        if cleanup.clock() >= refill_at:  # slots freed meanwhile get the longest described so far
            refill_at = cleanup.clock() + PLAN_REFILL_INTERVAL
            _refill(cleanup, order)
    pending = []
    for job_id in [*order.waiting, *(job_id for *_, job_id in sorted(order.untouched)), *unplanned]:
        if ledger.place(job_id) in (None, Place.WAITING):
            ledger.wait(job_id, named=True)  # in this order; one already in line stays
            pending.append(job_id)
        else:  # started (or cancelled) meanwhile by a refill during the looks
            order.sort_chosen(cleanup, [job_id])
    placed = {*order.touched, *pending, *order.drained}
    gone = [j for j in request.job_ids if j not in placed and ledger.place(j) is Place.GONE]
    cleanup.order = (*gone, *order.touched, *pending, *order.drained)
    cleanup.drained_tail = len(order.drained)
    cleanup.deleting_anywhere |= set(ledger.at(Place.DELETING))
    return cleanup.order


def _refill(cleanup: JobCleanup, order: _Order) -> None:
    """During the plan's looks: a poll, and the longest jobs described so far into the
    slots it shows free (started, they join the touched part of the order)."""
    cleanup.refresh()
    free = cleanup.free_slots() - len(cleanup.ledger.queue)
    if free <= 0 or not order.untouched:
        return
    order.untouched.sort()
    chosen = [job_id for *_, job_id in order.untouched[:free]]
    del order.untouched[:free]
    for job_id in chosen:
        cleanup.ledger.wait(job_id, named=True)
    cleanup.start_deletions()
    order.sort_chosen(cleanup, chosen)


def _held_back(cleanup: JobCleanup, job_id: str) -> bool:
    """Named, but outside the jobs an operator confirmed: reported, never touched."""
    if cleanup.confine_to is None or job_id in cleanup.confine_to:
        return False
    ledger = cleanup.ledger
    if ledger.place(job_id) is None and cleanup.guard.look(job_id, named=True, judge=False).gone:
        ledger.gone(job_id, named=True)  # gone: nothing to hold back
        return True
    if ledger.place(job_id) is None:
        logger.info("named, but not among the jobs confirmed: left alone", extra={"jobId": job_id})
        ledger.held_back(job_id)
    return True


def _look(cleanup: JobCleanup, job_id: str, order: _Order) -> int | None:
    """A named job looked at for the plan and decided (one that needs force fails the
    cleanup here): its execution count when it is to be deleted, else None once it is
    placed (gone, being deleted, cancelled to drain)."""
    look = cleanup.guard.look(job_id, named=True)
    decision, _ = cleanup.guard.decide(look)
    if decision is Decision.DELETE:
        assert look.job is not None
        return execution_count(look.job)
    cleanup.apply(look, named=True)
    place = cleanup.ledger.place(job_id)
    if place is Place.DRAINING:
        order.drained.append(job_id)
    elif place is Place.WAITING:  # cancelled, then found deletable
        return 0
    else:
        order.touched.append(job_id)
    return None
