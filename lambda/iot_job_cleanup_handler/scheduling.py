"""Deleting a cleanup's jobs through IoT's 10 shared deletion slots, with no state between invocations.

Named jobs are started in a planned order (the longest deletions first), so that order is
always a prefix of jobs gone or being deleted followed by jobs nobody touched yet, and a
binary search finds the frontier again from IoT. Jobs the filters select are found by a
walk over IoT's listings (``discovery``, placed by ``finding``) as slots free up; before
reporting complete, the walk is repeated until it finds nothing left, so a job created
during the teardown is not left behind. With a drain time, a running job is cancelled
first and deleted once its devices have finished (or, with force, once the drain time is
over); ``draining`` paces the looks at it meanwhile. When to poll again comes from what was
learned of our own deletions (``polling``).

Each job's place is kept in a ``Ledger`` (one place per job, named transitions); every call
that acts on a job goes through the ``Guard`` (the trust rules I1-I4). Success (``done``
and ``all_gone``) is a final look: every named job seen gone after the last DeleteJob
(``final_look``, made while the last deletions run), and a whole walk that found no
selected job left. The plan that starts the first deletions is ``planning``'s.
"""

from __future__ import annotations

import logging
import math
import random as _random
import time
from collections.abc import Callable, Iterator

from . import discovery, draining, final_look, finding, planning, polling, report
from .aws import DELETING, IotJobs
from .backoff import Backoff
from .contract import CleanupRequest
from .discovery import Discovery
from .errors import CleanupError, TransientError
from .guard import CANCEL_REASON_CODE, Decision, Guard, Look, devices_busy
from .ledger import Ledger, Place
from .planning import execution_count
from .report import CleanupProgress

__all__ = [
    "CANCEL_REASON_CODE",
    "DELETION_SLOTS",
    "Backoff",
    "CleanupProgress",
    "JobCleanup",
    "devices_busy",
    "execution_count",
    "forget_cached_facts",
]

logger = logging.getLogger("iot_job_cleanup")

DELETION_SLOTS = 10  # IoT allows 10 jobs in DELETION_IN_PROGRESS per account and region.
LOOKAHEAD = DELETION_SLOTS  # discovered jobs ready beyond the free slots, to refill at once


def forget_cached_facts() -> None:
    """Start as a cold container would: no targets, tags or deletion times remembered."""
    discovery.forget_cached_facts()
    polling.MEMORY.clear()


