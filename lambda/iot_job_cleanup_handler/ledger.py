"""Where each job stands in a cleanup: one place per job, changed only by named transitions.

    (found) --wait--> WAITING --start--> DELETING --left_list--> FINISHING --gone--> GONE
                         |  ^                ^                        |
                  drain  |  | wait           | deleting               | wait (created again)
                         v  |                |                        v
                       DRAINING -------------+                     WAITING
    any discovered job --not_ours--> NOT_OURS;  outside ``confine_to`` --held_back--> HELD_BACK

A job enters the ledger when the cleanup learns of it (named in JobIds, or found by the
filters). ``WAITING`` jobs keep their order in a queue: the next deletion is its head.
Only ``start`` says that our DeleteJob was accepted, and it takes the clearance the guard
gave (``guard``): no job reaches ``DELETING`` by our hand without one.

The ledger also counts the DeleteJob calls sent (``delete_sent``, any job, accepted or not)
and, for a job seen gone, how many had been sent by then: a look is final (I2) only if no
DeleteJob followed it (``seen_gone_since_last_delete``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

__all__ = ["Entry", "Ledger", "Place"]


class Place(Enum):
    WAITING = "waiting for a deletion slot"
    DRAINING = "cancelled, devices busy"
    DELETING = "DELETION_IN_PROGRESS"
    FINISHING = "left the deletion list, not yet seen gone"
    GONE = "gone"
    NOT_OURS = "not selected"
    HELD_BACK = "selected, outside the jobs confirmed"


# Where each transition may come from (None: a job the ledger does not hold yet).
_FROM: dict[str, frozenset[Place | None]] = {
    "wait": frozenset(
        {None, Place.WAITING, Place.DRAINING, Place.FINISHING, Place.GONE, Place.DELETING, Place.NOT_OURS}
    ),
    "drain": frozenset({None, Place.WAITING, Place.DRAINING}),
    "deleting": frozenset({None, Place.WAITING, Place.DRAINING, Place.FINISHING, Place.DELETING, Place.GONE}),
    "left_list": frozenset({Place.DELETING}),
    "gone": frozenset(set(Place) - {Place.NOT_OURS} | {None}),
    "not_ours": frozenset(set(Place) | {None}),
    "held_back": frozenset({None, Place.WAITING, Place.GONE, Place.FINISHING, Place.NOT_OURS}),
    "cancel_refused": frozenset({Place.DRAINING}),
}


class IllegalTransitionError(AssertionError):
    """A bug in the engine: a job was moved where it cannot go from where it is."""


@dataclass
class Entry:
    job_id: str
    named: bool  # in JobIds (selected by id), else found by the filters
    place: Place
    drain_ends: float | None = None  # DRAINING: when its devices' time is over
    started_at: float | None = None  # DELETING: when our DeleteJob was accepted (this invocation)
    cancelled_by_us: bool = False  # this run sent the CancelJob
    clearance: object | None = None  # WAITING: the guard's leave to delete it, from a look just made
    identity: tuple[str | None, float | None] | None = None  # NOT_OURS: which job was judged
    judged_in_walk: int = 0  # NOT_OURS: the discovery walk that judged it (each walk judges anew)
    gone_seen_after: int = -1  # GONE: how many DeleteJob calls had been sent when a look showed it gone


class Ledger:
    """Every job the cleanup knows of, and where it stands."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._by_place: dict[Place, set[str]] = {place: set() for place in Place}  # an index
        self.queue: deque[str] = deque()  # the WAITING jobs, next deletion first
        self.deletes_sent = 0  # DeleteJob calls sent, for any job, whatever their answer

    # -- reading

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._entries

    def get(self, job_id: str) -> Entry | None:
        return self._entries.get(job_id)

    def place(self, job_id: str) -> Place | None:
        entry = self._entries.get(job_id)
        return entry.place if entry else None

    def at(self, *places: Place) -> list[str]:
        """The jobs in these places, sorted (the queue keeps its own order)."""
        if len(places) == 1:
            return sorted(self._by_place[places[0]])
        return sorted(job_id for place in places for job_id in self._by_place[place])

    def any_at(self, *places: Place) -> bool:
        return any(self._by_place[place] for place in places)

    def entries(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def count(self, place: Place) -> int:
        return len(self._by_place[place])

    def ids_at(self, place: Place) -> frozenset[str]:
        return frozenset(self._by_place[place])

    def seen_gone_since_last_delete(self, job_id: str) -> bool:
        """Gone, by a look made after the cleanup's latest DeleteJob (of any job)."""
        entry = self._entries.get(job_id)
        return entry is not None and entry.place is Place.GONE and entry.gone_seen_after == self.deletes_sent

    # -- the transitions

    def _move(self, transition: str, job_id: str, named: bool, place: Place) -> Entry:
        entry = self._entries.get(job_id)
        if (entry.place if entry else None) not in _FROM[transition]:
            raise IllegalTransitionError(f"{transition} of {job_id!r} from {entry.place if entry else None}")
        if entry is None:
            entry = self._entries[job_id] = Entry(job_id, named, place)
        if entry.place is Place.WAITING and place is not Place.WAITING and job_id in self.queue:
            self.queue.remove(job_id)
        self._by_place[entry.place].discard(job_id)
        self._by_place[place].add(job_id)
        entry.place = place
        entry.clearance = None
        if place is not Place.DRAINING:
            entry.drain_ends = None
        if place is not Place.DELETING:
            entry.started_at = None
        return entry

    def wait(
        self,
        job_id: str,
        *,
        named: bool,
        front: bool = False,
        clearance: object = None,
        identity: tuple[str | None, float | None] | None = None,
    ) -> None:
        """Selected and not being deleted: in line for a slot (``front``: next), with the
        guard's ``clearance`` when a look just now found it deletable (and the ``identity``
        a listing showed, ARN and creation time, when it was found)."""
        was_waiting = self.place(job_id) is Place.WAITING
        entry = self._move("wait", job_id, named, Place.WAITING)
        entry.clearance = clearance
        entry.identity = identity or entry.identity
        if was_waiting and job_id in self.queue:
            if not front:
                return
            self.queue.remove(job_id)
        if front:
            self.queue.appendleft(job_id)
        else:
            self.queue.append(job_id)

    def drain(self, job_id: str, *, named: bool, ends: float, cancelled_by_us: bool = False) -> None:
        """Cancelled (by us or before): waiting for its devices until ``ends``."""
        entry = self._move("drain", job_id, named, Place.DRAINING)
        entry.drain_ends = ends
        entry.cancelled_by_us = entry.cancelled_by_us or cancelled_by_us

    def start(self, job_id: str, clearance: object, *, at: float) -> None:
        """Our DeleteJob was accepted. ``clearance`` is the guard's, for this job."""
        if getattr(clearance, "job_id", None) != job_id:
            raise IllegalTransitionError(f"start of {job_id!r} without the guard's clearance for it")
        entry = self._entries.get(job_id)
        named = entry.named if entry else bool(getattr(clearance, "named", False))
        self._move("deleting", job_id, named, Place.DELETING).started_at = at

    def deleting(self, job_id: str, *, named: bool, started_at: float | None = None) -> None:
        """Seen in DELETION_IN_PROGRESS (started by an earlier invocation, or the list lagged);
        ``started_at``: when our DeleteJob was accepted, if known (warm memory)."""
        known = self.get(job_id).started_at if job_id in self else None
        self._move("deleting", job_id, named, Place.DELETING).started_at = known or started_at

    def left_list(self, job_id: str) -> None:
        """No longer listed in DELETION_IN_PROGRESS: its slot is free; not yet seen gone."""
        self._move("left_list", job_id, False, Place.FINISHING)

    def gone(self, job_id: str, *, named: bool) -> None:
        """A look just now showed that the job no longer exists."""
        self._move("gone", job_id, named, Place.GONE).gone_seen_after = self.deletes_sent

    def delete_sent(self) -> None:
        """A DeleteJob is about to be sent: every look before it is no longer a final one."""
        self.deletes_sent += 1

    def not_ours(
        self, job_id: str, identity: tuple[str | None, float | None] | None = None, *, walk: int = 0
    ) -> None:
        """A job the filters found that a look showed outside the selection: never touched.
        ``identity`` (ARN, creation time) says which job: one created again under the id is
        judged afresh."""
        entry = self._entries.get(job_id)
        if entry is not None and entry.named:
            raise IllegalTransitionError(f"not_ours of {job_id!r}: a named job is selected by its id")
        entry = self._move("not_ours", job_id, False, Place.NOT_OURS)
        entry.identity = identity or entry.identity  # a refused look tells none: keep the listing's
        entry.judged_in_walk = walk

    def cancel_refused(self, job_id: str) -> None:
        """The CancelJob recorded before it was sent was refused: the job was not cancelled."""
        entry = self._move("cancel_refused", job_id, False, Place.WAITING)
        entry.cancelled_by_us = False
        self.queue.appendleft(job_id)

    def held_back(self, job_id: str) -> None:
        """Selected, but outside the jobs the operator confirmed: reported, never touched."""
        self._move("held_back", job_id, False, Place.HELD_BACK)
