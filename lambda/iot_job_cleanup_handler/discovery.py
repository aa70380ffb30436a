"""Finding the jobs a selection's filters match, from IoT, with no state kept between walks.

A walk goes over IoT's job listings lazily, page by page (250 jobs), and yields each job
that matches every filter: the id prefix (free), the thing groups (the listing itself, by
``ListJobs(thingGroupName=...)``; IoT leaves SCHEDULED jobs out of that listing, aws-cli#8924,
so SCHEDULED jobs are listed separately and their targets read), and the tags (the Resource
Groups Tagging API where it answers for IoT jobs, else ``ListTagsForResource`` job by job).
Named jobs are left to the named path. Nothing a walk finds is kept beyond the invocation:
each invocation walks again, and jobs already deleted are no longer listed. A thing group
deleted outside the stack (ListJobs answers ResourceNotFound) does not end the walk: its
listing is replaced by all jobs, each one's targets read. What a walk finds is a candidate:
the guard looks at it again before anything is done to it (``guard``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .aws import GONE_CODES, IotJobs, error_code
from .contract import Selection

__all__ = ["Discovery", "Found", "forget_cached_facts", "remember_tags", "tags_read_recently"]

logger = logging.getLogger("iot_job_cleanup")

SCHEDULED = "SCHEDULED"
# The tagging API's index may lag behind a job's creation: jobs younger than this are asked
# about their tags directly.
TAG_INDEX_LAG_SECONDS = 600.0


@dataclass(frozen=True)
class Listing:
    """One ListJobs listing a walk goes through."""

    filters: Mapping[str, Any]
    read_targets: bool = False  # SCHEDULED jobs: the group filter must be checked on the job
    name: str = "all jobs"


def listings(selection: Selection) -> list[Listing]:
    if selection.thing_groups:
        return [
            *(
                Listing({"thingGroupName": group}, name=f"thing group {group}")
                for group in selection.thing_groups
            ),
            Listing({"status": SCHEDULED}, read_targets=True, name="scheduled jobs"),
        ]
    return [Listing({})]


@dataclass(frozen=True)
class Found:
    job_id: str
    job_arn: str
    status: str
    listing: str  # which listing found it
    created: float | None = None  # with the ARN, which job this is (an id may be used again)

    @property
    def identity(self) -> tuple[str, float | None]:
        return self.job_arn, self.created


_UNSET: Any = object()

# What was learnt about jobs, kept while the Lambda container is warm, so a walk in the next
# invocation need not ask again: a job's targets (they never change) and its tags. Tags kept
# never decide a deletion: a job is asked afresh right before it is deleted, unless read in
# the last TAG_FRESH_SECONDS. A job that gets our tags only after it was first read is seen
# once its entry is older than TAG_CACHE_SECONDS (longer than one CloudFormation Delete may
# last, so a cleanup reads an account's tags once). Keyed by ARN and creation time, so a job
# deleted and created again under its id is looked at anew. A cold start begins empty.
_CACHE_LIMIT = 100_000
TAG_CACHE_SECONDS = 3 * 3600.0
TAG_FRESH_SECONDS = 300.0  # tags read this recently decide a deletion without asking again
_TARGETS: dict[tuple[str, float], tuple[str, ...]] = {}
_TAGS: dict[tuple[str, float], tuple[dict[str, str], float]] = {}
ALL_JOBS_READ_TARGETS = Listing({}, read_targets=True, name="all jobs (a thing group was not found)")


def forget_cached_facts() -> None:
    """Start as a cold container would: ask IoT again for every job's targets and tags."""
    _TARGETS.clear()
    _TAGS.clear()


def tags_read_recently(job: Mapping[str, Any], now: float) -> dict[str, str] | None:
    """The job's tags if read in the last TAG_FRESH_SECONDS, for this very job (its ARN and
    creation time: a job created again under its id is never taken for the old one)."""
    cached = _TAGS.get(_identity(job))
    return cached[0] if cached is not None and cached[1] >= now - TAG_FRESH_SECONDS else None


def remember_tags(job: Mapping[str, Any], tags: dict[str, str], now: float) -> None:
    _remember(_TAGS, _identity(job), (tags, now))


def _identity(job: Mapping[str, Any]) -> tuple[str, float]:
    created = job.get("createdAt")
    return job["jobArn"], created.timestamp() if created is not None else 0.0