class JobCleanup:
    """Deletes one cleanup's jobs, named and discovered, through the shared deletion slots."""

    def __init__(
        self,
        iot: IotJobs,
        request: CleanupRequest,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        order: tuple[str, ...] | None = None,
        planned: bool = True,
        drained_tail: int = 0,
        hard_stop: float = math.inf,
        cancel_comment: str = "Cancelled by IotJobCleanup before deleting it.",
        marker: str = "cleanup",
        drain_from: float | None = None,
        confine_to: frozenset[str] | None = None,
        recent_tags_decide: bool = False,
    ) -> None:
        self.iot = iot
        self.iot.hard_stop = hard_stop
        self.request = request
        self.named = frozenset(request.job_ids)
        self.order = order or request.job_ids
        # Named jobs were described before any deletion (plan): without that, each is looked
        # at before its DeleteJob, so a running one fails the cleanup before it is touched.
        self.planned = planned
        # The last ``drained_tail`` jobs of the order were cancelled to drain: they are
        # deleted as their devices finish, in no set order, so the frontier search leaves them out.
        self.drained_tail = drained_tail if order else 0
        self.hard_stop = hard_stop  # the Lambda's own timeout, less a margin: never run past it
        self.clock = clock
        self.sleep = sleep
        # With confine_to, only those jobs may be touched (an operator confirmed them).
        self.confine_to = confine_to
        self.guard = Guard(
            iot,
            request,
            clock=clock,
            marker=marker,
            cancel_comment=cancel_comment,
            drain_from=clock() if drain_from is None else drain_from,
            recent_tags_decide=recent_tags_decide,
        )
        self.ledger = Ledger()
        self.backoff = Backoff(random=random)  # LimitExceededException: reset by a deletion started
        self.retry_backoff = Backoff(random=random)  # transient errors: reset by a round that went through
        self.deleting_anywhere: set[str] = set()  # every job in DELETION_IN_PROGRESS, at the last poll
        self.no_delete_before = 0.0
        self.last_poll_at: float | None = None
        self.marker = marker
        # The latest deletion: longer than, at most; remembered while the container is warm.
        self.duration: tuple[float, float] | None = polling.MEMORY.duration(marker)
        self.walk: Discovery | None = None
        self.walk_found: set[str] = set()  # the jobs this walk found
        self.walks = 0  # how many walks began: each judges the jobs it finds afresh
        finding.new_walk(self)
        self.drain_checks = draining.DrainChecks(clock)
        self.limit_exceeded = 0
        self.looks_until = math.inf  # the final look after the last finish stops here (``run_until``)

    # -- applying what a look showed

    def apply(self, look: Look, *, named: bool) -> None:
        """Put the job where the guard's decision on a fresh look says (may cancel it now)."""
        decision, ends = self.guard.decide(look)
        job_id = look.job_id
        if decision is Decision.GONE:
            self.ledger.gone(job_id, named=named)
        elif decision is Decision.NOT_OURS:
            logger.info("not selected: left alone", extra={"jobId": job_id, "why": look.why})
            self.ledger.not_ours(job_id, look.identity if look.job is not None else None, walk=self.walks)
        elif decision is Decision.DELETING:
            self.mark_deleting(job_id, named=named)
        elif decision is Decision.CANCEL:
            self._cancel(look, named=named)
            self.drain_checks.looked(job_id)
        elif decision is Decision.WAIT_DEVICES:
            assert ends is not None
            self.ledger.drain(job_id, named=named, ends=ends)
            self.drain_checks.looked(job_id)
        else:
            self.ledger.wait(job_id, named=named, front=True, clearance=self.guard.clear(look, named=named))

    def mark_deleting(self, job_id: str, *, named: bool) -> None:
        """Seen being deleted: with its start, if a warm container remembers our DeleteJob."""
        self.ledger.deleting(job_id, named=named, started_at=polling.MEMORY.start_of(self.marker, job_id))
        self.deleting_anywhere.add(job_id)

    def settle(self, look: Look, *, named: bool) -> None:
        """Where a job goes on a look that tells only whether and how it exists (``judge=False``):
        a deletion's confirmation, and the final look (I2). Gone; still being deleted (the list
        lagged behind, or someone else deletes it); not ours (a refusal judged so, by I3); held
        back (it exists again, but is not among the jobs an operator confirmed); else deleted,
        then created again: a new job, looked at before anything is done to it."""
        job_id = look.job_id
        if look.gone:
            self.ledger.gone(job_id, named=named)
        elif look.status == DELETING:
            self.mark_deleting(job_id, named=named)
        elif look.job is None:
            self.ledger.not_ours(job_id)
        elif self.confine_to is not None and job_id not in self.confine_to:
            self.ledger.held_back(job_id)
        else:
            self.ledger.wait(job_id, named=named, front=named)

    def _cancel(self, look: Look, *, named: bool) -> None:
        assert self.request.drain is not None
        # Recorded before the call: were the answer lost, or the run stopped, the job is
        # known as cancelled by us (a later look shows whether the cancel took).
        self.ledger.drain(
            look.job_id, named=named, ends=self.clock() + self.request.drain, cancelled_by_us=True
        )
        try:
            again = self.guard.cancel(look, named=named)
        except CleanupError:  # refused: the job was not cancelled, and the report says so
            self.ledger.cancel_refused(look.job_id)
            raise
        if again is not None:  # it changed meanwhile: decide again from the new look
            self.apply(again, named=named)

    # -- reading the state from IoT

    def plan(self) -> tuple[str, ...]:
        """Start the first deletions at once, then order the rest while they run (``planning``)."""
        return planning.plan(self)

    def survey(self) -> None:
        """At the start of an invocation: where the named jobs stand, from IoT."""
        self.deleting_anywhere = self.iot.deleting_job_ids()
        split = len(self.order) - self.drained_tail
        ids, drained = self.order[:split], self.order[split:]
        frontier = self._first_untouched(ids)
        for job_id in ids[:frontier]:
            if job_id in self.deleting_anywhere:
                self.mark_deleting(job_id, named=True)
        for job_id in ids[frontier:]:
            if self.ledger.place(job_id) in (None, Place.WAITING):
                self.ledger.wait(job_id, named=True)
        for job_id in drained:  # each looked at, and placed as a drain check would
            if job_id in self.deleting_anywhere:
                self.mark_deleting(job_id, named=True)
            elif self.ledger.place(job_id) in (None, Place.WAITING):
                self.apply(self.guard.look(job_id, named=True), named=True)
        finding.adopt_deletions(self)

    def _first_untouched(self, ids: tuple[str, ...]) -> int:
        low, high = 0, len(ids)
        while low < high:
            middle = (low + high) // 2
            if self._touched(ids[middle]):
                low = middle + 1
            else:
                high = middle
        return low

    def _touched(self, job_id: str) -> bool:
        if job_id in self.deleting_anywhere:
            return True
        look = self.guard.look(job_id, named=True, judge=False)
        if look.gone:
            self.ledger.gone(job_id, named=True)
        return look.gone or look.status == DELETING

    def refresh(self) -> None:
        """One poll: which deletions are still under way.

        A job of ours that left the DELETION_IN_PROGRESS list frees its slot at once; it
        is confirmed gone afterwards (``confirm_gone``), so the slot is reused without
        waiting for the confirmation and a list that lags behind never ends the wait early.
        """
        polled_before, self.last_poll_at = self.last_poll_at, self.clock()
        self.deleting_anywhere = self.iot.deleting_job_ids()
        vanished = [
            job_id for job_id in self.ledger.at(Place.DELETING) if job_id not in self.deleting_anywhere
        ]
        polling.learn(self, vanished, polled_before, self.last_poll_at)
        for job_id in vanished:
            self.ledger.left_list(job_id)

    def next_poll_in(self, poll_interval: float) -> float:
        """How long until the next poll (``polling``): fast where a deletion of ours is expected
        to finish, every second before our first finish or while others delete too."""
        return polling.next_poll_in(self, poll_interval)

    def confirm_gone(self) -> None:
        """Deletions of ours that left the list, looked at: gone, or placed by ``settle``."""
        for job_id in self.ledger.at(Place.FINISHING):
            if self.clock() >= self.hard_stop:
                return
            entry = self.ledger.get(job_id)
            named = bool(entry and entry.named)
            self.settle(self.guard.look(job_id, named=named, judge=False), named=named)

    # -- discovery (``finding``)

    def refill(self, ready: int) -> None:
        """Walk on while fewer than ``ready`` jobs wait for a slot."""
        finding.refill(self, ready)

    def discovery_settled(self) -> bool:
        """True once a whole walk found no selected job left; starts the next walk when due."""
        return finding.settled(self)

    # -- drain

    def check_drains(self, poll_interval: float) -> None:
        """Draining jobs due a look, looked at again (``draining``): those whose devices are done
        go next; those past their drain time are deleted with force, or fail the cleanup
        without it; a job created again under a drained job's id is judged afresh."""
        draining.check(self, poll_interval)

    def drain_ends(self, job_id: str) -> float:
        entry = self.ledger.get(job_id)
        return entry.drain_ends if entry and entry.drain_ends is not None else self.clock()

    # -- acting

    def others_deleting(self) -> set[str]:
        """Jobs being deleted that are not this cleanup's (other stacks', or anyone's), at the last poll."""
        return {job_id for job_id in self.deleting_anywhere if job_id not in self.ledger}

    def free_slots(self) -> int:
        ours = self.ledger.ids_at(Place.DELETING)
        return max(0, DELETION_SLOTS - len(self.deleting_anywhere | ours))

    def _needs_a_look(self, named: bool) -> bool:
        """Whether a DeleteJob needs a look first (I1): every job the filters found; with a
        drain time every job (so a running one is cancelled first, and a job created again
        under its id is judged afresh); named jobs not described by a plan."""
        return not named or self.request.drain is not None or not self.planned

    def start_deletions(self) -> int:
        """Start deletions while slots are free; returns how many were started."""
        started = 0
        queue = self.ledger.queue
        while queue and self.free_slots() > 0 and self.no_delete_before <= self.clock() < self.hard_stop:
            job_id = queue[0]
            entry = self.ledger.get(job_id)
            assert entry is not None
            clearance = entry.clearance
            if clearance is None or not self.guard.fresh(clearance):  # type: ignore[arg-type]
                if self._needs_a_look(entry.named):
                    look = self.guard.look(job_id, named=entry.named)
                    if self.guard.decide(look)[0] is not Decision.DELETE:
                        self.apply(look, named=entry.named)
                        continue
                    clearance = self.guard.clear(look, named=entry.named)
                else:
                    clearance = self.guard.clear_by_id(job_id)
            self.ledger.delete_sent()
            outcome, again = self.guard.delete(clearance)  # type: ignore[arg-type]
            if outcome == "limit":
                self.limit_exceeded += 1
                self.ledger.wait(job_id, named=entry.named, front=True)
                self.no_delete_before = self.clock() + self.backoff.next_delay()
                logger.info("deletion slots are full; backing off", extra={"jobId": job_id})
                break
            if outcome == "started":
                self.ledger.start(job_id, clearance, at=self.clock())
                polling.MEMORY.started(self.marker, job_id, self.clock())
                self.deleting_anywhere.add(job_id)
                self.backoff.reset()
                started += 1
            else:
                assert again is not None
                self.apply(again, named=entry.named)
        return started

    def done(self) -> bool:
        return (
            not self.ledger.any_at(Place.WAITING, Place.DELETING, Place.FINISHING, Place.DRAINING)
            and self.discovery_settled()
        )

    def all_gone(self) -> bool:
        """The final look (I2, ``final_look``): every named job seen gone after the last DeleteJob."""
        return final_look.all_gone(self)

    # -- the loop

    def step(self, poll_interval: float) -> bool:
        """One round: drains, discovery, deletions, confirmations. True when all is done."""
        self.check_drains(poll_interval)
        self.refill(ready=self.free_slots())  # as many as can start now, then start them
        self.start_deletions()
        self.refill(ready=LOOKAHEAD)  # while the slots are busy, find the next ones
        self.confirm_gone()
        return self.done() and self.all_gone()

    def run_until(
        self,
        stop_at: float,
        poll_interval: float,
        on_poll: Callable[[JobCleanup], None] | None = None,
        stopping: Callable[[], bool] | None = None,
        linger_until: float | None = None,
        quiet_for: float = 0.0,
    ) -> bool:
        """Work until every job is gone (True) or ``stop_at`` comes (False).

        Transient IoT errors never escape: the step is retried after a backoff.
        ``on_poll`` sees the cleanup after every round (a progress view); once
        ``stopping()`` says so, no more deletions start and the call returns False.
        With ``linger_until``, it stops at a quiet moment rather than at ``stop_at``: while a
        deletion of ours is expected to finish within ``quiet_for`` (the gap until the next
        invocation), it works on, up to ``linger_until``.
        """
        surveyed = False
        # The final look may run past a window's end (else a long one would never end within
        # one invocation), but not past the last invocation's: its report must reach
        # CloudFormation before CloudFormation's own timeout.
        self.looks_until = stop_at if linger_until is None else math.inf
        while True:
            if stopping is not None and stopping():
                return False
            try:
                if not surveyed:
                    self.survey()
                    surveyed = True
                if self.step(poll_interval):
                    return True
                self.retry_backoff.reset()
                pause = self.next_poll_in(poll_interval)
                if on_poll is not None:
                    on_poll(self)
            except TransientError as exc:
                surveyed = False
                pause = self.retry_backoff.next_delay()
                logger.warning("transient IoT error; will retry", extra={"error": str(exc)})
            if self.clock() + pause > stop_at and not polling.lingering(self, pause, linger_until, quiet_for):
                return False
            self._pause(pause)
            if surveyed:
                try:
                    self.refresh()
                except TransientError as exc:
                    surveyed = False
                    logger.warning("transient IoT error; will retry", extra={"error": str(exc)})

    def _pause(self, pause: float) -> None:
        """The pause between two rounds; the final look is made in it while it can (I2)."""
        wake = self.clock() + pause
        try:
            final_look.in_idle(self, wake)
        except TransientError as exc:  # looked at again at the end
            logger.warning("transient IoT error during the final look; will retry", extra={"error": str(exc)})
        rest = wake - self.clock()
        if rest > 0:
            self.sleep(rest)

    def finish_expected_before(self, when: float) -> bool:
        """Whether a deletion of ours, by the deletion time learned, may finish before ``when``."""
        return polling.finish_expected_before(self, when)

    # -- previewing

    def candidates(self) -> list[tuple[Look, str]]:
        """Every job the selection covers now, judged as a deletion would judge it, with
        what found it ("named" or the listing): a read, nothing changes."""
        found: list[tuple[Look, str]] = []
        for job_id in self.request.job_ids:
            look = self.guard.look(job_id, named=True)
            if not look.gone:
                found.append((look, "named"))
        if self.request.selection.has_filters:
            walk = Discovery(
                self.iot, self.request.selection, clock=self.clock, look=finding.look_found(self)
            )
            while (match := walk.next_match()) is not None:
                look = self.guard.look(match.job_id, named=False)
                if look.selected:
                    found.append((look, match.listing))
        return found

    # -- reporting (``report``)

    def progress(self) -> CleanupProgress:
        """A snapshot for a progress bar, a view or metrics."""
        return report.progress_of(self)

    def remaining(self) -> Iterator[tuple[str, str]]:
        """(job id, what holds it) for every job the cleanup knows is not gone yet."""
        return report.remaining(self)

    def jobs_left(self, limit: int = report.STATUSES_IN_REPORT) -> tuple[int, int, list[str]]:
        return report.jobs_left(self, limit)

    def knows_no_job(self) -> bool:
        """Nothing was learnt of any job (IoT never answered the first looks)."""
        return next(self.ledger.entries(), None) is None

    def discovery_unfinished(self) -> bool:
        return self.walk is not None and not self.walk.exhausted
