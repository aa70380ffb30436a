"""The resource contract: which jobs a cleanup selects, and how it treats them.

Resource properties (CloudFormation hands every value over as a string):
  JobIds               list of job ids (empty strings, as an empty CommaDelimitedList gives, are ignored)
  JobTags              list of {"Key": k, "Value": v}: jobs carrying every one of these tags
  ThingGroupNames      list of thing group names: jobs targeting any of them
  JobIdPrefix          jobs whose id starts with this
  NamespaceId          the customer-managed job namespace of the jobs
  Force                "true" or "false": "true" also deletes jobs that are still running
  DrainSeconds         optional: cancel running jobs, then wait up to this long for their devices
  QueryIntervalSeconds optional: how often to check IoT while deletions are under way (default 2)
  TotalTimeoutSeconds  optional: how long this resource's Delete may take, at most 3600 (default 3600)
  Cleanup              optional: the construct's path below the stack (metrics' dimension, cancel marker)
  Stage, Stages        optional: "k" and "n" of a cleanup longer than an hour, run as n resources (its
                       stages) one after another; a stage k < n whose time runs out with jobs left
                       succeeds and hands them on to stage k + 1 (default "1" of "1")

The jobs selected are JobIds plus the jobs that match every filter given (JobTags AND
ThingGroupNames AND JobIdPrefix). A job in a namespace matches only when NamespaceId names
that namespace. At least one of JobIds, JobTags, ThingGroupNames and JobIdPrefix is needed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidPropertiesError, shown
from .rules import (
    JOB_ID_PATTERN,
    NAMESPACE_ID_PATTERN,
    TAG_KEY_PATTERN,
    TAG_VALUE_PATTERN,
    THING_GROUP_NAME_PATTERN,
)

__all__ = [
    "JOB_ID_PATTERN",
    "MAX_STAGES",
    "MAX_TOTAL_TIMEOUT",
    "CleanupRequest",
    "Selection",
]

MAX_TOTAL_TIMEOUT = 3600.0  # CloudFormation's limit for a custom resource: one stage's
MAX_STAGES = 24  # the construct's cap: total_timeout at most 24 hours


@dataclass(frozen=True)
class Selection:
    """Which jobs a cleanup owns: named ones, plus those matching every filter given."""

    job_ids: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs
    thing_groups: tuple[str, ...] = ()
    prefix: str | None = None
    namespace_id: str | None = None

    @property
    def has_filters(self) -> bool:
        return bool(self.tags or self.thing_groups or self.prefix)

    def id_may_match(self, job_id: str) -> bool:
        """The part of the filters a job id alone can tell: its prefix."""
        return self.has_filters and (self.prefix is None or job_id.startswith(self.prefix))

    def carries_tags(self, tags: Mapping[str, str]) -> bool:
        return all(tags.get(key) == value for key, value in self.tags)

    def targets_a_group(self, targets: Sequence[str]) -> bool:
        return any(
            target.endswith(f":thinggroup/{group}") for target in targets for group in self.thing_groups
        )

    def describe(self) -> str:
        """The filters, for messages: tags fleet=demo AND groups a|b AND prefix 'ota-'."""
        parts = []
        if self.tags:
            parts.append("tags " + ", ".join(f"{key}={value}" for key, value in self.tags))
        if self.thing_groups:
            parts.append("thing groups " + " or ".join(self.thing_groups))
        if self.prefix:
            parts.append(f"id prefix {self.prefix!r}")
        return " AND ".join(parts)

    def check(self) -> Selection:
        """Raise InvalidPropertiesError naming the value, the rule and the fix."""
        for job_id in self.job_ids:
            _require(
                JOB_ID_PATTERN, job_id, "JobIds contains", "a job id is 1 to 64 characters of [a-zA-Z0-9_-]"
            )
        duplicates = sorted({job_id for job_id in self.job_ids if self.job_ids.count(job_id) > 1})
        if duplicates:
            raise InvalidPropertiesError(
                f"JobIds names {duplicates[0]!r} twice: each job may be listed once. Remove the duplicate."
            )
        for key, value in self.tags:
            _require(
                TAG_KEY_PATTERN,
                key,
                "JobTags has the key",
                "a tag key is 1 to 128 letters, digits, spaces or _.:/=+-@",
            )
            if key.lower().startswith("aws:"):
                raise InvalidPropertiesError(
                    f"JobTags has the key {key!r}: keys starting with 'aws:' are AWS's. Use another key."
                )
            _require(
                TAG_VALUE_PATTERN,
                value,
                f"JobTags gives {key!r} the value",
                "a tag value is 0 to 256 letters, digits, spaces or _.:/=+-@",
            )
        for group in self.thing_groups:
            _require(
                THING_GROUP_NAME_PATTERN,
                group,
                "ThingGroupNames contains",
                "a thing group name is 1 to 128 characters of [a-zA-Z0-9:_-]",
            )
        if self.prefix is not None:
            _require(
                JOB_ID_PATTERN,
                self.prefix,
                "JobIdPrefix is",
                "a prefix is 1 to 64 characters of [a-zA-Z0-9_-]",
            )
        if self.namespace_id is not None:
            _require(
                NAMESPACE_ID_PATTERN,
                self.namespace_id,
                "NamespaceId is",
                "a namespace id matches [a-zA-Z0-9_-]+",
            )
        return self


def _require(pattern: re.Pattern[str], value: Any, what: str, rule: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidPropertiesError(f"{what} {shown(value)}: {rule}. Fix or remove it.")


@dataclass(frozen=True)
class CleanupRequest:
    """A cleanup's selection and how it treats the jobs: force, drain, timing."""

    selection: Selection
    force: bool = False
    drain: float | None = None  # seconds; None: running jobs need force
    query_interval: float | None = None  # None: the handler's default
    total_timeout: float | None = None
    cleanup_path: str | None = None  # the construct's path below the stack
    stage: int = 1
    stages: int = 1

    @property
    def hands_on(self) -> bool:
        """A stage that is not the last: when its time runs out it hands what is left on."""
        return self.stage < self.stages

    @property
    def job_ids(self) -> tuple[str, ...]:
        return self.selection.job_ids

    @property
    def namespace_id(self) -> str | None:
        return self.selection.namespace_id

    @classmethod
    def from_properties(cls, properties: Any) -> CleanupRequest:
        if not isinstance(properties, Mapping):
            raise InvalidPropertiesError(
                f"ResourceProperties is {shown(properties)}: it must be a mapping of the cleanup's "
                "properties. Deploy the resource with IotJobCleanup."
            )
        selection = Selection(
            job_ids=_parse_job_ids(properties.get("JobIds")),
            tags=_parse_tags(properties.get("JobTags")),
            thing_groups=_parse_list(properties, "ThingGroupNames"),
            prefix=_parse_prefix(properties.get("JobIdPrefix")),
            namespace_id=properties.get("NamespaceId") or None,
        ).check()
        if "JobIds" not in properties and not selection.has_filters:
            raise InvalidPropertiesError(
                "None of JobIds, JobTags, ThingGroupNames and JobIdPrefix is set: a cleanup needs at "
                'least one. Set JobIds to the jobs to delete, e.g. ["ota-2026-11"], or a filter.'
            )
        return cls(
            selection=selection,
            force=_parse_force(properties.get("Force", "false")),
            drain=_parse_seconds(properties, "DrainSeconds", 0, MAX_TOTAL_TIMEOUT),
            query_interval=_parse_seconds(properties, "QueryIntervalSeconds", 1, 300),
            total_timeout=_parse_seconds(properties, "TotalTimeoutSeconds", 60, MAX_TOTAL_TIMEOUT),
            cleanup_path=_parse_path(properties.get("Cleanup")),
            **_parse_stage(properties),
        )


