"""The Resource Groups Tagging API's wire: GetResources patched to answer a lifecycle's IoT jobs.

``emulated_tagging(lifecycle)`` is ``emulated_iot``'s sibling: while it is active, moto's
``ResourceGroupsTaggingAPIResponse.get_resources`` answers a request of the lifecycle's account
and region whose ``ResourceTypeFilters`` are all ``iot:job`` from the lifecycle (as
``TaggingClient(lifecycle, serves_iot_jobs=True)`` answers in-process), through ``mock_aws``
or a ``ThreadedMotoServer`` in this process. Any other request gets moto's own answer (which
holds no IoT job).

Whether AWS's tagging API serves IoT jobs is unconfirmed, so nothing turns this on but a
caller that wants it (the offline endpoint, ``python -m iot_job_cleanup.emulator``); the
rehearsal leaves it off, as the handler in Lambda may find it.

The answer follows the API's rules: each ``TagFilters`` entry needs the key, with one of its
``Values`` (no values: any value); a mapping carries every tag of the job; pages hold
``ResourcesPerPage`` (1 to 100, 50 by default) with a ``PaginationToken`` while more follow.
Which jobs exist and their tags are the lifecycle's (``tagged_job_arns``, its read API): a
deletion that has finished takes its job out, one in progress does not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.core.responses import ActionResult
from moto.resourcegroupstaggingapi.exceptions import ResourceGroupsTaggingAPIError
from moto.resourcegroupstaggingapi.responses import ResourceGroupsTaggingAPIResponse

from .model import DeletionLifecycle

__all__ = ["IOT_JOB_TYPE", "emulated_tagging"]

IOT_JOB_TYPE = "iot:job"
DEFAULT_PAGE = 50

Original = Callable[[ResourceGroupsTaggingAPIResponse], Any]

_lifecycles: dict[tuple[str, str], DeletionLifecycle] = {}
_lock = threading.Lock()
_depth = 0
_original: Original | None = None


def _invalid(message: str) -> ResourceGroupsTaggingAPIError:
    return ResourceGroupsTaggingAPIError("InvalidParameterException", message)


def _wanted(tag_filters: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, set[str]]]:
    """TagFilters as the lifecycle's exact tags (one value) and the rest (none: any value; several:
    one of them)."""
    exact: dict[str, str] = {}
    other: dict[str, set[str]] = {}
    for entry in tag_filters:
        key, values = entry.get("Key"), list(entry.get("Values") or [])
        if not key:
            raise _invalid("A TagFilters entry needs a Key.")
        if len(values) == 1:
            exact[key] = values[0]
        else:
            other[key] = set(values)
    return exact, other


def iot_job_page(
    lifecycle: DeletionLifecycle,
    tag_filters: list[dict[str, Any]],
    per_page: int = DEFAULT_PAGE,
    token: str | None = None,
) -> dict[str, Any]:
    """One GetResources page of the lifecycle's IoT jobs that match ``tag_filters``."""
    if not 1 <= per_page <= 100:
        raise _invalid("ResourcesPerPage must be between 1 and 100")
    exact, other = _wanted(tag_filters)
    with lifecycle.locked():  # the jobs and their tags at one moment
        arns = lifecycle.tagged_job_arns(exact)  # counted, and finished deletions taken out
        tags_of = {job.job_arn: job.tags for job in lifecycle.snapshot().values()}
    found = [
        arn
        for arn in arns
        if all(
            key in tags_of[arn] and (not values or tags_of[arn][key] in values)
            for key, values in other.items()
        )
    ]
    try:
        start = int(token or 0)
    except ValueError:
        raise _invalid(f"Bad PaginationToken {token!r}.") from None
    if not 0 <= start <= len(found):
        raise _invalid(f"Bad PaginationToken {token!r}.")
    end = start + per_page
    return {
        "ResourceTagMappingList": [
            {"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in tags_of[arn].items()]}
            for arn in found[start:end]
        ],
        "PaginationToken": str(end) if end < len(found) else "",
    }


def _get_resources(self: ResourceGroupsTaggingAPIResponse) -> Any:
    lifecycle = _lifecycles.get((self.current_account, self.region))
    types = self._get_param("ResourceTypeFilters") or []
    if lifecycle is None or not types or any(kind != IOT_JOB_TYPE for kind in types):
        assert _original is not None
        return _original(self)
    page = iot_job_page(
        lifecycle,
        self._get_param("TagFilters") or [],
        self._get_int_param("ResourcesPerPage", DEFAULT_PAGE),
        self._get_param("PaginationToken"),
    )
    return ActionResult(page)


@contextmanager
def emulated_tagging(lifecycle: DeletionLifecycle) -> Iterator[DeletionLifecycle]:
    """Let the tagging API's GetResources answer ``lifecycle``'s IoT jobs (its account and
    region: its moto backend's) while this is active; moto's answer comes back afterwards."""
    global _depth, _original
    key = (lifecycle.backend.account_id, lifecycle.backend.region_name)
    with _lock:
        if _depth == 0:
            _original = ResourceGroupsTaggingAPIResponse.get_resources
            ResourceGroupsTaggingAPIResponse.get_resources = _get_resources  # type: ignore[method-assign]
        _depth += 1
        _lifecycles[key] = lifecycle
    try:
        yield lifecycle
    finally:
        with _lock:
            if _lifecycles.get(key) is lifecycle:
                del _lifecycles[key]
            _depth -= 1
            if _depth == 0:
                ResourceGroupsTaggingAPIResponse.get_resources = _original  # type: ignore[method-assign]
                _original = None
