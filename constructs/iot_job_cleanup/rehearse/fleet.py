"""The fleet's side: the thing groups, things and jobs a deployed stack has, and the runtime
actor, the creator of jobs at runtime for every cleanup with filters (``JobTags``,
``ThingGroupNames``, ``JobIdPrefix``): jobs with generated ids that match every filter, some of
them SCHEDULED, and bystanders that miss exactly one filter."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .assembly import CleanupResource, StackPlan
from .base import ACCOUNT, REGION, counted
from .endpoint import Endpoint
from .oracle import Filters, JobFacts

if TYPE_CHECKING:
    from ..emulator import DeletionLifecycle

__all__ = [
    "OTHER_GROUP",
    "RuntimeActor",
    "RuntimeJob",
    "group_arn",
    "play_runtime",
    "runtime_statuses",
    "thing_arn",
]

# The thing group bystanders target instead of the cleanup's, the generated ids of a cleanup
# without a prefix, and how far ahead a SCHEDULED job is scheduled.
OTHER_GROUP = "rehearsal-other-fleet"
RUNTIME_ID_PREFIX = "runtime-"
SCHEDULED_AHEAD_SECONDS = 86_400.0


def group_arn(name: str, region: str = REGION) -> str:
    return f"arn:aws:iot:{region}:{ACCOUNT}:thinggroup/{name}"


def thing_arn(name: str, region: str = REGION) -> str:
    return f"arn:aws:iot:{region}:{ACCOUNT}:thing/{name}"


@dataclass
class RuntimeJob:
    """A job the runtime actor created for a cleanup with filters: one that matches every
    filter (``why`` empty), or a bystander that misses one (``why`` says which)."""

    job_id: str
    cleanup: str  # the cleanup it is shown with (a cleanup resource, or a cleanup of stages)
    status: str  # the status the runtime actor left it in
    why: str = ""
    region: str = REGION
    listing: str = ""  # a selected job: which of the handler's listings shows it (read from IoT)
    expected: str = ""  # at the destroy: "deleted", "left alone" or "kept" (DeletionPolicy Retain)
    after: str = ""  # after the destroy: "gone", or its status

    @property
    def as_expected(self) -> bool:
        return self.after == "gone" if self.expected == "deleted" else self.after == self.status


def runtime_statuses(cleanup: CleanupResource) -> list[str]:
    """The jobs a runtime creator leaves at teardown, in states the cleanup's options delete:
    running and SCHEDULED ones only with force or a drain time. Without either they would fail
    the cleanup, in AWS as here, so none are created then."""
    if cleanup.forced or cleanup.drain_seconds is not None:
        return ["COMPLETED", "COMPLETED", "IN_PROGRESS", "SCHEDULED", "SCHEDULED"]
    return ["COMPLETED", "COMPLETED", "CANCELED"]


def _prefix_like(prefix: str) -> str:
    """The prefix with its last character changed: 'ota-rollout-' gives 'ota-rollout_'."""
    return prefix[:-1] + ("_" if prefix[-1] != "_" else "-")


def _runtime_specs(
    cleanup: CleanupResource, target: str, other: str
) -> list[tuple[str, str, list[str], dict[str, str], str]]:
    """(why, job id, targets, tags, status) of the jobs to create for a cleanup: those its
    filters select, then bystanders that each miss one filter and match the others."""
    filters = cleanup.filters
    tags = dict(filters.tags)
    serial = iter(range(1000))

    def generated(head: str | None = None) -> str:
        digest = hashlib.sha256(f"{filters!r}/{next(serial)}".encode()).hexdigest()[:8]
        return ((filters.prefix or RUNTIME_ID_PREFIX) if head is None else head) + digest

    specs = [("", generated(), [target], tags, status) for status in runtime_statuses(cleanup)]
    if filters.thing_groups:
        specs += [("another thing group", generated(), [other], tags, s) for s in ("COMPLETED", "SCHEDULED")]
    if filters.tags:
        specs += [("untagged", generated(), [target], {}, s) for s in ("COMPLETED", "SCHEDULED")]
        key, value = filters.tags[0]
        other_value = {**tags, key: ("other-" + value)[:256]}
        specs.append(("another tag value", generated(), [target], other_value, "IN_PROGRESS"))
    if filters.prefix:
        specs.append(("prefix-like id", generated(_prefix_like(filters.prefix)), [target], tags, "COMPLETED"))
    else:  # an id like the runtime jobs', on a job that is someone else's
        specs.append(("look-alike id", generated(), [other], {}, "COMPLETED"))
    return [(why, job_id[:64], *rest) for why, job_id, *rest in specs]


def play_runtime(
    plans: list[StackPlan],
    endpoint: Endpoint,
    played: dict[tuple[str, Filters], list[RuntimeJob]],
    say: Callable[[str], None],
) -> None:
    """Play the creator of jobs at runtime, once for every set of filters a cleanup has in a
    region (``played``, filled here; a cleanup that an update renames keeps its jobs, and the
    stages of a cleanup share theirs): create jobs its
    filters select and bystanders, over the wire (CreateJob with tags), then put each in its
    status as devices and schedules would. Ids are generated from the filters.

    Selected jobs target the cleanup's first thing group (else the stack's); some are SCHEDULED,
    which ListJobs by thing group leaves out. A bystander that some cleanup of ``plans`` would
    select after all is not created. IN_PROGRESS jobs of a cleanup with a drain time have
    devices that finish within half of it; a bystander's never do.
    """
    for plan in plans:
        everyone = [c for other in plans if other.region == plan.region for c in other.cleanups]
        iot, lifecycle = endpoint.iot(plan.region), endpoint.lifecycle(plan.region)
        for cleanup in plan.cleanups:
            key = (cleanup.region, cleanup.filters)
            if cleanup.filters.given and key not in played:
                played[key] = jobs = _play_for(cleanup, plan, everyone, iot, lifecycle)
                say(f"runtime: {cleanup.cleanup} selects {cleanup.filters.describe()}")
                say(f"runtime:   created {_created_text(jobs)}")


def _play_for(
    cleanup: CleanupResource,
    plan: StackPlan,
    everyone: list[CleanupResource],
    iot: Any,
    lifecycle: DeletionLifecycle,
) -> list[RuntimeJob]:
    """One cleanup's runtime jobs and bystanders, created over the wire and put in their status."""
    filters = cleanup.filters
    group = (filters.thing_groups or tuple(plan.thing_groups) or (None,))[0]
    for name in sorted({group, OTHER_GROUP} - lifecycle.thing_group_names() - {None}):
        iot.create_thing_group(thingGroupName=name)
    thing = (plan.things or [f"{plan.name}-rehearsal-device"])[0]
    region = plan.region
    target = group_arn(group, region) if group else thing_arn(thing, region)
    namespace = {"namespaceId": filters.namespace_id} if filters.namespace_id else {}
    jobs: list[RuntimeJob] = []
    for why, job_id, targets, tags, status in _runtime_specs(cleanup, target, group_arn(OTHER_GROUP, region)):
        facts = JobFacts(job_id, status, tuple(targets), tags, filters.namespace_id)
        if lifecycle.exists(job_id) or (why and any(c.filters.selects(facts) for c in everyone)):
            continue
        scheduled = {}
        if status == "SCHEDULED":  # IoT keeps it SCHEDULED until its start time
            start = time.gmtime(lifecycle.clock() + SCHEDULED_AHEAD_SECONDS)
            scheduled = {"schedulingConfig": {"startTime": time.strftime("%Y-%m-%dT%H:%M", start)}}
        iot.create_job(
            jobId=job_id,
            targets=targets,
            document=json.dumps({"operation": "rehearsal-runtime"}),
            **({"tags": [{"Key": key, "Value": value} for key, value in tags.items()]} if tags else {}),
            **namespace,
            **scheduled,
        )
        _put_in_status(lifecycle, job_id, status, None if why else cleanup.drain_seconds)
        jobs.append(RuntimeJob(job_id, cleanup.cleanup, status, why, region=region))
    return jobs


