"""The trust rules, in one place: every CancelJob and DeleteJob the engine sends goes through here.

I1  Nothing unselected is touched. A job the filters found is cancelled or deleted only on a
    look made just before the call (DescribeJob, and its tags as read in the last five
    minutes for this very job, its ARN and creation time, else afresh), showing that it
    matches every filter (id prefix, targets, tags) and the namespace. A named job is
    selected by its id, whatever its history; with a drain time it is looked at too, so a
    job created again under its id is cancelled before it is deleted.
I2  Success means gone (enforced by ``scheduling``: a final look at every named job and a
    whole discovery walk that finds nothing left).
I3  A refusal is never silent. AccessDenied means "not ours" only where the cleanup's IAM
    makes it so: its policy is conditioned on the selection's tags, and the job, read
    afresh, does not carry them. Every other refusal raises ``RefusedError`` naming the job,
    the call and the error, and what to check (an SCP, a permissions boundary).
I4  A race is looked at again, never a crash. A call that fails because the job changed
    (finished, cancelled, deleted, created again) gets a fresh look, and the cleanup goes on
    from what it shows; only the same refusal of an unchanged job twice is an error.

Decisions come from what a fresh DescribeJob shows, never from an error code alone. The
drain time of a job this cleanup cancelled counts from the time its own CancelJob recorded
in the job's comment (``reasonCode`` IOT_JOB_CLEANUP), not from IoT's timestamps, whose
meaning for a cancelled job is undocumented.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from .aws import (
    DELETING,
    DENIED_CODES,
    LIMIT_CODES,
    RUNNING_STATUSES,
    TERMINAL_STATUSES,
    IotJobs,
    error_code,
    error_message,
)
from .contract import CleanupRequest
from .discovery import remember_tags, tags_read_recently
from .errors import DrainTimeoutError, ForceRequiredError, LookExpiredError, RefusedError

__all__ = ["CANCEL_REASON_CODE", "Clearance", "Decision", "Guard", "Look", "devices_busy"]

logger = logging.getLogger("iot_job_cleanup")

CANCEL_REASON_CODE = "IOT_JOB_CLEANUP"
_RECORD = re.compile(r"\[iot-job-cleanup (?P<marker>[^\s\]]+) cancelled at (?P<at>\d+(?:\.\d+)?)\]")
MAX_COMMENT = 2028  # CancelJob's comment
GONE = "gone"
NOT_JUDGED = "only its status was asked"
LOOK_FRESH_SECONDS = 2.0  # a clearance older than this is looked at again before the call
SCP_HINT = (
    "Check for a service control policy, a permissions boundary or a session policy that "
    "denies it: the cleanup's own role allows it."
)


def devices_busy(job: Mapping[str, Any]) -> int:
    return int((job.get("jobProcessDetails") or {}).get("numberOfInProgressThings") or 0)


def _created(job: Mapping[str, Any]) -> float | None:
    created = job.get("createdAt")
    return created.timestamp() if isinstance(created, datetime) else None


@dataclass(frozen=True)
class Look:
    """What a DescribeJob just showed, judged against the selection."""

    job_id: str
    job: Mapping[str, Any] | None  # None: the job does not exist
    selected: bool
    at: float
    why: str = ""  # why it is not selected

    @property
    def gone(self) -> bool:
        return self.job is None and self.why == GONE

    @property
    def status(self) -> str | None:
        return None if self.job is None else str(self.job["status"])

    @property
    def identity(self) -> tuple[str | None, float | None]:
        """The job's ARN and creation time: a job created again under its id differs."""
        return (None, None) if self.job is None else (self.job.get("jobArn"), _created(self.job))


class Decision(Enum):
    GONE = "gone"
    NOT_OURS = "not selected"
    DELETING = "being deleted"
    CANCEL = "cancel, then wait for its devices"
    WAIT_DEVICES = "wait for its devices"
    DELETE = "delete"


@dataclass(frozen=True)
class Clearance:
    """The guard's leave to send one DeleteJob: only ``Guard`` makes them."""

    job_id: str
    named: bool
    at: float
    look: Look | None  # None: a named job, selected by its id, deleted without a look


