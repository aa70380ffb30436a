"""The jobs the filters select, found as the slots need them, and placed in the cleanup.

``discovery`` walks IoT's listings; this puts what a walk finds where it belongs:

- ``refill``: walk on while fewer jobs wait for a slot than are wanted. A found job is put
  in line (judged again by the guard's look before its DeleteJob, I1), or seen being
  deleted, or, with a drain time, cancelled now if it runs. One judged not ours is judged
  again by the next walk, and whenever it is created again under its id; one outside the
  jobs an operator confirmed is held back, never touched.
- ``settled``: the walk is repeated until a whole walk finds no selected job left (I2), so
  a job created during the teardown is not left behind.
- ``adopt_deletions``: at the start of an invocation, deletions under way of jobs the filters
  select are ours to wait for.

It uses the cleanup's public face only, as ``planning`` and ``final_look`` do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .aws import DELETING, RUNNING_STATUSES
from .discovery import Discovery, Found
from .errors import TransientError
from .ledger import Place

if TYPE_CHECKING:
    from .scheduling import JobCleanup

__all__ = ["adopt_deletions", "look_found", "new_walk", "refill", "settled"]

logger = logging.getLogger("iot_job_cleanup")


def look_found(cleanup: JobCleanup) -> Callable[[str], Mapping[str, Any] | None]:
    """For a walk: a found job's description (None when gone or, by I3, not ours)."""

    def look(job_id: str) -> Mapping[str, Any] | None:
        return cleanup.guard.look(job_id, named=False, judge=False).job

    return look


def new_walk(cleanup: JobCleanup) -> None:
    """Begin a walk over the listings (with filters only): each judges what it finds afresh."""
    if not cleanup.request.selection.has_filters:
        return
    cleanup.walk = Discovery(
        cleanup.iot, cleanup.request.selection, clock=cleanup.clock, look=look_found(cleanup)
    )
    cleanup.walk_found = set()
    cleanup.walks += 1


def refill(cleanup: JobCleanup, ready: int) -> None:
    """Walk on while fewer than ``ready`` jobs wait for a slot."""
    while (
        cleanup.walk is not None
        and not cleanup.walk.exhausted
        and len(cleanup.ledger.queue) < ready
        and cleanup.clock() < cleanup.hard_stop
    ):
        try:
            found = cleanup.walk.next_match(cleanup.hard_stop)
        except TransientError as exc:  # the walk goes on from there next round
            logger.warning("transient IoT error while discovering; will retry", extra={"error": str(exc)})
            break
        if found is None:
            break
        _place(cleanup, found)


def _place(cleanup: JobCleanup, found: Found) -> None:
    ledger = cleanup.ledger
    entry = ledger.get(found.job_id)
    place = entry.place if entry else None
    if place is Place.HELD_BACK:
        return
    if (
        place is Place.NOT_OURS
        and entry is not None
        and entry.identity == found.identity
        and entry.judged_in_walk == cleanup.walks
    ):
        return  # judged not ours in this walk; a later walk, or a job created again, is judged afresh
    if cleanup.confine_to is not None and found.job_id not in cleanup.confine_to:
        if place in (None, Place.WAITING, Place.GONE, Place.FINISHING, Place.NOT_OURS):
            logger.info("selected, not among the jobs confirmed: left alone", extra={"jobId": found.job_id})
            ledger.held_back(found.job_id)
        return
    cleanup.walk_found.add(found.job_id)
    if place in (Place.DELETING, Place.DRAINING, Place.WAITING):
        return
    if found.status == DELETING:
        cleanup.mark_deleting(found.job_id, named=False)
        return
    ledger.wait(found.job_id, named=False, identity=found.identity)
    if cleanup.request.drain is not None and found.status in RUNNING_STATUSES:
        # Cancel it now: no device starts it while the slots are busy.
        cleanup.apply(cleanup.guard.look(found.job_id, named=False), named=False)


def settled(cleanup: JobCleanup) -> bool:
    """True once a whole walk found no selected job left; starts the next walk when due."""
    walk, ledger = cleanup.walk, cleanup.ledger
    if walk is None:
        return True
    if not walk.exhausted:
        return False
    if all(ledger.place(job_id) is Place.NOT_OURS for job_id in cleanup.walk_found):
        # none of what it found was ours (judged when looked at): nothing selected is left
        return True
    if ledger.any_at(Place.WAITING, Place.DELETING, Place.FINISHING, Place.DRAINING):
        return False
    new_walk(cleanup)  # the last walk found jobs, all gone now: look again for any left
    return False


def adopt_deletions(cleanup: JobCleanup) -> None:
    """Deletions under way of jobs the filters select are ours to wait for."""
    if cleanup.walk is None:
        return
    ledger, selection = cleanup.ledger, cleanup.request.selection
    for job_id in sorted(cleanup.deleting_anywhere - cleanup.named):
        if (
            ledger.place(job_id) in (Place.NOT_OURS, Place.DELETING, Place.HELD_BACK)
            or not selection.id_may_match(job_id)
            or (cleanup.confine_to is not None and job_id not in cleanup.confine_to)
        ):
            continue
        look = cleanup.guard.look(job_id, named=False)
        if look.selected and look.status == DELETING:
            cleanup.mark_deleting(job_id, named=False)
        elif not look.selected and not look.gone:
            ledger.not_ours(job_id, look.identity if look.job is not None else None, walk=cleanup.walks)