def _created_text(jobs: list[RuntimeJob]) -> str:
    """'5 jobs it selects (2 COMPLETED, ...) and 7 bystanders (another thing group 2, ...)'."""
    selected = Counter(job.status for job in jobs if not job.why)
    bystanders = Counter(job.why for job in jobs if job.why)

    def tallied(counter: Counter[str], noun: str, plural: str, each: str) -> str:
        if not counter:
            return f"no {plural}"
        parts = ", ".join(each.format(key=key, count=count) for key, count in counter.items())
        return f"{counted(sum(counter.values()), noun, plural)} ({parts})"

    text = (
        f"{tallied(selected, 'job it selects', 'jobs it selects', '{count} {key}')} and "
        f"{tallied(bystanders, 'bystander', 'bystanders', '{key} {count}')}"
    )
    if "SCHEDULED" not in selected:
        text += "; none running or scheduled: without force or drain they would fail the cleanup"
    return text


def _put_in_status(lifecycle: DeletionLifecycle, job_id: str, status: str, drain: float | None) -> None:
    """A running job's devices finish within half the drain time (never without a drain);
    a SCHEDULED job has not started: its executions are queued, no device is busy."""
    finish_in = math.inf if status != "IN_PROGRESS" or drain is None else drain / 2
    lifecycle.set_status(job_id, status, executions_finish_in=finish_in)


