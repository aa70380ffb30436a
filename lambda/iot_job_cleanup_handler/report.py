"""What a cleanup reports: a progress snapshot (for the command line's bar, the rehearsal's
view and metrics), the jobs it knows are not gone, the jobs really left (each looked at
again), and the timeout message that counts them. It reads the cleanup; it changes nothing
but what a look at IoT tells."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .aws import DELETING
from .contract import MAX_TOTAL_TIMEOUT
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

    @property
    def left(self) -> int:
        """Selected jobs not gone, as far as the cleanup knows (more may be found while
        ``discovery_finished`` is False)."""
        return self.deleting + self.waiting + self.draining + self.finishing + len(self.held_back)


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


def _timed_out(cleanup: JobCleanup, elapsed: float) -> str:
    """'Timed out after 3570 s', or for the last of several stages how long the whole ran."""
    request = cleanup.request
    if request.stages == 1:
        return f"Timed out after {elapsed:.0f} s"
    before = (request.stages - 1) * MAX_TOTAL_TIMEOUT  # every earlier stage ran its hour and handed on
    return (
        f"Stage {request.stage} of {request.stages}, the last, timed out after {elapsed:.0f} s "
        f"(about {(before + elapsed) / 3600:.1f} h with the stages before it)"
    )


def _what_finishes_it(stack_name: str | None) -> str:
    resume = f"iot-job-cleanup resume --stack {stack_name}" if stack_name else "iot-job-cleanup resume"
    return (
        f". Deletions under way go on in IoT; run cdk destroy again, or {resume} (no time limit), "
        "to wait for them and delete the rest."
    )


def timeout_message(cleanup: JobCleanup, elapsed: float, stack_name: str | None = None) -> str:
    """How many selected jobs are really left (looked at again), which, how long it ran, and
    what finishes the rest, named while the message stays within its budget. ``elapsed`` is
    how long it had run when asked; the time the looks at the jobs left take is added."""
    looks_began = cleanup.clock()
    left, unchecked, described = jobs_left(cleanup)
    elapsed += cleanup.clock() - looks_began
    named = len(cleanup.request.job_ids)
    tail = _what_finishes_it(stack_name)
    timed_out = _timed_out(cleanup, elapsed)
    if left == 0 and cleanup.knows_no_job():
        head = (
            f"{timed_out}: IoT did not answer in time "
            f"({counted(cleanup.iot.throttled, 'throttled answer')}), so the jobs left could not be counted"
            + (f"; up to {counted(named, 'named job')} may be left" if named else "")
            + ("; the filters' jobs were not examined" if cleanup.request.selection.has_filters else "")
        )
        return head + tail
    count = left + unchecked  # a job not looked at again is not known to be gone
    at_least = "at least " if cleanup.discovery_unfinished() else ""
    # A job not looked at again may well be gone: it is not known to be deleted, not known left.
    not_deleted = "not known to be deleted" if unchecked else "not deleted"
    if named and not cleanup.request.selection.has_filters:
        head = f"{timed_out} with {count} of {counted(named, 'job')} {not_deleted}"
    else:
        head = f"{timed_out} with {at_least}{counted(count, 'selected job')} {not_deleted}"
    if unchecked:
        head += f" ({unchecked} of them not looked at again in time: they may be gone)"
    if at_least:
        head += " (the filters' listing was not finished: there may be more)"
    head += ": " if described else ""
    budget = MAX_MESSAGE_BYTES - len((head + tail).encode()) - len(b", and 99999 more")
    shown_items: list[str] = []
    for item in described:
        if len(", ".join([*shown_items, item]).encode()) > budget:
            break
        shown_items.append(item)
    more = f", and {count - len(shown_items)} more" if count > len(shown_items) and shown_items else ""
    return f"{head}{', '.join(shown_items)}{more}{tail}"
