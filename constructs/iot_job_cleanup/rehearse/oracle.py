"""Which jobs should go, decided here and not by the handler: the jobs a cleanup names, plus the
jobs whose tags, targets, id and namespace (read from the endpoint) match every filter of a
cleanup. Every other job must be left exactly as it was, neither deleted nor cancelled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the emulator extra is imported only when a rehearsal runs
    from ..emulator import DeletionLifecycle

__all__ = [
    "Filters",
    "JobFacts",
    "JobKey",
    "all_job_facts",
    "in_region",
    "job_facts",
    "job_statuses",
    "selected_jobs",
]

JobKey = tuple[str, str]  # (region, job id): IoT is per region, and one job id may be in two


@dataclass(frozen=True)
class JobFacts:
    """What the endpoint knows of a job: enough to tell which cleanup selects it."""

    job_id: str
    status: str
    targets: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    namespace_id: str | None = None
    devices_busy: int = 0  # executions in progress


@dataclass(frozen=True)
class Filters:
    """A cleanup's filters for jobs created at runtime (``JobTags`` AND ``ThingGroupNames`` AND
    ``JobIdPrefix``), and the namespace its jobs are in."""

    tags: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs
    thing_groups: tuple[str, ...] = ()
    prefix: str | None = None
    namespace_id: str | None = None

    @classmethod
    def of(cls, properties: Mapping[str, Any]) -> Filters:
        tags = properties.get("JobTags") or []
        return cls(
            tags=tuple(sorted((tag["Key"], tag.get("Value", "")) for tag in tags)),
            thing_groups=tuple(properties.get("ThingGroupNames") or ()),
            prefix=properties.get("JobIdPrefix") or None,
            namespace_id=properties.get("NamespaceId") or None,
        )

    @property
    def given(self) -> bool:
        return bool(self.tags or self.thing_groups or self.prefix)

    def describe(self) -> str:
        """As the handler words them: tags fleet=demo AND thing groups a or b AND id prefix 'ota-'."""
        from ..engine import load_engine

        selection = load_engine().Selection(
            tags=self.tags, thing_groups=self.thing_groups, prefix=self.prefix
        )
        return str(selection.describe())

    def selects(self, job: JobFacts) -> bool:
        """Whether the job matches every filter (and is in the cleanup's namespace).

        Written apart from the handler's on purpose: the rehearsal judges the handler's
        deletions by it, so a handler that ignored a filter would be caught.
        """
        return (
            self.given
            and job.namespace_id == self.namespace_id
            and (self.prefix is None or job.job_id.startswith(self.prefix))
            and all(job.tags.get(key) == value for key, value in self.tags)
            and (
                not self.thing_groups
                or any(
                    target.endswith(f":thinggroup/{group}")
                    for target in job.targets
                    for group in self.thing_groups
                )
            )
        )

    def listings(self) -> list[tuple[str, dict[str, str]]]:
        """The handler's ListJobs listings for these filters, by the names its discovery gives
        them: one per thing group, then the SCHEDULED jobs (which a thing group listing leaves
        out, aws-cli#8924); without thing groups, all jobs."""
        if not self.thing_groups:
            return [("all jobs", {})]
        return [
            *((f"thing group {group}", {"thingGroupName": group}) for group in self.thing_groups),
            ("scheduled jobs", {"status": "SCHEDULED"}),
        ]


class Selecting(Protocol):
    """A cleanup resource as the oracle sees it: the jobs it names and its filters."""

    @property
    def job_ids(self) -> list[str]: ...

    @property
    def filters(self) -> Filters: ...


def job_facts(lifecycle: DeletionLifecycle) -> dict[str, JobFacts]:
    """Every job the endpoint holds now, in creation order (deletions due are finished first)."""
    with lifecycle.locked():
        lifecycle.settle()
        return {
            job_id: JobFacts(
                job_id,
                job.status,
                tuple(job.targets),
                dict(job.tags),
                job.namespace_id,
                int(job.process_details.get("numberOfInProgressThings") or 0),
            )
            for job_id, job in lifecycle.snapshot().items()
        }


def job_statuses(lifecycle: DeletionLifecycle) -> dict[str, str]:
    return {job_id: job.status for job_id, job in job_facts(lifecycle).items()}


def all_job_facts(lifecycles: Mapping[str, DeletionLifecycle]) -> dict[JobKey, JobFacts]:
    """Every job of every region's IoT now, by (region, job id)."""
    return {
        (region, job_id): facts
        for region, lifecycle in lifecycles.items()
        for job_id, facts in job_facts(lifecycle).items()
    }


def in_region(facts: Mapping[JobKey, JobFacts], region: str) -> dict[str, JobFacts]:
    """One region's jobs of ``all_job_facts``, by job id."""
    return {job_id: job for (where, job_id), job in facts.items() if where == region}


def selected_jobs(cleanup: Selecting, facts: Mapping[str, JobFacts], exclude: set[str]) -> list[str]:
    """The jobs (in creation order) a cleanup's filters select, besides those it names."""
    named = set(cleanup.job_ids)
    filters = cleanup.filters
    return [
        job_id
        for job_id, job in facts.items()
        if job_id not in named and job_id not in exclude and filters.selects(job)
    ]
