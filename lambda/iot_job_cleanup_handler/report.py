"""What a cleanup reports: a progress snapshot (for the command line's bar, the rehearsal's
view and metrics), the jobs it knows are not gone, the jobs really left (each looked at
again), and the timeout message that counts them. It reads the cleanup; it changes nothing
but what a look at IoT tells."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .aws import DELETING
from .errors import counted
from .ledger import Place

if TYPE_CHECKING:
    from .scheduling import JobCleanup

__all__ = ["MAX_MESSAGE_BYTES", "CleanupProgress", "jobs_left", "progress_of", "remaining", "timeout_message"]

# CloudFormation takes at most 4096 bytes of response body, and the Provider framework's
# Reason is our message plus a "Logs:" line and a JavaScript stack: keep ours well inside.
MAX_MESSAGE_BYTES = 1500
STATUSES_IN_REPORT = 20
REPORT_SECONDS = 10.0  # how long the timeout report may spend looking at the jobs left


@dataclass(frozen=True)
class CleanupProgress:
    """A snapshot of a cleanup, for a progress bar, a view or metrics: read, never re-derived."""

    gone: int  # selected jobs seen gone in this run
    deleting: int  # ours in DELETION_IN_PROGRESS
    waiting: int  # selected, deletion not started
    draining: int  # cancelled, devices busy
    finishing: int  # left the deletion list, not yet seen gone
    slots_in_use: int
    slots_held_by_others: int
    limit_exceeded: int  # LimitExceededException answers to our DeleteJob
    throttled: int  # throttled answers to our calls
    deletion_seconds: float | None  # how long our latest deletion took, at most
    deleting_ids: tuple[str, ...]
    not_started: tuple[str, ...]  # selected jobs whose deletion has not started, in line order
    cancelled_not_deleted: tuple[str, ...]  # this run cancelled them; neither deleting nor gone
    held_back: tuple[str, ...]  # selected, outside the jobs confirmed: never touched
    not_ours: int  # found by the listings, judged outside the selection
    discovery_finished: bool


def progress_of(cleanup: JobCleanup) -> CleanupProgress:
    ledger = cleanup.ledger
    ours = set(ledger.at(Place.DELETING))
    in_use = cleanup.deleting_anywhere | ours
    return CleanupProgress(
        gone=ledger.count(Place.GONE),
        deleting=len(ours),
        waiting=ledger.count(Place.WAITING),
        draining=ledger.count(Place.DRAINING),
        finishing=ledger.count(Place.FINISHING),
        slots_in_use=len(in_use),
        slots_held_by_others=len(in_use - ours - {e.job_id for e in ledger.entries()}),
        limit_exceeded=cleanup.limit_exceeded,
        throttled=cleanup.iot.throttled,
        deletion_seconds=cleanup.duration[1] if cleanup.duration else None,
        deleting_ids=tuple(sorted(ours)),
        not_started=tuple(ledger.queue),
        cancelled_not_deleted=tuple(
            e.job_id
            for e in ledger.entries()
            if e.cancelled_by_us and e.place in (Place.DRAINING, Place.WAITING)
        ),
        held_back=tuple(ledger.at(Place.HELD_BACK)),
        not_ours=ledger.count(Place.NOT_OURS),
        discovery_finished=cleanup.walk is None or cleanup.walk.exhausted,
    )


def remaining(cleanup: JobCleanup) -> Iterator[tuple[str, str]]:
    """(job id, what holds it) for every job the cleanup knows is not gone yet."""
    ledger, now = cleanup.ledger, cleanup.clock()
    for job_id in ledger.at(Place.DELETING):
        yield job_id, DELETING
    for job_id in sorted(ledger.at(Place.DRAINING), key=cleanup.drain_ends):
        yield (
            job_id,
            f"cancelled, devices busy, drain ends in {max(0.0, cleanup.drain_ends(job_id) - now):.0f} s",
        )
    for job_id in ledger.at(Place.FINISHING):
        yield job_id, "deletion finishing"
    for job_id in ledger.queue:
        yield job_id, "waiting for a deletion slot"


def jobs_left(cleanup: JobCleanup, limit: int = STATUSES_IN_REPORT) -> tuple[int, int, list[str]]:
    """The jobs really left, each looked at again: (how many, how many more could not be
    looked at in time, 'id (status, what holds it)' for the first ``limit``). Named jobs
    the frontier search took for gone are looked at too: someone may have deleted others
    out of our order."""
    unknown = [
        (job_id, "not deleted by this cleanup yet")
        for job_id in cleanup.order
        if cleanup.ledger.place(job_id) is None
    ]
    left, unchecked = 0, 0
    described: list[str] = []
    look_until = min(cleanup.hard_stop, cleanup.clock() + REPORT_SECONDS)
    for job_id, holding in [*remaining(cleanup), *unknown]:
        if holding == DELETING and job_id in cleanup.deleting_anywhere:
            status: str | None = DELETING
        elif cleanup.clock() >= look_until:
            unchecked += 1
            continue
        else:
            try:
                status = cleanup.iot.status(job_id)
            except Exception:  # a report never fails on a look
                unchecked += 1
                continue
        if status is None:  # gone after all: not left
            continue
        left += 1
        if len(described) < limit:
            described.append(
                f"{job_id} ({status})" if status == holding else f"{job_id} ({status}, {holding})"
            )
    return left, unchecked, described


def timeout_message(cleanup: JobCleanup, elapsed: float) -> str:
    """How many selected jobs are really left (looked at again), which, and what to do,
    named while the message stays within its budget."""
    left, unchecked, described = jobs_left(cleanup)
    named = len(cleanup.request.job_ids)
    tail = ". Deletions under way go on in IoT; run cdk destroy again to wait for them and delete the rest."
    if left == 0 and cleanup.knows_no_job():
        head = (
            f"Timed out after {elapsed:.0f} s: IoT did not answer in time "
            f"({counted(cleanup.iot.throttled, 'throttled answer')}), so the jobs left could not be counted"
            + (f"; up to {counted(named, 'named job')} may be left" if named else "")
            + ("; the filters' jobs were not examined" if cleanup.request.selection.has_filters else "")
        )
        return head + tail
    if named and not cleanup.request.selection.has_filters:
        head = f"Timed out after {elapsed:.0f} s with {left} of {counted(named, 'job')} not deleted"
    else:
        head = f"Timed out after {elapsed:.0f} s with {counted(left, 'job')} not deleted"
    if unchecked:
        head += f" and {counted(unchecked, 'job')} not looked at again in time"
    if cleanup.discovery_unfinished():
        head += ", and more jobs the filters may select not examined yet"
    head += ": " if described else ""
    budget = MAX_MESSAGE_BYTES - len((head + tail).encode()) - len(b", and 99999 more")
    shown_items: list[str] = []
    for item in described:
        if len(", ".join([*shown_items, item]).encode()) > budget:
            break
        shown_items.append(item)
    more = f", and {left - len(shown_items)} more" if left > len(shown_items) and shown_items else ""
    return f"{head}{', '.join(shown_items)}{more}{tail}"
