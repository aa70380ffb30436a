"""The IoT API calls, as the model answers them: counted, rate limited, with IoT's errors.

``IotOperations`` is the second part of ``DeletionLifecycle``: one method per IoT operation
the cleanup makes (DescribeJob, DeleteJob, CancelJob, ListJobs, ListJobExecutionsForJob,
ListTagsForResource, and the Tagging API's GetResources). Each counts its call, lets time
pass and answers as IoT would; the wire patches (``wire``) and the in-process clients
(``clients``) only translate.
"""

from __future__ import annotations

from collections.abc import Mapping

from moto.iot.models import FakeJob, FakeJobExecution

from .jobs import DELETING, MAX_PAGE, TERMINAL_STATUSES, IotApiError
from .state import LifecycleState

__all__ = ["IotOperations"]


def _not_found(job_id: str) -> IotApiError:
    return IotApiError("ResourceNotFoundException", f"Job {job_id} does not exist.", 404)


def _group_not_found(group_name: str) -> IotApiError:
    return IotApiError("ResourceNotFoundException", f"Thing group {group_name} does not exist.", 404)


def _bad_token(next_token: str | None) -> IotApiError:
    return IotApiError("InvalidRequestException", f"Bad nextToken {next_token!r}.", 400)


def _targets_group(job: FakeJob, group_name: str) -> bool:
    return any(target.endswith(f":thinggroup/{group_name}") for target in job.targets or [])


class IotOperations(LifecycleState):
    def _job(self, job_id: str) -> FakeJob:
        self.settle()
        job = self.backend.jobs.get(job_id)
        if job is None:
            raise _not_found(job_id)
        return job

    def _job_of_arn(self, job_arn: str) -> FakeJob:
        job = self._job(job_arn.rsplit("/", 1)[-1])
        if job.job_arn != job_arn:
            raise _not_found(job_arn)
        return job

    def describe_job(self, job_id: str) -> FakeJob:
        with self.locked():
            self.admit("DescribeJob")
            return self._job(job_id)

    def namespace_of(self, job_id: str) -> str | None:
        return self.namespaces.get(job_id)

    # -- tags

    def list_tags(self, job_arn: str) -> dict[str, str]:
        """Every tag of the job, in one call (see ``list_tags_page`` for IoT's pages)."""
        with self.locked():
            self.admit("ListTagsForResource")
            return dict(self.tags.get(self._job_of_arn(job_arn).job_id, {}))

    def list_tags_page(
        self, job_arn: str, next_token: str | None = None
    ) -> tuple[dict[str, str], str | None]:
        """One ListTagsForResource page: ``tags_page_size`` tags from ``next_token`` on, and
        the token of the next page (None after the last)."""
        with self.locked():
            self.admit("ListTagsForResource")
            items = list(self.tags.get(self._job_of_arn(job_arn).job_id, {}).items())
            try:
                start = int(next_token or 0)
            except ValueError:
                raise _bad_token(next_token) from None
            if not 0 <= start <= len(items):
                raise _bad_token(next_token)
            size = self.tags_page_size or max(1, len(items))
            end = start + size
            return dict(items[start:end]), (str(end) if end < len(items) else None)

    def tagged_job_arns(self, tags: Mapping[str, str]) -> list[str]:
        """The Resource Groups Tagging API's answer, were it to serve IoT jobs (unconfirmed)."""
        with self.locked():
            self.admit("GetResources")
            self.settle()
            return [
                job.job_arn
                for job_id, job in self.backend.jobs.items()
                if all(self.tags.get(job_id, {}).get(key) == value for key, value in tags.items())
            ]

    # -- delete and cancel

    def delete_job(self, job_id: str, force: bool, namespace_id: str | None) -> None:
        with self.locked():
            self.admit("DeleteJob")
            job = self._job(job_id)
            if job.status == DELETING:
                raise IotApiError(
                    "InvalidStateTransitionException", f"Job {job_id} is already {DELETING}.", 409
                )
            if self.namespaces.get(job_id) != (namespace_id or None):
                raise IotApiError(
                    "InvalidRequestException",
                    f"Job {job_id} is in namespace {self.namespaces.get(job_id)!r}, not {namespace_id!r}.",
                    400,
                )
            if not force and job.status not in TERMINAL_STATUSES:
                raise IotApiError(
                    "InvalidStateTransitionException",
                    f"Job {job_id} is {job.status}; only a job in a terminal state can be "
                    "deleted without force.",
                    409,
                )
            if len(self.deleting) >= self.slots:
                self.refusals["LimitExceededException"] += 1
                raise IotApiError(
                    "LimitExceededException",
                    f"Only {self.slots} jobs may be {DELETING} at the same time.",
                    410,
                )
            self.start_deletion(job_id, self.deletion_time(job))

    def cancel_job(
        self, job_id: str, force: bool = False, reason_code: str | None = None, comment: str | None = None
    ) -> FakeJob:
        """Cancel a running job: queued executions are cancelled, in-progress ones run on
        (cancelled too with force). Cancelling a job that is not running is an error."""
        with self.locked():
            self.admit("CancelJob")
            self._job(job_id)
            return self.cancel(job_id, force, reason_code, comment)

    # -- lists

    def thing_group_exists(self, group_name: str) -> bool:
        if group_name in self.deleted_groups:
            return False
        if not self.strict_thing_groups:
            return True
        return group_name in self.thing_group_names()

    def _sequence_of(self, job_id: str) -> int:
        return self.sequence.get(job_id, 0)

    def list_jobs(
        self,
        status: str | None,
        namespace_id: str | None,
        max_results: int,
        next_token: str | None,
        thing_group_name: str | None = None,
    ) -> tuple[list[FakeJob], str | None]:
        with self.locked():
            self.admit("ListJobs")
            self.settle()
            if thing_group_name is not None and not self.thing_group_exists(thing_group_name):
                raise _group_not_found(thing_group_name)
            indexed_before = self.clock() - self.list_lag_seconds
            after = int(next_token or 0)
            # Jobs being deleted are few: listing them need not walk the whole account.
            jobs = (
                [
                    job
                    for job_id in sorted(self.deleting, key=self._sequence_of)
                    if (job := self.backend.jobs.get(job_id)) is not None
                ]
                if status == DELETING
                else self.backend.jobs.values()
            )
            matching = [
                job
                for job in jobs
                if self.sequence.get(job.job_id, 0) > after
                and (status is None or job.status == status)
                and (namespace_id is None or self.namespaces.get(job.job_id) == namespace_id)
                and not (status == DELETING and self.deletion_started.get(job.job_id, 0.0) > indexed_before)
                and (
                    thing_group_name is None
                    or (_targets_group(job, thing_group_name) and job.status != "SCHEDULED")  # aws-cli#8924
                )
            ]
            page = matching[: min(max_results, MAX_PAGE)]
            more = len(matching) > len(page)
            return page, (str(self.sequence.get(page[-1].job_id, 0)) if more else None)

    def list_job_executions(
        self, job_id: str, status: str | None = None, max_results: int = 50
    ) -> list[FakeJobExecution]:
        """ListJobExecutionsForJob: the job's executions (in ``status``), at most ``max_results``."""
        with self.locked():
            self.admit("ListJobExecutionsForJob")
            self._job(job_id)
            return [
                execution
                for (execution_job, _), execution in self.backend.job_executions.items()
                if execution_job == job_id and (status is None or execution.status == status)
            ][:max_results]
