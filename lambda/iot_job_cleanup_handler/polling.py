"""When the next poll comes, from what the cleanup learned of its own deletions.

1. ``learn``: at each poll, a deletion of ours no longer listed bounds the deletion time: it
   took longer than the last poll still listing it, and at most until the poll that did
   not. The most recently started of those says most about the deletions still running.
2. ``next_poll_in``: a deletion started at s is expected to finish between s plus those two
   bounds, and is looked for there every half second; before our first finish, every
   second (unless a slower interval was asked for). Only while no one else is deleting:
   under contention, a resource that polled faster would keep taking back the slots it
   frees, and the others would wait. Then it polls every second, as every resource does
   (they began together, and their rounds take alike, so they poll in step, which shares
   the slots evenly); with only jobs draining, every interval, since a freed slot is of no
   use yet.
3. ``finish_expected_before`` and ``lingering``: an invocation past its window goes on while
   a finish of ours is due before the next invocation could see it (a quiet boundary).

``MEMORY`` is what a warm container keeps between invocations (the Provider carries nothing
from one ``is_complete`` to the next): the deletion time learned and when each deletion of
ours began, keyed by the cleanup's marker. A cold container starts without, and the handler
works as well, only polling on the grid until it learns again. It uses the cleanup's public
face only, as ``finding``, ``draining`` and ``final_look`` do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ledger import Place

if TYPE_CHECKING:
    from .scheduling import JobCleanup

__all__ = [
    "CONTENDED_POLL_INTERVAL",
    "DEFAULT_POLL_INTERVAL",
    "FAST_POLL_INTERVAL",
    "FIRST_FINISH_POLL_INTERVAL",
    "MEMORY",
    "Memory",
    "finish_expected_before",
    "learn",
    "lingering",
    "next_poll_in",
]

FAST_POLL_INTERVAL = 0.5  # while one of our deletions is expected to finish
FIRST_FINISH_POLL_INTERVAL = 1.0  # before any deletion of ours was seen to finish
DEFAULT_POLL_INTERVAL = 2.0  # the handler's default query interval
CONTENDED_POLL_INTERVAL = 1.0  # while others delete too: every resource alike, so none takes more


class Memory:
    """A warm container's memory of each cleanup's deletions, by the cleanup's marker."""

    def __init__(self) -> None:
        self._durations: dict[str, tuple[float, float]] = {}
        self._starts: dict[tuple[str, str], float] = {}

    def duration(self, marker: str) -> tuple[float, float] | None:
        """The latest deletion's time: longer than, at most."""
        return self._durations.get(marker)

    def learned(self, marker: str, duration: tuple[float, float]) -> None:
        self._durations[marker] = duration

    def start_of(self, marker: str, job_id: str) -> float | None:
        """When our DeleteJob of ``job_id`` was answered, if this container sent it."""
        return self._starts.get((marker, job_id))

    def started(self, marker: str, job_id: str, at: float) -> None:
        self._starts[(marker, job_id)] = at

    def finished(self, marker: str, job_id: str) -> None:
        self._starts.pop((marker, job_id), None)

    def clear(self) -> None:
        self._durations.clear()
        self._starts.clear()


MEMORY = Memory()


def learn(cleanup: JobCleanup, vanished: list[str], polled_before: float | None, polled_at: float) -> None:
    """Step 1: the deletion time, from the deletions of ours that left the list at this poll."""
    started = {job_id: entry.started_at for job_id in vanished if (entry := cleanup.ledger.get(job_id))}
    for job_id in sorted((j for j in vanished if started[j] is not None), key=lambda j: (started[j], j)):
        began = started[job_id]
        assert began is not None
        if polled_before is not None and polled_before > began:
            cleanup.duration = (polled_before - began, polled_at - began)
            MEMORY.learned(cleanup.marker, cleanup.duration)
    for job_id in vanished:
        MEMORY.finished(cleanup.marker, job_id)


def next_poll_in(cleanup: JobCleanup, poll_interval: float) -> float:
    """Step 2: how long until the next poll."""
    if cleanup.others_deleting():
        slower_asked = poll_interval > DEFAULT_POLL_INTERVAL
        idle = not cleanup.ledger.any_at(Place.WAITING, Place.DELETING, Place.FINISHING)
        return poll_interval if slower_asked or idle else min(poll_interval, CONTENDED_POLL_INTERVAL)
    if cleanup.duration is None:  # before our first finish: poll faster, unless told to go slower
        ours = cleanup.ledger.any_at(Place.DELETING)
        quicker = ours and poll_interval <= DEFAULT_POLL_INTERVAL  # a slower interval was asked for
        return min(poll_interval, FIRST_FINISH_POLL_INTERVAL) if quicker else poll_interval
    shortest, longest = cleanup.duration
    now = cleanup.clock()
    starts = [e.started_at for e in cleanup.ledger.entries() if e.started_at is not None]
    windows = [(s + shortest, s + longest + poll_interval) for s in starts]
    if any(start <= now <= end for start, end in windows):
        return FAST_POLL_INTERVAL
    upcoming = [start - now for start, _ in windows if start > now]
    return max(FAST_POLL_INTERVAL / 5, min([poll_interval, *upcoming]))


def finish_expected_before(cleanup: JobCleanup, when: float) -> bool:
    """Whether a deletion of ours, by the deletion time learned, may finish before ``when``."""
    if cleanup.duration is None:
        return False
    shortest = cleanup.duration[0]
    return any(
        entry.started_at is not None and entry.started_at + shortest <= when
        for entry in cleanup.ledger.entries()
        if entry.place is Place.DELETING
    )


def lingering(cleanup: JobCleanup, pause: float, linger_until: float | None, quiet_for: float) -> bool:
    """Step 3, past the stop time: go on while a finish of ours is due before the next invocation."""
    wake = cleanup.clock() + pause
    return (
        linger_until is not None
        and wake <= linger_until
        and finish_expected_before(cleanup, wake + quiet_for)
    )
