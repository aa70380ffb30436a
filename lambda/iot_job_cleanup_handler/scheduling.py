"""Deleting a cleanup's jobs through IoT's 10 shared deletion slots, with no state between invocations.

Named jobs are started in a planned order (the longest deletions first), so that order is
always a prefix of jobs gone or being deleted followed by jobs nobody touched yet, and a
binary search finds the frontier again from IoT. Jobs the filters select are found by a
walk over IoT's listings (``discovery``) as slots free up; before reporting complete, the
walk is repeated until it finds nothing left, so a job created during the teardown is not
left behind. With a drain time, a running job is cancelled first and deleted once its
devices have finished (or, with force, once the drain time is over).
"""

from __future__ import annotations

import logging
import math
import random as _random
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from .aws import (
    DELETING,
    DENIED_CODES,
    GONE_CODES,
    LIMIT_CODES,
    RUNNING_STATUSES,
    TERMINAL_STATUSES,
    IotJobs,
    error_code,
    error_message,
)
from .contract import CleanupRequest
from .discovery import Discovery
from .errors import CleanupError, DrainTimeoutError, ForceRequiredError, TransientError

__all__ = ["DELETION_SLOTS", "Backoff", "JobCleanup", "devices_busy", "execution_count"]

logger = logging.getLogger("iot_job_cleanup")

DELETION_SLOTS = 10  # IoT allows 10 jobs in DELETION_IN_PROGRESS per account and region.
LOOKAHEAD = DELETION_SLOTS  # discovered jobs ready beyond the free slots, to refill at once
FAST_POLL_INTERVAL = 0.5  # while one of our deletions is expected to finish
DRAIN_CHECK_INTERVAL = 10.0  # how often draining jobs are looked at: their devices take minutes
STATUSES_IN_REPORT = 20
CANCEL_REASON_CODE = "IOT_JOB_CLEANUP"


@dataclass
class Backoff:
    """Exponential backoff with equal jitter: half the step fixed, half random."""

    base: float = 2.0
    cap: float = 30.0
    random: Callable[[], float] = _random.random
    attempts: int = 0

    def next_delay(self) -> float:
        step = min(self.cap, self.base * 2**self.attempts)
        self.attempts += 1
        return step / 2 + self.random() * step / 2

    def reset(self) -> None:
        self.attempts = 0


def execution_count(job: Mapping[str, Any]) -> int:
    """How many job executions a job has: its deletion takes longer the more it has."""
    details = job.get("jobProcessDetails") or {}
    return sum(
        value for key, value in details.items() if key.startswith("numberOf") and isinstance(value, int)
    )


def devices_busy(job: Mapping[str, Any]) -> int:
    return int((job.get("jobProcessDetails") or {}).get("numberOfInProgressThings") or 0)


