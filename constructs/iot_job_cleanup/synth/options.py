"""A cleanup's options, each checked for its type and range, and the resource properties
they become.

``Settings.check`` takes the constructor's keywords as given (``object``: users pass
anything) and either returns them checked or raises ``SettingError`` naming the value, the
rule and the fix. Job ids and filters are judged by ``JobIdSources`` and ``Selection``;
here the rest: force, the durations and how they bound each other, the namespace, the
removal policy. ``Settings.stage_timeouts`` splits total_timeout into the cleanup's stages
(an hour each at most, a custom resource's limit), and ``Settings.properties`` is one
stage's properties, every value a string as CloudFormation hands them to the handler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack, Token

from .literals import JobIdSources, Literals
from .naming import NAMESPACE_ID_PATTERN, SettingError, kind
from .selection import Selection
from .statements import DRAIN_ACTIONS, JOB_ACTIONS, check_selection_policy_size

__all__ = ["DEFAULT_QUERY_INTERVAL", "MAX_TOTAL_TIMEOUT", "STAGE_TIMEOUT", "Settings"]

DELETION_RESERVE = Duration.seconds(60)  # the part of total_timeout that drain may not use
STAGE_TIMEOUT = Duration.hours(1)  # a custom resource's limit (ServiceTimeout), the Provider's too
# A day: 7,200 two-minute deletions through IoT's 10 slots. Each hour more is one more resource
# in the stack (of CloudFormation's 500) and one more discovery; a fleet that needs longer is
# better cleaned before the destroy, with `iot-job-cleanup delete`, which has no time limit.
MAX_TOTAL_TIMEOUT = Duration.hours(24)
MIN_TOTAL_TIMEOUT = Duration.minutes(1)
DEFAULT_QUERY_INTERVAL = Duration.seconds(2)  # how often the handler checks IoT while it waits
MAX_QUERY_INTERVAL = Duration.seconds(300)


def _seconds(duration: Duration) -> float:
    return duration.to_milliseconds() / 1000  # to_seconds() refuses fractions


def _seconds_text(duration: Duration) -> str:
    return f"{_seconds(duration):g}"


@dataclass(frozen=True)
class Settings:
    """A cleanup's options, each checked for its type and range."""

    sources: JobIdSources | None
    selection: Selection
    force: bool
    drain: Duration | None
    namespace_id: str | None
    query_interval: Duration
    total_timeout: Duration
    removal_policy: RemovalPolicy

    @property
    def actions(self) -> tuple[str, ...]:
        return JOB_ACTIONS + DRAIN_ACTIONS if self.drain is not None else JOB_ACTIONS

    @classmethod
    def check(
        cls,
        stack: Stack,
        *,
        job_ids: object,
        tags: object,
        thing_groups: object,
        job_id_prefix: object,
        force: object,
        drain: object,
        namespace_id: object,
        query_interval: object,
        total_timeout: object,
        removal_policy: object,
    ) -> Settings:
        literal = Literals(stack)
        sources = JobIdSources.parse(job_ids, literal) if job_ids is not None else None
        selection = Selection.parse(tags, thing_groups, job_id_prefix, literal)
        if sources is not None and not sources.order and not selection.filtered:
            raise SettingError(
                "job_ids is empty: name at least one job, select jobs with tags, thing_groups or "
                "job_id_prefix, or leave IotJobCleanup out."
            )
        if sources is None and not selection.filtered:
            raise SettingError(
                "none of job_ids, tags, thing_groups and job_id_prefix: it needs at least one to know "
                "which jobs to delete. Name the jobs with job_ids=[...], or select jobs created at "
                "runtime with tags={...}, thing_groups=[...] or job_id_prefix='...'."
            )
        forced = _check_force(force)
        interval = (
            DEFAULT_QUERY_INTERVAL
            if query_interval is None
            else _check_duration("query_interval", query_interval)
        )
        total = STAGE_TIMEOUT if total_timeout is None else _check_duration("total_timeout", total_timeout)
        drained = None if drain is None else _check_duration("drain", drain)
        namespace = _check_namespace_id(namespace_id, literal)
        _check_timing(interval, total)
        _check_drain(drained, total)
        removal = _check_removal_policy(removal_policy)
        settings = cls(
            sources=sources,
            selection=selection,
            force=forced,
            drain=drained,
            namespace_id=namespace,
            query_interval=interval,
            total_timeout=total,
            removal_policy=removal,
        )
        if selection.filtered:
            check_selection_policy_size(selection, settings.actions)
        return settings

    def stage_timeouts(self) -> list[Duration]:
        """Each stage's ServiceTimeout: an hour each, the last what remains of total_timeout."""
        total, stage = int(_seconds(self.total_timeout)), int(STAGE_TIMEOUT.to_seconds())
        full, rest = divmod(total, stage)
        seconds = [stage] * full + ([rest] if rest else [])
        return [Duration.seconds(value) for value in seconds]

    def properties(self, cleanup_path: str, stage: int = 1, stages: int = 1) -> dict[str, object]:
        """Stage ``stage`` of ``stages``' properties (the handler's contract reads them)."""
        sources, selection = self.sources, self.selection
        properties: dict[str, object] = {}
        if sources is not None:
            properties["JobIds"] = sources.property_value()
        if selection.tags:
            properties["JobTags"] = [{"Key": key, "Value": value} for key, value in selection.tags]
        if selection.thing_group_names:
            properties["ThingGroupNames"] = list(selection.thing_group_names)
        if selection.prefix is not None:
            properties["JobIdPrefix"] = selection.prefix
        properties["Force"] = "true" if self.force else "false"
        if self.drain is not None:
            properties["DrainSeconds"] = _seconds_text(self.drain)
        properties["QueryIntervalSeconds"] = _seconds_text(self.query_interval)
        properties["TotalTimeoutSeconds"] = _seconds_text(self.stage_timeouts()[stage - 1])
        if self.namespace_id:
            properties["NamespaceId"] = self.namespace_id
        properties["Cleanup"] = cleanup_path
        if stages > 1:
            properties["Stage"] = str(stage)
            properties["Stages"] = str(stages)
        return properties