def _remember(cache: dict[tuple[str, float], Any], key: tuple[str, float], value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


class Discovery:
    """One walk over the listings, yielding the jobs the filters match, one at a time."""

    def __init__(
        self,
        iot: IotJobs,
        selection: Selection,
        *,
        clock: Callable[[], float],
        look: Callable[[str], Mapping[str, Any] | None] | None = None,
    ) -> None:
        self.iot = iot
        self.selection = selection
        self.clock = clock
        # How a job's description is asked for (its targets): None when gone or not ours.
        self._look = look or iot.describe
        self._listings = listings(selection)
        self._position = 0
        self._token: str | None = None
        self._started = False
        self._page: deque[Mapping[str, Any]] = deque()
        self._seen: set[str] = set()
        self._tag_index: set[str] | None = _UNSET
        self.exhausted = False

    def next_match(self, stop_at: float = float("inf")) -> Found | None:
        """The next job that matches; None when the walk is over or ``stop_at`` has come.

        A look-up that fails for now (``TransientError``) leaves the job first in line, so
        the walk goes on from it on the next call.
        """
        while self.clock() < stop_at:
            if self._page:
                found = self._match(self._page[0], self._listings[self._position])
                self._page.popleft()
                if found:
                    return found
            elif not self._next_page():
                return None
        return None

    def _next_page(self) -> bool:
        if self.exhausted:
            return False
        if self._started and self._token is None:  # this listing is done: the next one
            self._position += 1
            self._started = False
            if self._position >= len(self._listings):
                self.exhausted = True
                return False
        listing = self._listings[self._position]
        try:
            jobs, self._token = self.iot.list_page(listing.filters, self._token)
        except ClientError as exc:
            if error_code(exc) not in GONE_CODES or "thingGroupName" not in listing.filters:
                raise
            self._group_gone(listing)
            return not self.exhausted
        self._started = True
        self._page.extend(jobs)
        return True

    def _group_gone(self, listing: Listing) -> None:
        """A thing group was deleted outside the stack: jobs may still target it, so every
        job is listed instead (once), each one's targets read."""
        logger.warning(
            "a thing group was not found; listing every job instead", extra={"listing": listing.name}
        )
        before, after = self._listings[: self._position], self._listings[self._position + 1 :]
        replacement = [] if ALL_JOBS_READ_TARGETS in (*before, *after) else [ALL_JOBS_READ_TARGETS]
        self._listings = [*before, *replacement, *after]
        self._token, self._started = None, False
        if self._position >= len(self._listings):
            self.exhausted = True

    def _match(self, summary: Mapping[str, Any], listing: Listing) -> Found | None:
        job_id = summary["jobId"]
        if job_id in self._seen or job_id in self.selection.job_ids:
            return None
        if not self.selection.id_may_match(job_id):
            self._seen.add(job_id)
            return None
        # Tags first: with tags, IAM lets the role describe only jobs that carry them.
        matches = (not self.selection.tags or self._carries_tags(summary)) and (
            not listing.read_targets or self._targets_a_group(summary)
        )
        self._seen.add(job_id)  # only now: a failed look-up is tried again
        if not matches:
            return None
        created = summary.get("createdAt")
        stamp = created.timestamp() if created is not None else None
        return Found(job_id, summary["jobArn"], summary["status"], listing.name, stamp)

    def _targets_a_group(self, summary: Mapping[str, Any]) -> bool:
        key = _identity(summary)
        if key not in _TARGETS:
            job = self._look(summary["jobId"])
            if job is None:
                return False
            _remember(_TARGETS, key, tuple(job.get("targets") or ()))
        return self.selection.targets_a_group(_TARGETS[key])

    def _carries_tags(self, summary: Mapping[str, Any]) -> bool:
        index = self._tagged_arns()
        if index is not None and not self._young(summary):
            return summary["jobArn"] in index
        key = _identity(summary)
        cached = _TAGS.get(key)
        if cached is None or cached[1] < self.clock() - TAG_CACHE_SECONDS:
            tags = self.iot.tags_of(summary["jobArn"])
            if tags is None:
                return False
            _remember(_TAGS, key, (tags, self.clock()))
        return self.selection.carries_tags(_TAGS[key][0])

    def _tagged_arns(self) -> set[str] | None:
        if self._tag_index is _UNSET:
            self._tag_index = self.iot.tagged_job_arns(self.selection.tags)
        return self._tag_index

    def _young(self, summary: Mapping[str, Any]) -> bool:
        created = summary.get("createdAt")
        return created is None or created.timestamp() > self.clock() - TAG_INDEX_LAG_SECONDS
