"""The IotJobCleanup construct: a custom resource that deletes IoT jobs at stack teardown."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import (
    Acknowledgment,
    Aws,
    CustomResource,
    Duration,
    Fn,
    RemovalPolicy,
    Stack,
    Token,
    Tokenization,
    Validations,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr

from constructs import Construct

from .engine import HANDLER_MODULE, handler_directory

__all__ = ["HANDLER_MODULE", "IotJobCleanup", "handler_directory"]

RESOURCE_TYPE = "Custom::IotJobCleanup"
JOB_ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]{1,64}")
NAMESPACE_ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]+")
# IoT's rules, as the handler's contract checks them again at deploy time.
TAG_KEY_PATTERN = re.compile(r"[\w .:/=+\-@]{1,128}")
TAG_VALUE_PATTERN = re.compile(r"[\w .:/=+\-@]{0,256}")
MAX_TAGS = 50
THING_GROUP_NAME_PATTERN = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
DELETION_RESERVE = Duration.seconds(60)  # the part of total_timeout that drain may not use
MAX_TOTAL_TIMEOUT = Duration.hours(1)  # the Provider's maximum and CloudFormation's limit
MIN_TOTAL_TIMEOUT = Duration.minutes(1)
DEFAULT_QUERY_INTERVAL = Duration.seconds(2)  # how often the handler checks IoT while it waits
MAX_QUERY_INTERVAL = Duration.seconds(300)
POLL_WINDOW = Duration.seconds(300)
# The one provider of a stack. Its construct id and the waiter's timing are fixed, whatever
# the options of the cleanups it serves: every custom resource's ServiceToken points at it,
# and CloudFormation refuses to change a deployed custom resource's ServiceToken.
PROVIDER_ID = "IotJobCleanupProvider"
WAITER_INTERVAL = Duration.seconds(10)
WAITER_TIMEOUT = MAX_TOTAL_TIMEOUT
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
# IAM counts a managed policy's size resolved and without white space: at most 6,144
# characters. A job ARN resolves to at most 51 characters around its id (partition
# "aws-us-gov", a 14-character region, a 12-digit account) plus 3 for quotes and comma.
MANAGED_POLICY_BUDGET = 6144 - 200  # the rest: Version, Effect, Action
ARN_SCAFFOLD_SIZE = 51 + 3
TOKEN_JOB_ID_SIZE = 64
TOKEN_TAG_VALUE_SIZE = 256
JOB_ACTIONS = ("iot:DeleteJob", "iot:DescribeJob")
DRAIN_ACTIONS = ("iot:CancelJob", "iot:ListJobExecutionsForJob")


class _InitSignature:
    """The signature of ``__init__``, for ``help()`` and ``inspect.signature()`` of a jsii class.

    They would show jsii's metaclass ``__call__(*args, **kwargs)`` instead.
    """

    def __get__(self, instance: object, owner: type) -> inspect.Signature:
        signature = inspect.signature(owner.__init__)
        return signature.replace(
            parameters=list(signature.parameters.values())[1:], return_annotation=inspect.Signature.empty
        )


class IotJobCleanup(Construct):
    """Deletes AWS IoT jobs when the stack is torn down, and waits until they are gone.

    The jobs are the ones named in ``job_ids`` plus, for jobs created at runtime, every job
    that matches all the filters given (``tags``, ``thing_groups``, ``job_id_prefix``).
    Create and Update touch no job. A Delete deletes the jobs only when the stack itself is
    being deleted (or a failed stack creation is rolled back): a cleanup that an update
    renames, moves or removes leaves its jobs alone. The deletion completes only when every
    job is gone, riding out IoT's limit of 10 deletions in progress per account and region.
    A job dropped from ``job_ids`` by an update is no longer deleted.

    The handler may touch only the jobs the cleanup selects: named jobs by their exact ARN,
    tagged jobs through an ``aws:ResourceTag`` condition, prefixed jobs by ``job/<prefix>*``.
    Thing groups alone have no IAM condition key: they get ``job/*``.

    Every IotJobCleanup of a stack shares one provider, whatever its options, so changing
    an option never changes a deployed resource's ServiceToken.
    """

    __signature__ = _InitSignature()

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        job_ids: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        thing_groups: Sequence[iot.CfnThingGroup | str] | None = None,
        job_id_prefix: str | None = None,
        force: bool = False,
        drain: Duration | None = None,
        namespace_id: str | None = None,
        query_interval: Duration | None = None,
        total_timeout: Duration | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        """Add a cleanup of IoT jobs to ``scope``'s stack.

        The jobs cleaned are those of ``job_ids`` plus those matching every filter given
        (``tags`` AND ``thing_groups`` AND ``job_id_prefix``); at least one of the four is
        required.

        :param scope: the construct to add it to.
        :param construct_id: its id in ``scope``.
        :param job_ids: the jobs this resource owns and deletes at stack teardown: literal
            ids, string tokens, and list tokens (a CommaDelimitedList parameter's
            ``value_as_list``, an SSM ``StringListParameter``'s ``string_list_value``,
            ``Fn.split``), alone or mixed, e.g. ``["ota-1", *param.value_as_list]``.
            Optional when a filter is given.
        :param tags: a filter for jobs created at runtime: the jobs carrying every one of
            these tags (at most 50; keys must be literals, values may be tokens). The
            handler may delete only jobs that carry them (an IAM ``aws:ResourceTag``
            condition), and ``grant_create_jobs`` needs them.
        :param thing_groups: a filter: the jobs targeting any of these thing groups, each a
            ``CfnThingGroup`` or a group name. Without ``tags`` or ``job_id_prefix`` the
            handler may delete any job of the account and region (IAM has no condition key
            for a job's targets).
        :param job_id_prefix: a filter: the jobs whose id starts with this (1 to 64
            characters of ``[a-zA-Z0-9_-]``); the handler's permissions are limited to
            ``job/<prefix>*``.
        :param force: also delete jobs that are not COMPLETED or CANCELED (IN_PROGRESS,
            SCHEDULED); devices with an execution in progress may be left mid-update.
        :param drain: cancel running jobs first, then wait up to this long for their
            devices to finish before deleting them (with ``force``, deleted after that time
            anyway; without, the cleanup fails naming the busy devices). The drain time
            counts inside ``total_timeout`` and must leave its last 60 s for the deletions.
        :param namespace_id: the customer-managed job namespace the jobs were created in.
        :param query_interval: how often the handler checks IoT while deletions are under
            way (1 s to 5 min; default 2 s).
        :param total_timeout: how long the cleanup may take (1 min to 1 hour; default 1
            hour); also the resource's ServiceTimeout.
        :param removal_policy: ``RETAIN`` leaves the jobs alone when the stack is destroyed.
        :raises ValueError: a setting breaks a rule; the message names the value, the rule
            and the fix.
        """
        super().__init__(scope, construct_id)
        query_interval = query_interval or DEFAULT_QUERY_INTERVAL
        total_timeout = total_timeout or MAX_TOTAL_TIMEOUT
        sources = _JobIdSources.parse(job_ids) if job_ids is not None else None
        selection = _Selection.parse(tags, thing_groups, job_id_prefix)
        if sources is not None and not sources.order and not selection.filtered:
            raise ValueError(
                "job_ids is empty: name at least one job, select jobs with tags, thing_groups or "
                "job_id_prefix, or leave IotJobCleanup out."
            )
        if sources is None and not selection.filtered:
            raise ValueError(
                "IotJobCleanup got none of job_ids, tags, thing_groups and job_id_prefix: it needs "
                "at least one to know which jobs to delete. Name the jobs with job_ids=[...], or "
                "select jobs created at runtime with tags={...}, thing_groups=[...] or "
                "job_id_prefix='...'."
            )
        _check_namespace_id(namespace_id)
        _check_timing(query_interval, total_timeout)
        _check_drain(drain, total_timeout)
        _check_removal_policy(removal_policy)
        actions = JOB_ACTIONS + DRAIN_ACTIONS if drain is not None else JOB_ACTIONS
        if selection.filtered:
            _check_selection_policy_size(selection, actions)

        stack = Stack.of(self)
        provider = _CleanupProvider.of(stack)
        self.job_ids: list[str] = list(job_ids) if job_ids is not None else []
        self.job_arns: list[str] = sources.arns(stack) if sources is not None else []
        self.tags: dict[str, str] = dict(selection.tags)
        self.thing_group_names: list[str] = list(selection.thing_group_names)
        self.job_id_prefix: str | None = selection.prefix
        if sources is not None:
            provider.grant_delete(sources, stack, actions)

        properties: dict[str, object] = {}
        if sources is not None:
            properties["JobIds"] = sources.property_value()
        if selection.tags:
            properties["JobTags"] = [{"Key": key, "Value": value} for key, value in selection.tags]
        if selection.thing_group_names:
            properties["ThingGroupNames"] = list(selection.thing_group_names)
        if selection.prefix is not None:
            properties["JobIdPrefix"] = selection.prefix
        properties["Force"] = "true" if force else "false"
        if drain is not None:
            properties["DrainSeconds"] = _seconds_text(drain)
        properties["QueryIntervalSeconds"] = _seconds_text(query_interval)
        properties["TotalTimeoutSeconds"] = _seconds_text(total_timeout)
        if namespace_id:
            properties["NamespaceId"] = namespace_id
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties=properties,
            removal_policy=removal_policy,
            service_timeout=total_timeout,
        )
        # On destroy, CloudFormation must not remove the permission before the Delete ran:
        # the role's construct holds its default policy and the job policies.
        self.resource.node.add_dependency(provider.role)
        if selection.filtered:
            policy = _SelectionPolicy(self, "SelectionPolicy", selection, actions, provider.role)
            self.resource.node.add_dependency(policy)

    def grant_create_jobs(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` create jobs that this cleanup will delete, and only those.

        Grants ``iot:CreateJob`` and ``iot:TagResource`` (tagging on create) on the jobs the
        cleanup covers (``job/<job_id_prefix>*``, else ``job/*``), on condition that the
        request carries every one of the cleanup's ``tags``; CreateJob also on its targets
        (the cleanup's thing groups when ``thing_groups`` is given, else any thing group
        and thing) and on job templates. A grantee that is a construct (a Function, a Role)
        then depends on this cleanup's resource: at teardown CloudFormation removes the job
        creator before the cleanup runs, so no job is created behind it. (If the cleanup
        itself refers to the grantee, e.g. ``job_ids`` from its attributes, that is a
        dependency cycle, which CDK reports at synth time.)

        Note that ``iot:TagResource`` cannot be limited to creation: the grantee may also
        put the cleanup's tags on an existing job the ARN pattern covers, which makes that
        job the cleanup's. A ``job_id_prefix`` narrows that to the prefixed jobs.

        :param grantee: the principal that creates the jobs, e.g. a Lambda function.
        :returns: the grant, over both statements.
        :raises ValueError: the cleanup has no ``tags``: the grant is only safe when every
            job created carries the tags that make it this cleanup's.
        """
        if not self.tags:
            raise ValueError(
                f"grant_create_jobs on {self.node.path}, a cleanup without tags: what it grants "
                "(CreateJob on any job id and target) is only safe when every job created carries "
                "the tags this cleanup selects, so that the cleanup deletes it at teardown. Pass "
                "tags={...} to IotJobCleanup (and tag the jobs you create with them)."
            )
        stack = Stack.of(self)
        jobs = [_job_pattern_arn(stack, self.job_id_prefix)]
        if self.thing_group_names:
            targets = [_thing_group_arn(stack, name) for name in self.thing_group_names]
        else:
            targets = [
                _thing_group_arn(stack, "*"),
                stack.format_arn(service="iot", resource="thing", resource_name="*"),
            ]
        templates = [stack.format_arn(service="iot", resource="jobtemplate", resource_name="*")]
        conditions = {
            "StringEquals": {f"aws:RequestTag/{key}": value for key, value in self.tags.items()},
            "ForAnyValue:StringEquals": {"aws:TagKeys": list(self.tags)},
        }
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["iot:CreateJob"],
            resource_arns=[*jobs, *targets, *templates],
            conditions=conditions,
        ).combine(
            iam.Grant.add_to_principal(
                grantee=grantee, actions=["iot:TagResource"], resource_arns=jobs, conditions=conditions
            )
        )
        if isinstance(grantee, Construct):
            grantee.node.add_dependency(self.resource)
        return grant


# --------------------------------------------------------------------------- synth-time checks


def _seconds(duration: Duration) -> float:
    return duration.to_milliseconds() / 1000  # to_seconds() refuses fractions


def _seconds_text(duration: Duration) -> str:
    return f"{_seconds(duration):g}"


@dataclass
class _JobIdSources:
    """``job_ids`` sorted by kind: ids known now, and string and list tokens resolved at deploy."""

    scalars: list[str] = field(default_factory=list)  # literals and string tokens, in order
    lists: list[str] = field(default_factory=list)  # list tokens, each encoded as one string
    order: list[tuple[str, str]] = field(default_factory=list)  # ("scalar" | "list", value)

    @classmethod
    def parse(cls, job_ids: Sequence[str]) -> _JobIdSources:
        if isinstance(job_ids, str) or not isinstance(job_ids, Sequence):
            raise ValueError(
                f"job_ids is {job_ids!r}: it must be a list of job ids. Write job_ids=[{job_ids!r}]."
            )
        sources = cls()
        for job_id in job_ids:
            if not isinstance(job_id, str):
                raise ValueError(
                    f"job_ids contains {job_id!r} ({type(job_id).__name__}): every entry must be a job "
                    "id string (1 to 64 characters of letters, digits, '_' and '-') or a CDK token. "
                    "For a list of ids from a parameter write job_ids=[*ids] or job_ids=ids, not "
                    "job_ids=[ids]; write numbers as strings."
                )
            if Tokenization.reverse_list([job_id]) is not None:
                sources.lists.append(job_id)
                sources.order.append(("list", job_id))
                continue
            if not Token.is_unresolved(job_id) and not JOB_ID_PATTERN.fullmatch(job_id):
                raise ValueError(
                    f"job_ids contains {job_id!r} ({len(job_id)} characters): a job id is 1 to 64 "
                    "characters of letters, digits, '_' and '-'. Fix or remove that id."
                )
            sources.scalars.append(job_id)
            sources.order.append(("scalar", job_id))
        literals = [job_id for job_id in sources.scalars if not Token.is_unresolved(job_id)]
        duplicates = sorted({job_id for job_id in literals if literals.count(job_id) > 1})
        if duplicates:
            raise ValueError(
                f"job_ids names {', '.join(map(repr, duplicates))} more than once: each job may be "
                "listed once. Remove the duplicates."
            )
        return sources

    def property_value(self) -> object:
        """``JobIds`` as CloudFormation gets it: a list, whatever mix of sources made it.

        A list token is a list only as a whole, so with list tokens the ids are joined with
        commas (no job id contains one) and split again; an empty list parameter then gives
        empty strings, which the handler ignores.
        """
        if not self.lists:
            return list(self.scalars)
        if len(self.order) == 1:
            return [self.lists[0]]  # a list token is a one-element list
        parts = [value if kind == "scalar" else Fn.join(",", [value]) for kind, value in self.order]
        return Fn.split(",", Fn.join(",", parts))

    def arns(self, stack: Stack) -> list[str]:
        """The job ARNs: one per id known now or string token, one list token per list source."""
        arns = [job_arn(stack, job_id) for job_id in self.scalars]
        return arns + [job_arns_of_list(stack, list_token) for list_token in self.lists]


def job_arn(stack: Stack, job_id: str) -> str:
    return stack.format_arn(service="iot", resource="job", resource_name=job_id)


def job_arns_of_list(stack: Stack, list_token: str) -> str:
    """A list token of job ARNs, one per id of ``list_token`` (a list token of job ids).

    CloudFormation has no map: each id gets its ARN prefix as the delimiter of a Fn::Join,
    and a delimiter must be a literal. So the partition, region and account are the stack's
    own where they are known at synth time, else ``*``: the same job ids, in the role's own
    account (IoT jobs have no resource policies, so no role reaches another account's jobs).
    """

    def known(value: str) -> str:
        return "*" if Token.is_unresolved(value) else value

    prefix = f"arn:{known(stack.partition)}:iot:{known(stack.region)}:{known(stack.account)}:job/"
    return Fn.split(",", Fn.join("", [prefix, Fn.join("," + prefix, [list_token])]))[0]


def _job_pattern_arn(stack: Stack, prefix: str | None) -> str:
    """``job/<prefix>*``, or ``job/*`` without a prefix: the jobs a filter may reach."""
    return job_arn(stack, f"{prefix}*" if prefix is not None else "*")


def _thing_group_arn(stack: Stack, name: str) -> str:
    return stack.format_arn(service="iot", resource="thinggroup", resource_name=name)


@dataclass
class _Selection:
    """The filters for jobs created at runtime, checked with IoT's rules."""

    tags: list[tuple[str, str]] = field(default_factory=list)  # sorted by key
    thing_group_names: list[str] = field(default_factory=list)  # names, or tokens of them
    prefix: str | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.tags or self.thing_group_names or self.prefix is not None)

    @classmethod
    def parse(
        cls,
        tags: Mapping[str, str] | None,
        thing_groups: Sequence[iot.CfnThingGroup | str] | None,
        prefix: str | None,
    ) -> _Selection:
        return cls(
            tags=_parse_tags(tags) if tags is not None else [],
            thing_group_names=_parse_thing_groups(thing_groups) if thing_groups is not None else [],
            prefix=_parse_prefix(prefix),
        )


def _parse_tags(tags: Mapping[str, str]) -> list[tuple[str, str]]:
    if not isinstance(tags, Mapping):
        raise ValueError(
            f"tags is {tags!r}: it must be a mapping of tag keys to values, e.g. "
            "tags={'fleet': 'demo'}. Write it as a dict."
        )
    if not tags:
        raise ValueError(
            "tags is empty: it selects the jobs carrying every one of its tags, so it needs one "
            "at least. Give a tag, e.g. tags={'fleet': 'demo'}, or leave tags out."
        )
    if len(tags) > MAX_TAGS:
        raise ValueError(
            f"tags has {len(tags)} tags: an IoT job carries at most {MAX_TAGS}, so no job could "
            f"match. Select with {MAX_TAGS} tags or fewer."
        )
    for key, value in tags.items():
        if not isinstance(key, str) or Token.is_unresolved(key):
            raise ValueError(
                f"tags has the key {key!r}: a tag key must be a literal string, since it becomes the "
                "IAM condition key aws:ResourceTag/<key>, which CloudFormation cannot compute. "
                "Write the key itself; the value may be a token."
            )
        if not TAG_KEY_PATTERN.fullmatch(key):
            raise ValueError(
                f"tags has the key {key!r} ({len(key)} characters): a tag key is 1 to 128 letters, "
                "digits, spaces or _.:/=+-@. Fix or remove that key."
            )
        if key.lower().startswith("aws:"):
            raise ValueError(
                f"tags has the key {key!r}: keys starting with 'aws:' are reserved for AWS and "
                "cannot be set on a job. Use another key."
            )
        if not isinstance(value, str):
            raise ValueError(
                f"tags gives {key!r} the value {value!r} ({type(value).__name__}): a tag value is "
                "a string (or a string token). Write it as a string."
            )
        if not Token.is_unresolved(value) and not TAG_VALUE_PATTERN.fullmatch(value):
            raise ValueError(
                f"tags gives {key!r} the value {value!r} ({len(value)} characters): a tag value "
                "is 0 to 256 letters, digits, spaces or _.:/=+-@. Fix that value."
            )
    return sorted(tags.items())


def _parse_thing_groups(thing_groups: Sequence[iot.CfnThingGroup | str]) -> list[str]:
    if isinstance(thing_groups, (str, iot.CfnThingGroup)) or not isinstance(thing_groups, Sequence):
        raise ValueError(
            f"thing_groups is {thing_groups!r}: it must be a list of thing groups. Write "
            f"thing_groups=[{thing_groups!r}]."
        )
    if not thing_groups:
        raise ValueError(
            "thing_groups is empty: it selects the jobs targeting any of its groups, so it needs "
            "one at least. Name a group, or leave thing_groups out."
        )
    names: list[str] = []
    for group in thing_groups:
        if isinstance(group, iot.CfnThingGroup):
            literal = group.thing_group_name
            if literal is not None and not Token.is_unresolved(literal):
                _check_thing_group_name(literal)
            names.append(group.ref)  # the group's name; the cleanup then depends on the group
            continue
        if not isinstance(group, str):
            raise ValueError(
                f"thing_groups contains {group!r} ({type(group).__name__}): every entry must be "
                "an aws_iot.CfnThingGroup or a thing group name. Pass the group or its name."
            )
        if Tokenization.reverse_list([group]) is not None:
            raise ValueError(
                "thing_groups contains a list token (a list parameter's value_as_list, Fn.split): "
                "each entry must be one group. Pass each group's name (a string token is fine)."
            )
        if not Token.is_unresolved(group):
            _check_thing_group_name(group)
        names.append(group)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(
            f"thing_groups names {', '.join(map(repr, duplicates))} more than once: each group may "
            "be listed once. Remove the duplicates."
        )
    return names


def _check_thing_group_name(name: str) -> None:
    if not THING_GROUP_NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"thing_groups contains {name!r} ({len(name)} characters): a thing group name is 1 to "
            "128 characters of letters, digits, ':', '_' and '-'. Fix that name."
        )


def _parse_prefix(prefix: str | None) -> str | None:
    if prefix is None:
        return None
    if not isinstance(prefix, str):
        raise ValueError(
            f"job_id_prefix is {prefix!r} ({type(prefix).__name__}): it must be a string. "
            "Write it as a string, e.g. job_id_prefix='ota-'."
        )
    if not Token.is_unresolved(prefix) and not JOB_ID_PATTERN.fullmatch(prefix):
        raise ValueError(
            f"job_id_prefix is {prefix!r} ({len(prefix)} characters): a prefix is 1 to 64 "
            "characters of letters, digits, '_' and '-', as a job id is. Fix it, or leave it out."
        )
    return prefix


def _check_drain(drain: Duration | None, total_timeout: Duration) -> None:
    if drain is None:
        return
    seconds, total = _seconds(drain), _seconds(total_timeout)
    limit = total - _seconds(DELETION_RESERVE)
    if not 0 <= seconds <= limit:
        raise ValueError(
            f"drain is {seconds:g} s: drain time counts inside total_timeout ({total:g} s), whose "
            f"last 60 s are left for the deletions, so drain may be at most {limit:g} s. Shorten "
            f"drain to Duration.seconds({limit:g}) or less"
            + (
                f", or raise total_timeout to Duration.seconds({seconds + 60:g}) (at most 1 hour)."
                if seconds + 60 <= MAX_TOTAL_TIMEOUT.to_seconds()
                else " (total_timeout is at most 1 hour)."
            )
        )


def _check_namespace_id(namespace_id: str | None) -> None:
    if namespace_id is None or Token.is_unresolved(namespace_id):
        return
    if not NAMESPACE_ID_PATTERN.fullmatch(namespace_id):
        raise ValueError(
            f"namespace_id is {namespace_id!r}: it must be letters, digits, '_' and '-' only. "
            "Fix it, or leave it out for jobs created without a namespace."
        )


def _check_timing(query_interval: Duration, total_timeout: Duration) -> None:
    interval, total = _seconds(query_interval), _seconds(total_timeout)
    if total > MAX_TOTAL_TIMEOUT.to_seconds():
        raise ValueError(
            f"total_timeout is {total:g} s: it may be at most 3600 s (1 hour, the Provider's and "
            "CloudFormation's limit). Use Duration.hours(1) or less; a cleanup that needs longer "
            "resumes when you run cdk destroy again."
        )
    if total < MIN_TOTAL_TIMEOUT.to_seconds():
        raise ValueError(
            f"total_timeout is {total:g} s: it must be at least 60 s, time for one deletion to "
            "finish. Use Duration.minutes(1) or more."
        )
    if not 1 <= interval <= MAX_QUERY_INTERVAL.to_seconds():
        raise ValueError(
            f"query_interval is {interval:g} s: the handler checks IoT that often while deletions "
            "are under way, from every 1 s to every 300 s. Use e.g. Duration.seconds(2), or leave "
            "it out."
        )


def _check_removal_policy(removal_policy: RemovalPolicy) -> None:
    if removal_policy == RemovalPolicy.SNAPSHOT:
        raise ValueError(
            "removal_policy is SNAPSHOT: IoT jobs have no snapshot. Use DESTROY to delete the "
            "jobs with the stack, or RETAIN to leave them alone."
        )


# --------------------------------------------------------------------------- the shared provider


class _CleanupProvider(Construct):
    """The one set of provider resources of a stack, shared by every IotJobCleanup in it.

    Its construct path (``<Stack>/IotJobCleanupProvider``) and so its logical ids are a
    compatibility promise: every deployed cleanup's ServiceToken points at its
    ``framework-onEvent`` function, and CloudFormation refuses to change a ServiceToken.
    Nothing a cleanup's options say may change them; per-resource timing travels in the
    resource's properties.
    """

    @classmethod
    def of(cls, stack: Stack) -> _CleanupProvider:
        existing = stack.node.try_find_child(PROVIDER_ID)
        if isinstance(existing, _CleanupProvider):
            return existing
        return cls(stack, PROVIDER_ID)

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        query_interval, total_timeout = WAITER_INTERVAL, WAITER_TIMEOUT
        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(
            self,
            "HandlerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Deletes the IoT jobs named by IotJobCleanup resources in this stack.",
        )
        log_group.grant_write(self.role)
        # ListJobs has no resource-level permissions. The handler lists the jobs in
        # DELETION_IN_PROGRESS to learn how many of the 10 shared slots are free.
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=["iot:ListJobs"], resources=["*"]))
        # A Delete deletes jobs only at stack teardown: the handler asks for this stack's status.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[Aws.STACK_ID])
        )
        # The Provider framework's own functions get roles that write only to our logs (two
        # roles: one shared by all three would make a dependency cycle through the waiter).
        framework_roles = [
            iam.Role(
                self,
                f"Framework{name}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"Runs the Provider framework's {name} for IotJobCleanup.",
            )
            for name in ("OnEvent", "IsCompleteAndTimeout")
        ]
        for framework_role in framework_roles:
            log_group.grant_write(framework_role)

        code = lambda_.Code.from_asset(str(handler_directory()), exclude=["__pycache__", "*.pyc"])
        environment = {
            "QUERY_INTERVAL_SECONDS": str(int(query_interval.to_seconds())),
            "TOTAL_TIMEOUT_SECONDS": str(int(total_timeout.to_seconds())),
            "POLL_INTERVAL_SECONDS": str(int(DEFAULT_QUERY_INTERVAL.to_seconds())),
            "POLL_WINDOW_SECONDS": str(int(POLL_WINDOW.to_seconds())),
            # The Provider's "Logs:" line names its own function; failures name this instead.
            "LOG_GROUP_NAME": log_group.log_group_name,
        }

        def handler(name: str, entry_point: str, timeout: Duration) -> lambda_.Function:
            return lambda_.Function(
                self,
                name,
                runtime=lambda_.Runtime.PYTHON_3_14,
                architecture=lambda_.Architecture.ARM_64,
                code=code,
                handler=f"{HANDLER_MODULE}.{entry_point}",
                role=self.role,
                timeout=timeout,
                memory_size=256,
                environment=environment,
                logging_format=lambda_.LoggingFormat.JSON,
                log_group=log_group,
                description=f"IotJobCleanup {entry_point}: deletes IoT jobs at stack teardown.",
            )

        on_event = handler("OnEvent", "on_event", Duration.minutes(2))
        # One invocation polls for up to POLL_WINDOW, or up to the give-up time when that
        # falls within the next query interval.
        is_complete = handler(
            "IsComplete", "is_complete", POLL_WINDOW.plus(query_interval).plus(Duration.seconds(60))
        )
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=on_event,
            is_complete_handler=is_complete,
            query_interval=query_interval,
            total_timeout=total_timeout,
            log_group=log_group,
            framework_on_event_role=framework_roles[0],
            framework_complete_and_timeout_role=framework_roles[1],
            # Execution data would log CloudFormation's presigned response URL.
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
        )
        self.service_token = self.provider.service_token
        self._job_policy: iam.ManagedPolicy | None = None
        self._job_statements: dict[tuple[str, ...], iam.PolicyStatement] = {}  # of the policy being filled
        self._job_policies = 0
        self._job_policy_size = 0
        self._acknowledge_framework_findings(on_event, is_complete)

    def grant_delete(
        self, sources: _JobIdSources, stack: Stack, actions: Sequence[str] = JOB_ACTIONS
    ) -> None:
        """``actions`` (iot:DeleteJob and iot:DescribeJob, with drain also iot:CancelJob and
        iot:ListJobExecutionsForJob) on exactly these jobs' ARNs.

        They go into managed policies of the handler role, each filled up to IAM's size
        limit: CDK's own overflow splitting cannot split one statement's resources and
        counts every token ARN as 150 characters, which for hundreds of jobs needs more
        managed policies than a role may hold. A policy holds one statement per set of
        actions. A list token's size is known only at deploy time: it gets a managed policy
        of its own.
        """
        actions = tuple(actions)
        for job_id in sources.scalars:
            size = ARN_SCAFFOLD_SIZE + (TOKEN_JOB_ID_SIZE if Token.is_unresolved(job_id) else len(job_id))
            statement = self._job_statements.get(actions)
            # The budget's reserve covers a policy's first statement; another set of actions
            # in the same policy costs its own Action list and braces.
            cost = size + (_statement_overhead(actions) if statement is None and self._job_statements else 0)
            if self._job_policy is None or self._job_policy_size + cost > MANAGED_POLICY_BUDGET:
                self._new_job_policy()
                statement, cost = None, size
            if statement is None:
                statement = iam.PolicyStatement(actions=list(actions))
                self._job_policy.add_statements(statement)
                self._job_statements[actions] = statement
            statement.add_resources(job_arn(stack, job_id))
            self._job_policy_size += cost
        for list_token in sources.lists:
            self._new_job_policy()
            self._job_policy.add_statements(
                iam.PolicyStatement(actions=list(actions), resources=[job_arns_of_list(stack, list_token)])
            )
            self._job_policy = None  # full, as far as anyone can tell at synth time

    def _new_job_policy(self) -> None:
        self._job_policies += 1
        self._job_policy = iam.ManagedPolicy(
            self.role,
            f"JobPolicy{self._job_policies}",
            description="Lets IotJobCleanup delete exactly the jobs its resources name.",
            roles=[self.role],
        )
        self._job_statements = {}
        self._job_policy_size = 0

    def _acknowledge_framework_findings(
        self, on_event: lambda_.Function, is_complete: lambda_.Function
    ) -> None:
        """cdk-nag (AwsSolutions) findings that the Provider framework's design requires."""
        stack = Stack.of(self)

        def arn_versions(function: lambda_.IFunction) -> str:
            logical_id = stack.resolve(stack.get_logical_id(function.node.default_child))
            return f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]"

        invoke_reason = (
            "lambda:InvokeFunction on the function and its versions (ARN:*), as the Provider "
            "framework grants it; scoped to this construct's own functions."
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="iot:ListJobs has no resource-level permissions; it is read-only and tells the "
                "handler how many of the 10 account-wide deletion slots are free.",
            )
        )
        Validations.of(self.provider.node.find_child("waiter-state-machine")).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason="CloudWatch Logs log-delivery actions (CreateLogDelivery and the like) have no "
                "resource-level permissions; the Provider grants them so the waiter can log.",
            )
        )
        Validations.of(self).acknowledge(
            *[Acknowledgment(id=arn_versions(fn), reason=invoke_reason) for fn in (on_event, is_complete)],
            *[
                Acknowledgment(id=arn_versions(self.provider.node.find_child(name)), reason=invoke_reason)
                for name in ("framework-isComplete", "framework-onTimeout")
            ],
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-SF2",
                reason="The Provider's waiter state machine offers no X-Ray option; it only retries "
                "is_complete, and its events and the handlers' JSON logs go to CloudWatch Logs.",
            ),
        )


# --------------------------------------------------------------------------- a filtered cleanup's IAM


def _statement_overhead(actions: Sequence[str]) -> int:
    """A statement's size without its resources, as IAM counts it, and the comma before it."""
    return (
        len(json.dumps({"Action": list(actions), "Effect": "Allow", "Resource": []}, separators=(",", ":")))
        + 1
    )


class _SelectionPolicy(iam.ManagedPolicy):
    """A filtered cleanup's own permissions on the handler role: the jobs its filters reach.

    With tags the job actions are conditioned on ``aws:ResourceTag`` for every tag, so even
    a bug in the handler cannot delete a job without them; with a prefix they are limited
    to ``job/<prefix>*``; thing groups alone have no condition key and get ``job/*``. The
    discovery reads: ``iot:ListTagsForResource`` on the same jobs, and with tags
    ``tag:GetResources`` (no resource-level permissions: ``*``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        selection: _Selection,
        actions: Sequence[str],
        role: iam.IRole,
    ) -> None:
        stack = Stack.of(scope)
        pattern = _job_pattern_arn(stack, selection.prefix)
        conditions = (
            {"StringEquals": {f"aws:ResourceTag/{key}": value for key, value in selection.tags}}
            if selection.tags
            else None
        )
        statements = [
            iam.PolicyStatement(actions=list(actions), resources=[pattern], conditions=conditions),
            iam.PolicyStatement(actions=["iot:ListTagsForResource"], resources=[pattern]),
        ]
        if selection.tags:
            statements.append(iam.PolicyStatement(actions=["tag:GetResources"], resources=["*"]))
        super().__init__(
            scope,
            construct_id,
            description="Lets IotJobCleanup delete only the jobs its filters select.",
            statements=statements,
            roles=[role],
        )
        self._acknowledge_findings(stack, selection, actions, pattern)

    def _acknowledge_findings(
        self, stack: Stack, selection: _Selection, actions: Sequence[str], pattern: str
    ) -> None:
        """cdk-nag's AwsSolutions-IAM5 (wildcard resources), with the reason for each."""
        cleanup = self.node.scope.node.path
        what = ", ".join(action.removeprefix("iot:") for action in actions)
        prefix = (
            None
            if selection.prefix is None
            else "a prefix given at deploy time"
            if Token.is_unresolved(selection.prefix)
            else repr(selection.prefix)
        )
        if selection.tags:
            keys = ", ".join(key for key, _ in selection.tags)
            reason = (
                f"IotJobCleanup {cleanup} selects jobs created at runtime by their tags ({keys}): "
                f"{what} on {'job ids starting with ' + prefix if prefix else 'job/*'} are conditioned "
                "on aws:ResourceTag for every one of those tags, so only jobs carrying them can be "
                "touched; ListTagsForResource is read-only and finds them."
            )
        elif prefix is not None:
            reason = (
                f"IotJobCleanup {cleanup} selects the jobs whose id starts with {prefix}: {what} and the "
                "read-only ListTagsForResource are limited to those job ids, the jobs it owns."
            )
        else:
            reason = (
                f"IotJobCleanup {cleanup} selects jobs by the thing groups they target, and IAM has no "
                f"condition key for a job's targets, so {what} and ListTagsForResource are on job/*: "
                "the handler deletes only the jobs it finds targeting those groups, only at stack "
                "teardown. Add tags or job_id_prefix to narrow the permission."
            )
        acknowledgments = [Acknowledgment(id=_nag_wildcard_resource_id(stack, pattern), reason=reason)]
        if selection.tags:
            acknowledgments.append(
                Acknowledgment(
                    id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                    reason=f"tag:GetResources has no resource-level permissions; it is read-only and "
                    f"lets IotJobCleanup {cleanup} find the jobs carrying its tags.",
                )
            )
        Validations.of(self).acknowledge(*acknowledgments)


def _nag_wildcard_resource_id(stack: Stack, arn: str) -> str:
    """cdk-nag's id of an AwsSolutions-IAM5 finding on ``arn``: intrinsics as ``<Ref>``."""

    def render(value: object) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            if "Ref" in value:
                return f"<{value['Ref']}>"
            if "Fn::GetAtt" in value:
                return f"<{'.'.join(value['Fn::GetAtt'])}>"
            if "Fn::Join" in value:
                delimiter, parts = value["Fn::Join"]
                return delimiter.join(render(part) for part in parts)
        return json.dumps(value, separators=(",", ":"))

    return f"AwsSolutions::AwsSolutions-IAM5[Resource::{render(stack.resolve(arn))}]"


def _check_selection_policy_size(selection: _Selection, actions: Sequence[str]) -> None:
    """The policy, resolved for the longest partition, region and account (tokens at their
    longest), must fit IAM's 6,144 characters for a managed policy."""
    prefix = (
        "x" * TOKEN_JOB_ID_SIZE
        if selection.prefix and Token.is_unresolved(selection.prefix)
        else selection.prefix
    )
    pattern = f"arn:aws-us-gov:iot:{'x' * 14}:{'1' * 12}:job/{prefix or ''}*"
    tags = {
        f"aws:ResourceTag/{key}": "x" * TOKEN_TAG_VALUE_SIZE if Token.is_unresolved(value) else value
        for key, value in selection.tags
    }
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Action": list(actions),
                "Condition": {"StringEquals": tags},
                "Effect": "Allow",
                "Resource": pattern,
            },
            {"Action": "iot:ListTagsForResource", "Effect": "Allow", "Resource": pattern},
            {"Action": "tag:GetResources", "Effect": "Allow", "Resource": "*"},
        ],
    }
    size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
    if size > 6144:
        raise ValueError(
            f"tags {', '.join(key for key, _ in selection.tags)}: the IAM policy that limits the "
            f"handler to jobs carrying them would be {size} characters, more than the 6,144 of an IAM "
            "managed policy. Select with fewer or shorter tags (a value given as a token counts as "
            f"{TOKEN_TAG_VALUE_SIZE} characters)."
        )
