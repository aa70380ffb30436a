"""The final look (I2): no success until every named job was seen gone by a look made after
the cleanup's last DeleteJob, whatever was seen of it before.

1. ``in_idle``: while the last deletions run (nothing waits for a slot, discovery has nothing
   more to give), the named jobs due are looked at in the pauses between polls, as fast as
   IoT's rate per operation lets ``IotJobs`` send them, none that would wait for its turn past
   the pause, and none when a finish of ours is due within about a second, so the
   confirmation of a deletion that ends is not kept waiting.
2. ``all_gone``: after the last finish, the jobs still due are looked at, until the run's
   stop time (``looks_until``: the next invocation looks again, or the last one reports
   what is left before CloudFormation's own timeout); any that exists again goes back in
   line. The frontier search trusts list order; this is what catches a job that someone
   else deleted, or created again, out of that order.
3. Then a named job created again since its look is caught if it is running (a new job is
   SCHEDULED or IN_PROGRESS: two listings) or being deleted (the round's poll). What remains
   is a job created again after its look that is already COMPLETED or CANCELED (README, I2).

Each look is placed by the cleanup's one decision on such a look (``JobCleanup.settle``),
the one a deletion's confirmation uses. It uses the cleanup's public face only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ledger import Place

if TYPE_CHECKING:
    from .scheduling import JobCleanup

__all__ = ["FINAL_LOOK_ROOM", "all_gone", "due", "in_idle"]

# The final look made between polls stops this long before the next poll, and a second
# more before a finish of ours is expected.
FINAL_LOOK_ROOM = 0.2


def due(cleanup: JobCleanup) -> list[str]:
    """The named jobs not seen gone since the last DeleteJob (those held back aside)."""
    ledger = cleanup.ledger
    return [
        job_id
        for job_id in cleanup.order
        if ledger.place(job_id) is not Place.HELD_BACK and not ledger.seen_gone_since_last_delete(job_id)
    ]


def all_gone(cleanup: JobCleanup) -> bool:
    """Every named job seen gone after the last DeleteJob, and none running or being deleted
    again (steps 2 and 3). With no named job there is nothing to look at, and nothing is listed."""
    if not cleanup.order:
        return True
    for job_id in due(cleanup):
        if cleanup.clock() >= min(cleanup.hard_stop, cleanup.looks_until):
            return False  # out of time: the next invocation looks again, or the report says what is left
        _look(cleanup, job_id)
    if not _all_gone_or_held_back(cleanup, cleanup.order):
        return False
    created_again = sorted((cleanup.iot.running_job_ids() | cleanup.deleting_anywhere) & set(cleanup.order))
    for job_id in created_again:
        if cleanup.ledger.place(job_id) is not Place.HELD_BACK:
            _look(cleanup, job_id)
    return _all_gone_or_held_back(cleanup, created_again)


def in_idle(cleanup: JobCleanup, until: float) -> None:
    """Step 1, in the pause before ``until``."""
    if cleanup.ledger.any_at(Place.WAITING, Place.DRAINING) or cleanup.discovery_unfinished():
        return
    for job_id in due(cleanup):
        now = cleanup.clock()
        stop = min(until, cleanup.hard_stop) - FINAL_LOOK_ROOM
        if (
            max(now, cleanup.iot.next_turn("describe_job")) >= stop  # no waiting for a turn past the pause
            or cleanup.finish_expected_before(now + FINAL_LOOK_ROOM + 1.0)
        ):
            return
        if cleanup.ledger.place(job_id) in (Place.GONE, None):  # the others are confirmed as they finish
            _look(cleanup, job_id)


def _look(cleanup: JobCleanup, job_id: str) -> None:
    cleanup.settle(cleanup.guard.look(job_id, named=True, judge=False), named=True)


def _all_gone_or_held_back(cleanup: JobCleanup, job_ids: tuple[str, ...] | list[str]) -> bool:
    return all(cleanup.ledger.place(job_id) in (Place.GONE, Place.HELD_BACK) for job_id in job_ids)