def _seconds(value: Any, default: float) -> float:
    return value.timestamp() if isinstance(value, datetime) else default


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
    ) -> None:
        self.iot = iot
        self.iot.hard_stop = hard_stop
        self.request = request
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
        self.cancel_comment = cancel_comment
        self.backoff = Backoff(random=random)  # LimitExceededException: reset by a deletion started
        self.retry_backoff = Backoff(random=random)  # transient errors: reset by a round that went through
        self.pending: deque[str] = deque(self.order)
        self.ours_deleting: set[str] = set()
        self.deleting_anywhere: set[str] = set()
        self.seen_gone: set[str] = set()  # seen gone during this invocation
        self.unconfirmed: set[str] = set()  # left the deleting list; not yet seen gone
        self.no_delete_before = 0.0
        self.started_at: dict[str, float] = {}  # deletions this invocation started
        self.last_poll_at: float | None = None
        self.duration: tuple[float, float] | None = None  # the latest deletion: longer, at most
        # Discovery: the jobs the filters select, found this invocation.
        self.discovered: set[str] = set()
        self.walk: Discovery | None = None
        self.walk_found_any = False
        self._new_walk()
        # Admission: the look at a job just before its DeleteJob (namespace, force, drain).
        self.admitted: set[str] = set()
        self.not_ours: set[str] = set()
        self.draining: dict[str, float] = {}  # job id -> when its drain time is over
        self.drains_checked_at = -math.inf
        self.limit_exceeded = 0  # LimitExceededException answers to our DeleteJob

    # -- reading the state from IoT

    def plan(self) -> tuple[str, ...]:
        """Describe every named job once, before deleting any: fail now on a job that needs
        force, cancel running jobs to drain, and order the rest longest deletion first
        (deletion time grows with a job's executions; starting the longest first keeps the
        10 slots evenly busy to the end). Draining jobs come last.
        """
        touched: list[str] = []
        untouched: list[tuple[int, int, str]] = []
        unplanned: list[str] = []  # not described before the hard stop: they keep list order
        drained: list[str] = []
        for position, job_id in enumerate(self.request.job_ids):
            if self.clock() >= self.hard_stop:
                unplanned.append(job_id)
                continue
            job = self.iot.describe(job_id)
            if job is None:
                self.seen_gone.add(job_id)
                touched.append(job_id)
            elif job["status"] == DELETING:
                self.ours_deleting.add(job_id)
                touched.append(job_id)
            elif self._drains(job_id, job):
                drained.append(job_id)
            else:
                self._require_deletable(job_id, job["status"])
                self.admitted.add(job_id)
                untouched.append((-execution_count(job), position, job_id))
        self.pending = deque([*(job_id for *_, job_id in sorted(untouched)), *unplanned])
        self.order = (*touched, *self.pending, *drained)
        self.planned = True
        self.drained_tail = len(drained)
        self.deleting_anywhere = self.iot.deleting_job_ids() | self.ours_deleting
        return self.order

    def survey(self) -> None:
        self.deleting_anywhere = self.iot.deleting_job_ids()
        split = len(self.order) - self.drained_tail
        ids, drained = self.order[:split], self.order[split:]
        frontier = self._first_untouched(ids)
        self.pending = deque(job_id for job_id in ids[frontier:] if job_id not in self.draining)
        self.ours_deleting = {job_id for job_id in ids[:frontier] if job_id in self.deleting_anywhere}
        for job_id in drained:  # few: each looked at
            status = DELETING if job_id in self.deleting_anywhere else self._status(job_id)
            if status == DELETING:
                self.ours_deleting.add(job_id)
            elif status is not None and job_id not in self.draining and job_id not in self.pending:
                self.pending.append(job_id)
        self._adopt_discovered_deletions()

    def _adopt_discovered_deletions(self) -> None:
        """Deletions under way of jobs the filters select are ours to wait for."""
        if self.walk is None:
            return
        for job_id in sorted(self.deleting_anywhere - set(self.request.job_ids) - self.ours_deleting):
            if job_id in self.not_ours or not self.request.selection.id_may_match(job_id):
                continue
            job = self._describe_discovered(job_id)
            if job is not None and self.walk.matches(job):
                self.ours_deleting.add(job_id)
                self.discovered.add(job_id)
            elif job is not None:
                self.not_ours.add(job_id)

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
        return self._status(job_id) in (None, DELETING)

    def _status(self, job_id: str) -> str | None:
        status = self.iot.status(job_id)
        if status is None:
            self.seen_gone.add(job_id)
        return status

    def refresh(self) -> None:
        """One poll: which deletions are still under way.

        A job of ours that left the DELETION_IN_PROGRESS list frees its slot at once; it
        is confirmed gone afterwards (``confirm_gone``), so the slot is reused without
        waiting for the confirmation and a list that lags behind never ends the wait early.
        """
        polled_before, self.last_poll_at = self.last_poll_at, self.clock()
        self.deleting_anywhere = self.iot.deleting_job_ids()
        vanished = self.ours_deleting - self.deleting_anywhere
        self.ours_deleting -= vanished
        self.unconfirmed |= vanished
        # The most recently started of them says most about the deletions still running.
        for job_id in sorted(vanished & self.started_at.keys(), key=lambda job: (self.started_at[job], job)):
            started = self.started_at.pop(job_id)
            if polled_before is not None and polled_before > started:
                self.duration = (polled_before - started, self.last_poll_at - started)

    def next_poll_in(self, poll_interval: float) -> float:
        """Poll fast while a deletion of ours is expected to finish, else every interval.

        The latest deletion seen to finish took longer than its last poll still listing it
        and at most until the poll that no longer did: a deletion started at s is expected
        to finish between s plus those two, and is looked for there every half second.
        Only while no one else is deleting: under contention a resource that polled faster
        would keep taking back the slots it frees, and the others would wait.
        """
        others_deleting = self.deleting_anywhere - set(self.request.job_ids) - self.discovered
        if self.duration is None or others_deleting:
            return poll_interval
        shortest, longest = self.duration
        now = self.clock()
        windows = [(s + shortest, s + longest + poll_interval) for s in self.started_at.values()]
        if any(start <= now <= end for start, end in windows):
            return FAST_POLL_INTERVAL
        upcoming = [start - now for start, _ in windows if start > now]
        return max(FAST_POLL_INTERVAL / 5, min([poll_interval, *upcoming]))

    def confirm_gone(self) -> None:
        for job_id in sorted(self.unconfirmed):
            self.unconfirmed.discard(job_id)
            if job_id in self.discovered:
                job = self._describe_discovered(job_id)
                status = None if job is None else job["status"]
            else:
                status = self._status(job_id)
            if status is None:
                self.seen_gone.add(job_id)
            elif status == DELETING:  # the list lagged behind
                self.ours_deleting.add(job_id)
                self.deleting_anywhere.add(job_id)
            elif job_id not in self.discovered:  # deleted, then created again
                self.pending.appendleft(job_id)
                self.admitted.discard(job_id)
            # A discovered job created again under the same id is for the next walk to judge.

    # -- discovery

    def _new_walk(self) -> None:
        if not self.request.selection.has_filters:
            return
        self.walk = Discovery(self.iot, self.request.selection, clock=self.clock)
        self.walk_found_any = False

    def refill(self, ready: int) -> None:
        """Walk on while fewer than ``ready`` jobs wait for a slot."""
        while (
            self.walk is not None
            and not self.walk.exhausted
            and len(self.pending) < ready
            and self.clock() < self.hard_stop
        ):
            try:
                found = self.walk.next_match(self.hard_stop)
            except TransientError as exc:  # the walk goes on from there next round
                logger.warning("transient IoT error while discovering; will retry", extra={"error": str(exc)})
                break
            if found is None:
                break
            if found.job_id in self.not_ours:
                continue
            self.walk_found_any = True
            if found.job_id in self.ours_deleting or found.job_id in self.draining:
                continue
            self.discovered.add(found.job_id)
            if found.status == DELETING:
                self.ours_deleting.add(found.job_id)
                self.deleting_anywhere.add(found.job_id)
            elif found.job_id not in self.pending:
                self.pending.append(found.job_id)
                if self.request.drain is not None and found.status in RUNNING_STATUSES:
                    self._admit(found.job_id)  # cancel it now: no device starts it while slots are busy

    def discovery_settled(self) -> bool:
        """True once a whole walk found no selected job left; starts the next walk when due."""
        if self.walk is None:
            return True
        if not self.walk.exhausted:
            return False
        if not self.walk_found_any:
            return True
        if self.pending or self.ours_deleting or self.unconfirmed or self.draining:
            return False
        self._new_walk()  # the last walk found jobs, all gone now: look again for any left
        return False

    def _describe_discovered(self, job_id: str) -> Mapping[str, Any] | None:
        """DescribeJob of a job found by the filters; a refusal (IAM's tag conditions) means
        the job is not ours, and it is left alone."""
        try:
            return self.iot.describe(job_id)
        except ClientError as exc:
            if error_code(exc) not in DENIED_CODES:
                raise
            logger.info("not allowed to look at the job: not ours, left alone", extra={"jobId": job_id})
            self._forget(job_id)
            return None

    def _forget(self, job_id: str) -> None:
        self.not_ours.add(job_id)
        self.admitted.discard(job_id)
        self.discovered.discard(job_id)
        self.ours_deleting.discard(job_id)
        self.draining.pop(job_id, None)
        if job_id in self.pending:
            self.pending.remove(job_id)

    # -- admission and drain

    def _look_at(self, job_id: str) -> Mapping[str, Any] | None:
        """DescribeJob; for a job the filters found, a refusal means it is not ours."""
        return self._describe_discovered(job_id) if job_id in self.discovered else self.iot.describe(job_id)

    def _admit(self, job_id: str) -> bool:
        """Look at the job just before deleting it: True when it is to be deleted now.

        Only a job this returned True for counts as admitted: a look (or a cancel) that
        failed is made again before any DeleteJob.
        """
        job = self._look_at(job_id)
        if job is None:
            if job_id not in self.not_ours:
                self.seen_gone.add(job_id)
            return False
        if job_id in self.discovered and not self._still_selected(job):
            self._forget(job_id)
            return False
        if job["status"] == DELETING:
            self.ours_deleting.add(job_id)
            self.deleting_anywhere.add(job_id)
            return False
        if self._drains(job_id, job):
            return False
        self._require_deletable(job_id, job["status"])
        self.admitted.add(job_id)
        return True

    def _still_selected(self, job: Mapping[str, Any]) -> bool:
        """A found job, right before its deletion: in our namespace, and (asked afresh) with our tags."""
        if self.walk is None:
            return False
        if not self.walk.in_namespace(job):
            logger.info("job in another namespace: not ours, left alone", extra={"jobId": job["jobId"]})
            return False
        if self.request.selection.tags and not self.walk.carries_tags_now(job):
            logger.info("job without our tags now: not ours, left alone", extra={"jobId": job["jobId"]})
            return False
        return True

    def _drains(self, job_id: str, job: Mapping[str, Any]) -> bool:
        """With a drain time: cancel a running job, and wait while its devices are busy.

        A cancelled job is terminal to IoT, so the executions, not the status, tell whether
        devices are still at work; the drain time counts from the job's cancellation.
        """
        if self.request.drain is None:
            return False
        status = job["status"]
        if status in RUNNING_STATUSES:
            self.iot.cancel(job_id, CANCEL_REASON_CODE, self.cancel_comment)
            logger.info("job cancelled; waiting for its devices", extra={"jobId": job_id})
            cancelled_at = self.clock()
        elif status in TERMINAL_STATUSES and devices_busy(job):
            cancelled_at = _seconds(job.get("completedAt") or job.get("lastUpdatedAt"), self.clock())
        else:
            return False
        self.draining[job_id] = cancelled_at + self.request.drain
        if job_id in self.pending:
            self.pending.remove(job_id)
        return True

    def check_drains(self, poll_interval: float) -> None:
        """Draining jobs whose devices are done go next; those past their drain time are
        deleted with force, or fail the cleanup without it."""
        if not self.draining or self.clock() < self.drains_checked_at + max(
            poll_interval, DRAIN_CHECK_INTERVAL
        ):
            return
        self.drains_checked_at = self.clock()
        for job_id, deadline in sorted(self.draining.items(), key=lambda item: item[1]):
            job = self._look_at(job_id)
            if job_id not in self.draining:  # not ours after all
                continue
            busy = job is not None and job["status"] != DELETING and devices_busy(job) > 0
            if busy and self.clock() < deadline:
                continue  # its devices still have time
            if busy:
                self._drain_time_over(job_id, job)  # without force, the cleanup fails here
            del self.draining[job_id]
            if job is None:
                self.seen_gone.add(job_id)
            elif job["status"] == DELETING:
                self.ours_deleting.add(job_id)
            else:
                self.pending.appendleft(job_id)
                self.admitted.add(job_id)

    def _drain_time_over(self, job_id: str, job: Mapping[str, Any]) -> None:
        if self.request.force:
            logger.warning("drain time over with devices busy: deleting with force", extra={"jobId": job_id})
            return
        devices = self.iot.devices_in_progress(job_id)
        named = ", ".join(devices) + (", ..." if devices_busy(job) > len(devices) else "")
        raise DrainTimeoutError(
            f"Job {job_id!r} was cancelled, but {devices_busy(job)} of its devices were still running it "
            f"when the drain time of {self.request.drain:.0f} s was over ({named}); it was left as it is. "
            "Give the devices longer (drain), or set force=True to delete it anyway."
        )

    # -- acting

    def free_slots(self) -> int:
        return max(0, DELETION_SLOTS - len(self.deleting_anywhere | self.ours_deleting))

    def start_deletions(self) -> int:
        """Start deletions while slots are free; returns how many were started."""
        started = 0
        while (
            self.pending and self.free_slots() > 0 and self.no_delete_before <= self.clock() < self.hard_stop
        ):
            job_id = self.pending[0]
            needs_a_look = job_id not in self.admitted and (
                job_id in self.discovered or self.request.drain is not None or not self.planned
            )
            if needs_a_look and not self._admit(job_id):
                self._take_from_pending(job_id)
                continue
            outcome = self._delete(job_id)
            if outcome == "limit":
                self.limit_exceeded += 1
                self.no_delete_before = self.clock() + self.backoff.next_delay()
                logger.info("deletion slots are full; backing off", extra={"jobId": job_id})
                break
            self._take_from_pending(job_id)
            if outcome in ("started", "deleting"):
                self.ours_deleting.add(job_id)
                self.deleting_anywhere.add(job_id)
            if outcome == "started":
                started += 1
                self.started_at[job_id] = self.clock()
                self.backoff.reset()
        return started

    def _take_from_pending(self, job_id: str) -> None:
        """Done with the first job in line, unless looking at it already took it out."""
        if self.pending and self.pending[0] == job_id:
            self.pending.popleft()

    def _delete(self, job_id: str) -> str:
        try:
            self.iot.delete(job_id, self.request.force)
            logger.info("deletion started", extra={"jobId": job_id})
            return "started"
        except ClientError as exc:
            code = error_code(exc)
            if code in GONE_CODES:
                self.seen_gone.add(job_id)
                return "gone"
            if code in LIMIT_CODES:
                return "limit"
            if code in DENIED_CODES and job_id in self.discovered:
                logger.info("not allowed to delete the job: not ours, left alone", extra={"jobId": job_id})
                self._forget(job_id)
                return "skipped"
            return self._explain_refusal(job_id, exc)

    def _explain_refusal(self, job_id: str, exc: ClientError) -> str:
        status = self._status(job_id)
        if status is None:
            return "gone"
        if status == DELETING:
            logger.info("deletion already under way; waiting for it", extra={"jobId": job_id})
            return "deleting"
        self._require_deletable(job_id, status)
        raise CleanupError(
            f"IoT refused to delete job {job_id!r} (status {status}): {error_code(exc)}: {error_message(exc)}"
        ) from exc

    def _require_deletable(self, job_id: str, status: str) -> None:
        if not self.request.force and status not in TERMINAL_STATUSES:
            raise ForceRequiredError(
                f"Job {job_id!r} is {status}: without force only COMPLETED or CANCELED jobs "
                "can be deleted, so it was left as it is. Cancel the job first, set a drain time "
                "to have it cancelled and deleted once its devices finish, or set force=True "
                '(Force: "true") to delete it while it runs.'
            )

    def done(self) -> bool:
        return (
            not self.pending
            and not self.ours_deleting
            and not self.unconfirmed
            and not self.draining
            and self.discovery_settled()
        )

    def all_gone(self) -> bool:
        """Check every named job not yet seen gone; requeue any that still exists.

        The frontier search trusts list order; this sweep is what catches a job that
        someone else deleted, or created again, out of that order.
        """
        stragglers: list[str] = []
        for job_id in self.order:
            if job_id in self.seen_gone:
                continue
            if self.clock() >= self.hard_stop:
                return False  # the next invocation checks again
            status = self._status(job_id)
            if status == DELETING:
                self.ours_deleting.add(job_id)
            elif status is not None:
                stragglers.append(job_id)
        self.pending.extendleft(reversed(stragglers))
        return not stragglers and not self.ours_deleting

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
    ) -> bool:
        """Work until every job is gone (True) or ``stop_at`` comes (False).

        Transient IoT errors never escape: the step is retried after a backoff.
        ``on_poll`` sees the cleanup after every round (a progress view); once
        ``stopping()`` says so, no more deletions start and the call returns False.
        """
        surveyed = False
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
            if self.clock() + pause > stop_at:
                return False
            self.sleep(pause)
            if surveyed:
                try:
                    self.refresh()
                except TransientError as exc:
                    surveyed = False
                    logger.warning("transient IoT error; will retry", extra={"error": str(exc)})

    # -- reporting

    def remaining(self) -> Iterator[tuple[str, str]]:
        """(job id, what holds it) for every job known not to be gone yet."""
        for job_id in sorted(self.ours_deleting):
            yield job_id, DELETING
        for job_id, deadline in sorted(self.draining.items(), key=lambda item: item[1]):
            yield job_id, f"cancelled, devices busy, drain ends in {max(0.0, deadline - self.clock()):.0f} s"
        for job_id in self.pending:
            if job_id not in self.ours_deleting:
                yield job_id, "waiting for a deletion slot"

    def remaining_with_status(self, limit: int = STATUSES_IN_REPORT) -> tuple[int, list[str]]:
        """Jobs not known to be gone, and 'id (status)' for the first ``limit`` of them."""
        remaining = list(self.remaining())
        described: list[str] = []
        for job_id, holding in remaining[:limit]:
            if holding != "waiting for a deletion slot":
                described.append(f"{job_id} ({holding})")
                continue
            try:
                status = self.iot.status(job_id)
            except (TransientError, ClientError):
                status = "status unknown"
            described.append(f"{job_id} ({status or 'gone'}, {holding})")
        return len(remaining), described

    def discovery_unfinished(self) -> bool:
        return self.walk is not None and not self.walk.exhausted
