"""In-process clients: boto3's calls answered by a ``DeletionLifecycle`` without HTTP.

For simulations that make millions of calls. ``LifecycleClient`` has the IoT client calls
the cleanup handler makes, ``TaggingClient`` the Resource Groups Tagging API's
GetResources. Errors are botocore ``ClientError`` with the codes and HTTP statuses the
moto endpoint (``wire``) sends, so handler code cannot tell the two apart. The clients
only translate: every answer is the model's public method's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from moto.core.exceptions import JsonRESTError

from .model import DeletionLifecycle

__all__ = ["LifecycleClient", "TaggingClient"]

T = TypeVar("T")


def _answered(operation: str, call: Callable[[], T]) -> T:
    """Run a lifecycle call; its error becomes a botocore ``ClientError``, as over the wire."""
    try:
        return call()
    except JsonRESTError as exc:
        raise ClientError(
            {
                "Error": {"Code": exc.error_type, "Message": exc.message},
                "ResponseMetadata": {"HTTPStatusCode": exc.code},
            },
            operation,
        ) from None


def _with_token(page: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token:
        page["nextToken"] = token
    return page


class LifecycleClient:
    """The IoT client calls the cleanup handler makes, answered in-process by a lifecycle.

    Errors are botocore ``ClientError`` with the same codes and HTTP statuses the moto
    endpoint sends, so handler code cannot tell the two apart.
    """

    def __init__(self, lifecycle: DeletionLifecycle) -> None:
        self.lifecycle = lifecycle

    def describe_job(self, jobId: str) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        job = _answered("DescribeJob", lambda: self.lifecycle.describe_job(jobId))
        return {
            "job": {
                "jobArn": job.job_arn,
                "jobId": job.job_id,
                "status": job.status,
                "targets": list(job.targets),
                "createdAt": job.created_at,
                "lastUpdatedAt": job.last_updated_at,
                "completedAt": job.completed_at,
                "jobProcessDetails": dict(job.job_process_details),
                **({"namespaceId": ns} if (ns := self.lifecycle.namespace_of(jobId)) else {}),
                **({"comment": job.comment} if job.comment is not None else {}),
                **({"reasonCode": job.reason_code} if job.reason_code is not None else {}),
                **({"forceCanceled": bool(job.force)} if job.status == "CANCELED" else {}),
            }
        }

    def delete_job(self, jobId: str, force: bool = False, namespaceId: str | None = None) -> dict[str, Any]:  # noqa: N803
        _answered("DeleteJob", lambda: self.lifecycle.delete_job(jobId, force, namespaceId))
        return {}

    def cancel_job(
        self,
        jobId: str,  # noqa: N803
        force: bool = False,
        reasonCode: str | None = None,  # noqa: N803
        comment: str | None = None,
    ) -> dict[str, Any]:
        job = _answered("CancelJob", lambda: self.lifecycle.cancel_job(jobId, force, reasonCode, comment))
        return {"jobArn": job.job_arn, "jobId": job.job_id}

    def list_jobs(
        self,
        status: str | None = None,
        namespaceId: str | None = None,  # noqa: N803
        maxResults: int = 50,  # noqa: N803
        nextToken: str | None = None,  # noqa: N803
        thingGroupName: str | None = None,  # noqa: N803
    ) -> dict[str, Any]:
        jobs, token = _answered(
            "ListJobs",
            lambda: self.lifecycle.list_jobs(status, namespaceId, maxResults, nextToken, thingGroupName),
        )
        summaries = [
            {"jobArn": job.job_arn, "jobId": job.job_id, "status": job.status, "createdAt": job.created_at}
            for job in jobs
        ]
        return _with_token({"jobs": summaries}, token)

    def list_job_executions_for_job(
        self,
        jobId: str,  # noqa: N803
        status: str | None = None,
        maxResults: int = 50,  # noqa: N803
    ) -> dict[str, Any]:
        found = _answered(
            "ListJobExecutionsForJob", lambda: self.lifecycle.list_job_executions(jobId, status, maxResults)
        )
        return {
            "executionSummaries": [
                {"thingArn": e.thing_arn, "jobExecutionSummary": {"status": e.status}} for e in found
            ]
        }

    def list_tags_for_resource(self, resourceArn: str, nextToken: str | None = None) -> dict[str, Any]:  # noqa: N803
        tags, token = _answered(
            "ListTagsForResource", lambda: self.lifecycle.list_tags_page(resourceArn, nextToken)
        )
        return _with_token({"tags": [{"Key": key, "Value": value} for key, value in tags.items()]}, token)


class TaggingClient:
    """The Resource Groups Tagging API's GetResources, in-process.

    Whether that API returns IoT jobs is unconfirmed: ``serves_iot_jobs=False`` answers
    nothing for them, as moto's does; True answers from the lifecycle's tags.
    """

    def __init__(self, lifecycle: DeletionLifecycle, serves_iot_jobs: bool) -> None:
        self.lifecycle = lifecycle
        self.serves_iot_jobs = serves_iot_jobs

    def get_resources(
        self,
        TagFilters: list[dict[str, Any]],  # noqa: N803
        ResourceTypeFilters: list[str],  # noqa: N803
        ResourcesPerPage: int = 100,  # noqa: N803
        PaginationToken: str = "",  # noqa: N803
    ) -> dict[str, Any]:
        if not self.serves_iot_jobs:
            self.lifecycle.count("GetResources")
            return {"ResourceTagMappingList": [], "PaginationToken": ""}
        tags = {f["Key"]: f["Values"][0] for f in TagFilters}
        arns = _answered("GetResources", lambda: self.lifecycle.tagged_job_arns(tags))
        start = int(PaginationToken or 0)
        page = arns[start : start + ResourcesPerPage]
        token = str(start + ResourcesPerPage) if start + ResourcesPerPage < len(arns) else ""
        return {
            "ResourceTagMappingList": [
                {"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
                for arn in page
            ],
            "PaginationToken": token,
        }
