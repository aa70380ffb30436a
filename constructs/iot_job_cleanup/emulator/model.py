"""The IoT model: ``DeletionLifecycle``, the DeleteJob lifecycle moto lacks, over a moto backend.

moto (5.2) speaks the IoT wire protocol and models things, thing groups and jobs, but
deletes a job instantly, has no DELETION_IN_PROGRESS, no 10-deletion limit, and answers
a 500 for an unknown job id. ``DeletionLifecycle`` adds what the DeleteJob documentation
describes, on top of a moto IoT backend:

- DeleteJob puts the job in DELETION_IN_PROGRESS for a time that grows with its targets;
  afterwards it is gone and DescribeJob answers ResourceNotFoundException;
- at most ``slots`` (10) jobs of the account and region are DELETION_IN_PROGRESS at once;
  one more DeleteJob gets LimitExceededException;
- deleting or cancelling a job that is already DELETION_IN_PROGRESS is an error
  (InvalidStateTransitionException here; the real code may differ);
- without force only COMPLETED and CANCELED jobs can be deleted;
- a job created in a namespace must be deleted with that namespaceId (our assumption:
  the documentation does not say what a mismatch answers; InvalidRequestException here);
- an unknown job id is ResourceNotFoundException, not a 500;
- ListJobs honours its status, namespaceId and thingGroupName filters, with IoT's known
  quirk: filtered by thingGroupName it leaves SCHEDULED jobs out (aws-cli#8924). Pages hold
  at most 250 jobs; a page token names the last job returned, so a job deleted meanwhile
  shifts no page. With ``list_lag_seconds`` a job that entered DELETION_IN_PROGRESS that
  recently is not listed under that status yet: list APIs are eventually consistent (our
  assumption; off by default).
- Tags given to CreateJob (or to ``create_job``) are answered by ListTagsForResource, in
  pages of ``tags_page_size`` tags with a ``nextToken`` (all in one page by default: whether
  IoT pages a job's at most 50 tags is undocumented, so a client must follow the token).
- ListJobs filtered by a thing group that does not exist answers ResourceNotFoundException
  (404). moto need not hold the thing groups a job targets, so a group counts as missing
  only once deleted (``delete_thing_group``, or DeleteThingGroup over the wire), or, with
  ``strict_thing_groups``, whenever moto does not hold it.
- DescribeJob of a cancelled job answers the CancelJob's ``comment``, ``reasonCode`` and
  ``forceCanceled``, as IoT does.
- CancelJob without force cancels the queued executions; executions in progress go on
  until they finish (``executions_finish_in``), with force they are cancelled too. A
  cancelled job is CANCELED, so terminal: deletable without force.
- With ``rate_limit`` each IoT operation admits that many requests per second for the
  account (a token bucket one second deep); more answer ThrottlingException (429). IoT's
  last published figure is 10 per second per operation.

The lifecycle comes in three parts, read in order: ``state.LifecycleState`` (what is kept,
time passing, the transitions, the read API), ``operations.IotOperations`` (the API calls)
and, here, the scenario helpers: what other actors do to the account (create jobs in a
status, finish or cancel them, delete them, hold deletion slots), none of it counted as a
call or rate limited.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from moto.iot.models import FakeJob

from .jobs import (
    RUNNING_STATUSES,
    count_executions,
    executions_follow_counts,
)
from .operations import IotOperations
from .state import OutsideDeletion

__all__ = ["DeletionLifecycle"]


class DeletionLifecycle(IotOperations):
    """moto's IoT backend with the DeleteJob lifecycle (see the module's docstring)."""

    def record_namespace(self, job_id: str, namespace_id: str | None) -> None:
        self.record_creation(job_id, namespace_id)

    def create_job(
        self,
        job_id: str,
        targets: list[str],
        status: str = "COMPLETED",
        namespace_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        executions_finish_in: float = math.inf,
    ) -> FakeJob:
        """Create a job directly in the backend, in the given status (see ``set_status``)."""
        with self.locked():
            self.backend.create_job(
                job_id=job_id,
                targets=targets,
                document_source="",
                document='{"operation": "noop"}',
                description="",
                presigned_url_config={},
                target_selection="SNAPSHOT",
                job_executions_rollout_config={},
                document_parameters={},
                abort_config={},
                job_execution_retry_config={},
                scheduling_config={},
                timeout_config={},
            )
            self.record_creation(job_id, namespace_id, tags)
            return self.set_status(job_id, status, executions_finish_in)

    def set_status(self, job_id: str, status: str, executions_finish_in: float = math.inf) -> FakeJob:
        """Put a job in a status, with execution counts that fit it (as devices would).

        A running job's executions are in progress; they finish ``executions_finish_in``
        seconds from now (never, by default: a continuous job).
        """
        with self.locked():
            job = self.backend.jobs[job_id]
            job.status = status
            count_executions(job, status)
            executions_follow_counts(self.backend, job)
            if status in RUNNING_STATUSES and executions_finish_in < math.inf:
                self.executions_finish_at[job_id] = self.clock() + executions_finish_in
            else:
                self.executions_finish_at.pop(job_id, None)
            return job

    def finish_job(self, job_id: str, status: str = "COMPLETED") -> FakeJob:
        """The job's devices have all finished (a snapshot job completes by itself)."""
        with self.locked():
            self.settle()
            return self.set_status(job_id, status)

    def cancel_outside(
        self, job_id: str, force: bool = False, reason_code: str | None = None, comment: str | None = None
    ) -> FakeJob:
        """Someone else cancels the job (no call of the client is counted or rate limited)."""
        with self.locked():
            self.settle()
            return self.cancel(job_id, force, reason_code, comment)

    def delete_thing_group(self, group_name: str) -> None:
        """The thing group is deleted (jobs targeting it keep the target, as in IoT)."""
        with self.locked():
            self.deleted_groups.add(group_name)
            for arn, group in list(self.backend.thing_groups.items()):
                if group.thing_group_name == group_name:
                    del self.backend.thing_groups[arn]

    def hold_slots(self, count: int, seconds: float, prefix: str = "other-stack-job") -> list[str]:
        """Start ``count`` outside deletions (other stacks') that hold slots for ``seconds``."""
        held = []
        with self.locked():
            for index in range(count):
                job_id = f"{prefix}-{len(self.backend.jobs)}-{index}"
                self.create_job(job_id, targets=[])
                self.start_deletion(job_id, seconds)
                held.append(job_id)
        return held

    def queue_outside_deletions(
        self, count: int, seconds: float, retry_seconds: float, prefix: str = "other-stack-queued"
    ) -> list[str]:
        """Other stacks' cleanups: ``count`` more deletions that take a slot whenever one is
        free at their next try (every ``retry_seconds``), racing the handler for it."""
        queued = []
        with self.locked():
            for index in range(count):
                job_id = f"{prefix}-{index}"
                self.create_job(job_id, targets=[])
                self.outside_backlog.append(OutsideDeletion(job_id, seconds, retry_seconds, self.clock()))
                queued.append(job_id)
        return queued