def _check_force(force: object) -> bool:
    if not isinstance(force, bool):
        raise SettingError(
            f"force is {kind(force)}: it must be True or False. Any other value would be taken "
            "for its truth, and the string 'false' (what `cdk synth -c forceJobDeletion=false` "
            "gives) is true: running jobs would be force-deleted under devices mid-update. From a "
            'context value write force=app.node.try_get_context("forceJobDeletion") in (True, "true").'
        )
    return force


def _check_duration(name: str, value: object) -> Duration:
    if not isinstance(value, Duration):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        example = f"Duration.seconds({value:g})" if number else "Duration.seconds(...)"
        raise SettingError(f"{name} is {kind(value)}: it must be a Duration. Write {name}={example}.")
    if value.is_unresolved():
        raise SettingError(
            f"{name} is a token (a Duration of a parameter or another value known only at deploy "
            "time): it must be known at synth time, since the rules here and the resource's "
            f"ServiceTimeout need its value. Give it as e.g. {name}=Duration.minutes(5)."
        )
    return value


def _check_drain(drain: Duration | None, total_timeout: Duration) -> None:
    if drain is None:
        return
    seconds, total = _seconds(drain), _seconds(total_timeout)
    limit = total - _seconds(DELETION_RESERVE)
    if not 0 <= seconds <= limit:
        raise SettingError(
            f"drain is {seconds:g} s: drain time counts inside total_timeout ({total:g} s), whose "
            f"last 60 s are left for the deletions, so drain may be at most {limit:g} s. Shorten "
            f"drain to Duration.seconds({limit:g}) or less"
            + (
                f", or raise total_timeout to Duration.seconds({seconds + 60:g}) (at most 24 hours)."
                if seconds + 60 <= MAX_TOTAL_TIMEOUT.to_seconds()
                else " (total_timeout is at most 24 hours)."
            )
        )


def _check_namespace_id(namespace_id: object, literal: Literals) -> str | None:
    if namespace_id is None:
        return None
    if not isinstance(namespace_id, str):
        raise SettingError(
            f"namespace_id is {kind(namespace_id)}: it must be a string of letters, digits, '_' "
            "and '-'. Write it as a string, or leave it out for jobs created without a namespace."
        )
    namespace_id = literal(namespace_id)
    if not Token.is_unresolved(namespace_id) and not NAMESPACE_ID_PATTERN.fullmatch(namespace_id):
        raise SettingError(
            f"namespace_id is {namespace_id!r}: it must be letters, digits, '_' and '-' only. "
            "Fix it, or leave it out for jobs created without a namespace."
        )
    return namespace_id


def _check_timing(query_interval: Duration, total_timeout: Duration) -> None:
    interval, total = _seconds(query_interval), _seconds(total_timeout)
    if total > MAX_TOTAL_TIMEOUT.to_seconds():
        raise SettingError(
            f"total_timeout is {total:g} s: it may be at most 86400 s (24 hours: a cleanup longer "
            "than an hour runs as one resource per hour, its stages, one after another). Use "
            "Duration.hours(24) or less; for a fleet that needs longer, delete its jobs before the "
            "destroy with iot-job-cleanup delete, which has no time limit."
        )
    if total < MIN_TOTAL_TIMEOUT.to_seconds():
        raise SettingError(
            f"total_timeout is {total:g} s: it must be at least 60 s, time for one deletion to "
            "finish. Use Duration.minutes(1) or more."
        )
    if total != int(total):
        raise SettingError(
            f"total_timeout is {total:g} s: it must be a whole number of seconds, since it is also "
            "the resource's ServiceTimeout, which CloudFormation takes in whole seconds. Use "
            f"Duration.seconds({math.floor(total)}) or Duration.seconds({math.ceil(total)})."
        )
    if not 1 <= interval <= MAX_QUERY_INTERVAL.to_seconds():
        raise SettingError(
            f"query_interval is {interval:g} s: the handler checks IoT that often while deletions "
            "are under way, from every 1 s to every 300 s. Use e.g. Duration.seconds(2), or leave "
            "it out."
        )
    if interval > total:
        raise SettingError(
            f"query_interval is {interval:g} s, longer than total_timeout ({total:g} s): the handler "
            "would not look at IoT again before the cleanup gives up. Shorten query_interval to "
            f"Duration.seconds({total:g}) or less (the default is 2 s), or raise total_timeout."
        )


def _check_removal_policy(removal_policy: object) -> RemovalPolicy:
    if not isinstance(removal_policy, RemovalPolicy):
        raise SettingError(
            f"removal_policy is {kind(removal_policy)}: it must be a RemovalPolicy: "
            "RemovalPolicy.DESTROY (the default: the jobs are deleted with the stack) or "
            "RemovalPolicy.RETAIN (they are left alone)."
        )
    if removal_policy == RemovalPolicy.SNAPSHOT:
        raise SettingError(
            "removal_policy is SNAPSHOT: IoT jobs have no snapshot. Use DESTROY to delete the "
            "jobs with the stack, or RETAIN to leave them alone."
        )
    return removal_policy