class Guard:
    """Looks at jobs, judges them against the selection, and sends the calls that act on them."""

    def __init__(
        self,
        iot: IotJobs,
        request: CleanupRequest,
        *,
        clock: Callable[[], float],
        marker: str,
        cancel_comment: str,
        drain_from: float,
        recent_tags_decide: bool = False,
    ) -> None:
        self.iot = iot
        self.request = request
        self.selection = request.selection
        self.clock = clock
        self.marker = re.sub(r"[^A-Za-z0-9_.:@/-]", "-", marker)[:200] or "cleanup"
        self.cancel_comment = cancel_comment
        self.drain_from = drain_from  # a job cancelled by someone else drains from then
        # Tags read in the last minutes may decide the last look only where IAM backs it up
        # (the construct's role is conditioned on the tags); the command line reads afresh.
        self.recent_tags_decide = recent_tags_decide
        self._refused: dict[str, tuple[str, str, tuple[str | None, float | None]]] = {}

    # -- looking

    def look(self, job_id: str, *, named: bool, judge: bool = True) -> Look:
        """A fresh DescribeJob, judged (``judge``: else only whether and how it exists, which
        clears nothing). A refusal is judged by I3 (``RefusedError``, or not ours)."""
        try:
            job = self.iot.describe(job_id)
        except ClientError as exc:
            if error_code(exc) not in DENIED_CODES:
                raise self._refusal(job_id, "DescribeJob", exc, None) from exc
            return self._denied(job_id, "DescribeJob", exc, named)
        if job is None:
            return Look(job_id, None, False, self.clock(), GONE)
        if not judge:
            return Look(job_id, job, False, self.clock(), NOT_JUDGED)
        selected, why = self._judge(job, named)
        return Look(job_id, job, selected, self.clock(), why)  # fresh from when the judging ended

    def _judge(self, job: Mapping[str, Any], named: bool) -> tuple[bool, str]:
        if named:
            return True, ""
        selection = self.selection
        if job["jobId"] in selection.job_ids or not selection.id_may_match(job["jobId"]):
            return False, "its id is not the prefix's"
        if (job.get("namespaceId") or None) != selection.namespace_id:
            return False, "in another namespace"
        if selection.thing_groups and not selection.targets_a_group(job.get("targets") or []):
            return False, "targets none of the thing groups"
        if selection.tags:
            tags = tags_read_recently(job, self.clock()) if self.recent_tags_decide else None
            if tags is None:
                tags = self._tags(job["jobId"], job["jobArn"])
                if tags is not None:
                    remember_tags(job, tags, self.clock())
            if tags is None:
                return False, GONE
            if not selection.carries_tags(tags):
                return False, "without the tags"
        return True, ""

    def _tags(self, job_id: str, job_arn: str) -> dict[str, str] | None:
        try:
            return self.iot.tags_of(job_arn)
        except ClientError as exc:
            raise self._refusal(job_id, "ListTagsForResource", exc, None) from exc

    def _denied(self, job_id: str, operation: str, exc: ClientError, named: bool) -> Look:
        """I3: a denial is "not ours" only under the tag conditions, for a job without the tags."""
        arn = self.iot.job_arn(job_id)
        if not named and self.selection.tags and arn is not None:  # without an ARN it cannot tell
            tags = self._tags(job_id, arn)
            if tags is None:
                return Look(job_id, None, False, self.clock(), GONE)
            if not self.selection.carries_tags(tags):
                logger.info("not allowed to act on a job without the tags: not ours", extra={"jobId": job_id})
                return Look(job_id, None, False, self.clock(), "without the tags (IAM denies it)")
        raise self._refusal(job_id, operation, exc, None) from exc

    def _refusal(self, job_id: str, operation: str, exc: ClientError, status: str | None) -> RefusedError:
        code = error_code(exc)
        state = f" (status {status})" if status else ""
        hint = f" {SCP_HINT}" if code in DENIED_CODES else ""
        logger.warning("IoT refused a call on a selected job", extra={"jobId": job_id, "code": code})
        return RefusedError(
            f"IoT refused {operation} on job {job_id!r}{state}: {code}: {error_message(exc)}.{hint} "
            "The job was left as it is.",
            job_id=job_id,
            operation=operation,
            code=code,
        )

    # -- deciding

    def decide(self, look: Look) -> tuple[Decision, float | None]:
        """What to do with a job, from a fresh look: and, to wait for its devices, until when."""
        job = look.job
        if look.gone:
            return Decision.GONE, None
        if job is None or not look.selected:
            return Decision.NOT_OURS, None
        status = str(job["status"])
        if status == DELETING:
            return Decision.DELETING, None
        drain = self.request.drain
        if drain is not None:
            if status in RUNNING_STATUSES:
                return Decision.CANCEL, None
            if status in TERMINAL_STATUSES and devices_busy(job):
                ends = self.cancelled_at(job) + drain
                if self.clock() < ends:
                    return Decision.WAIT_DEVICES, ends
                if not self.request.force:
                    self._drain_time_over(look)
                logger.warning(
                    "drain time over with devices busy: deleting with force", extra={"jobId": job["jobId"]}
                )
            return Decision.DELETE, None
        if status not in TERMINAL_STATUSES and not self.request.force:
            raise ForceRequiredError(
                f"Job {look.job_id!r} is {status}: without force only COMPLETED or CANCELED jobs "
                "can be deleted, so it was left as it is. Cancel the job first, set a drain time "
                "to have it cancelled and deleted once its devices finish, or set force=True "
                '(Force: "true") to delete it while it runs.',
                job_id=look.job_id,
                status=status,
            )
        return Decision.DELETE, None

    def cancelled_at(self, job: Mapping[str, Any]) -> float:
        """When the drain of a cancelled job began: our CancelJob's own record, else the cleanup's start."""
        recorded = self.our_cancel(job)
        return recorded if recorded is not None else self.drain_from

    def our_cancel(self, job: Mapping[str, Any]) -> float | None:
        """The time this cleanup's CancelJob recorded in the job, or None if it did not cancel it."""
        if job.get("reasonCode") != CANCEL_REASON_CODE:
            return None
        match = _RECORD.search(str(job.get("comment") or ""))
        if match is None or match["marker"] != self.marker:
            return None
        return float(match["at"])

    def _drain_time_over(self, look: Look) -> None:
        job = look.job or {}
        devices = self.iot.devices_in_progress(look.job_id)
        busy = devices_busy(job)
        named = ", ".join(devices) + (", ..." if busy > len(devices) else "")
        raise DrainTimeoutError(
            f"Job {look.job_id!r} was cancelled, but {busy} of its devices "
            f"{'was' if busy == 1 else 'were'} still running it "
            f"when the drain time of {self.request.drain:.0f} s was over ({named}); it was left as it is. "
            "Give the devices longer (drain), or set force=True to delete it anyway.",
            job_id=look.job_id,
            devices=tuple(devices),
        )

    # -- acting

    def clear(self, look: Look, *, named: bool) -> Clearance:
        """Leave to delete the job a fresh look just showed selected and deletable."""
        if look.job is None or not look.selected:
            raise AssertionError(f"no clearance for {look.job_id!r}: {look.why or 'not selected'}")
        return Clearance(look.job_id, named, look.at, look)

    def clear_by_id(self, job_id: str) -> Clearance:
        """A named job is selected by its id: leave to delete it without a look (IoT itself
        refuses a running one without force, and that refusal is looked at)."""
        if job_id not in self.selection.job_ids:
            raise AssertionError(f"no clearance by id for {job_id!r}: not a named job")
        return Clearance(job_id, True, self.clock(), None)

    def fresh(self, clearance: Clearance) -> bool:
        return self.clock() - clearance.at <= LOOK_FRESH_SECONDS

    def cancel(self, look: Look, *, named: bool) -> Look | None:
        """CancelJob of a running job a fresh look showed selected. None when cancelled;
        else a new look, for the caller to decide again (the job changed meanwhile, or the
        look grew stale before the call could be sent)."""
        if not look.selected or look.status not in RUNNING_STATUSES:
            raise AssertionError(
                f"CancelJob of {look.job_id!r} without a look showing it selected and running"
            )
        if not self.fresh(self.clear(look, named=named)):
            return self.look(look.job_id, named=named)
        record = f" [iot-job-cleanup {self.marker} cancelled at {self.clock():.0f}]"
        comment = self.cancel_comment[: MAX_COMMENT - len(record)] + record
        try:
            self.iot.cancel(look.job_id, CANCEL_REASON_CODE, comment, send_until=look.at + LOOK_FRESH_SECONDS)
        except LookExpiredError:
            return self.look(look.job_id, named=named)
        except ClientError as exc:
            return self._after_refusal(look.job_id, "CancelJob", exc, named)
        logger.info("job cancelled; waiting for its devices", extra={"jobId": look.job_id})
        return None

    def delete(self, clearance: Clearance) -> tuple[str, Look | None]:
        """DeleteJob under a clearance: ("started" | "limit" | "again", the new look for "again")."""
        if clearance.look is not None and not self.fresh(clearance):
            return "again", self.look(clearance.job_id, named=clearance.named)
        until = clearance.at + LOOK_FRESH_SECONDS if clearance.look is not None else float("inf")
        try:
            self.iot.delete(clearance.job_id, self.request.force, send_until=until)
        except LookExpiredError:
            return "again", self.look(clearance.job_id, named=clearance.named)
        except ClientError as exc:
            if error_code(exc) in LIMIT_CODES:
                return "limit", None
            return "again", self._after_refusal(clearance.job_id, "DeleteJob", exc, clearance.named)
        logger.info("deletion started", extra={"jobId": clearance.job_id})
        return "started", None

    def _after_refusal(self, job_id: str, operation: str, exc: ClientError, named: bool) -> Look:
        """I3 and I4: look again. The same refusal twice for an unchanged job is an error."""
        code = error_code(exc)
        if code in DENIED_CODES:
            denied = self._denied(job_id, operation, exc, named)  # raises unless not ours
            return denied
        look = self.look(job_id, named=named)
        if look.job is None or look.status == DELETING or not look.selected:
            return look  # gone, being deleted, or not ours now: the caller goes on from there
        seen = (operation, code, look.identity)
        if self._refused.get(job_id) == seen:
            raise self._refusal(job_id, operation, exc, look.status) from exc
        self._refused[job_id] = seen
        logger.info("IoT refused a call; the job was looked at again", extra={"jobId": job_id, "code": code})
        return look