class RuntimeActor:
    """The runtime actor over a rehearsal: its jobs by region and filters, played once for each."""

    def __init__(self, endpoint: Endpoint, say: Callable[[str], None]) -> None:
        self.endpoint, self.say = endpoint, say
        self.played: dict[tuple[str, Filters], list[RuntimeJob]] = {}

    def play(self, plans: list[StackPlan]) -> None:
        play_runtime(plans, self.endpoint, self.played, self.say)

    def jobs_for(self, cleanup: CleanupResource) -> list[RuntimeJob]:
        """The runtime actor's jobs for this cleanup's filters (a cleanup whose filters an update
        changed shows the jobs made for its new ones; the others are judged like any job)."""
        made = self.played.get((cleanup.region, cleanup.filters), [])
        return [replace(job, cleanup=cleanup.cleanup) for job in made]

    def observe_listings(self, cleanups: list[CleanupResource], runtime: list[RuntimeJob]) -> None:
        """Which of the handler's listings shows each selected runtime job, asked of IoT as the
        handler asks it (ListJobs by thing group, then SCHEDULED; or all jobs). The handler's
        own view is out of sight: this is what its listings can find. These ListJobs calls are
        the rehearsal's, not counted with the handler's."""
        calls: dict[str, int] = {}
        for cleanup in cleanups:
            iot = self.endpoint.iot(cleanup.region)
            jobs = [job for job in runtime if job.cleanup == cleanup.cleanup and not job.why]
            filters = cleanup.filters
            found: dict[str, str] = {}
            for name, listing in filters.listings() if jobs else []:
                namespace = {"namespaceId": filters.namespace_id} if filters.namespace_id else {}
                token = None
                while True:
                    more = {"nextToken": token} if token else {}
                    page = iot.list_jobs(maxResults=250, **listing, **namespace, **more)
                    calls[cleanup.region] = calls.get(cleanup.region, 0) + 1
                    for job in page.get("jobs", []):
                        found.setdefault(job["jobId"], name)
                    token = page.get("nextToken")
                    if not token:
                        break
            for job in jobs:
                job.listing = found.get(job.job_id, "no listing shows it")
        for region, count in calls.items():
            lifecycle = self.endpoint.lifecycle(region)
            with lifecycle.locked():
                lifecycle.calls["ListJobs"] -= count
                if lifecycle.calls["ListJobs"] <= 0:
                    del lifecycle.calls["ListJobs"]