def _parse_job_ids(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidPropertiesError(
            f"JobIds is {shown(value)}: it must be a list of job ids. "
            'Set JobIds to the jobs to delete, e.g. ["ota-2026-11"].'
        )
    return tuple(job_id for job_id in value if job_id != "")


def _parse_list(properties: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = properties.get(name)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidPropertiesError(f"{name} is {shown(value)}: it must be a list. Write it as a list.")
    return tuple(value)


def _parse_tags(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(tag, Mapping) and "Key" in tag for tag in value):
        raise InvalidPropertiesError(
            f'JobTags is {shown(value)}: it must be a list of {{"Key": ..., "Value": ...}}. Write it so.'
        )
    pairs = [(tag["Key"], tag.get("Value", "")) for tag in value]
    for key, tag_value in pairs:
        _require(
            TAG_KEY_PATTERN,
            key,
            "JobTags has the key",
            "a tag key is 1 to 128 letters, digits, spaces or _.:/=+-@",
        )
        _require(
            TAG_VALUE_PATTERN,
            tag_value,
            f"JobTags gives {key!r} the value",
            "a tag value is 0 to 256 letters, digits, spaces or _.:/=+-@",
        )
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise InvalidPropertiesError(
            f"JobTags has the key {twice[0]!r} more than once: a job carries one value per key, so no "
            "job could match. Give each key once."
        )
    return tuple(sorted(pairs))


def _parse_prefix(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidPropertiesError(
            f"JobIdPrefix is {shown(value)}: a prefix is 1 to 64 characters of [a-zA-Z0-9_-] (an empty "
            "one would select every job the other filters match). Set a prefix, or leave JobIdPrefix out."
        )
    return value


def _parse_path(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 1024:
        raise InvalidPropertiesError(
            f"Cleanup is {shown(value)}: it must be the construct's path below the stack, a string of "
            'at most 1024 characters, e.g. "Fleet/RuntimeCleanup". Fix it, or leave it out.'
        )
    return value


def _parse_stage(properties: Mapping[str, Any]) -> dict[str, int]:
    """Stage and Stages: both or neither; 1 <= Stage <= Stages <= MAX_STAGES."""
    stage, stages = properties.get("Stage"), properties.get("Stages")
    if stage in (None, "") and stages in (None, ""):
        return {"stage": 1, "stages": 1}

    def whole(value: Any) -> int | None:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        return int(text) if text.isdigit() else None

    k, n = whole(stage), whole(stages)
    if k is None or n is None or not 1 <= k <= n <= MAX_STAGES:
        raise InvalidPropertiesError(
            f"Stage is {shown(stage)} and Stages {shown(stages)}: they must be whole numbers with "
            f"1 <= Stage <= Stages <= {MAX_STAGES}, as the IotJobCleanup construct sets them. "
            "Deploy the stages through the construct."
        )
    return {"stage": k, "stages": n}


def _parse_force(value: Any) -> bool:
    text = str(value).lower()
    if text not in ("true", "false"):
        raise InvalidPropertiesError(
            f'Force is {shown(value)}: it must be "true" or "false". Set Force to one of them.'
        )
    return text == "true"


def _parse_seconds(properties: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = properties.get(name)
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not low <= seconds <= high:
        raise InvalidPropertiesError(
            f"{name} is {shown(value)}: it must be a number of seconds from {low:g} to {high:g}. "
            f'Fix it (e.g. "{high:g}"), or leave it out for the default.'
        )
    return seconds
