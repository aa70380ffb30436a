"""The IotJobCleanup construct: a custom resource that deletes IoT jobs at stack teardown."""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jsii
from aws_cdk import (
    Acknowledgment,
    AspectPriority,
    Aspects,
    Aws,
    CustomResource,
    DefaultTokenResolver,
    Duration,
    Fn,
    IAspect,
    IPostProcessor,
    IResolvable,
    IResolveContext,
    RemovalPolicy,
    Stack,
    StringConcat,
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

from constructs import Construct, IConstruct

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
MANAGED_POLICY_SIZE = 6144
MANAGED_POLICY_BUDGET = MANAGED_POLICY_SIZE - 200  # the rest: Version, Effect, Action
POLICY_DOCUMENT_SIZE = len('{"Version":"2012-10-17","Statement":[]}')
# IAM's default quota of managed policies per role (20 at most, by a quota increase).
MAX_MANAGED_POLICIES = 10
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
        :param force: ``True`` or ``False`` only: also delete jobs that are not COMPLETED
            or CANCELED (IN_PROGRESS, SCHEDULED); devices with an execution in progress may
            be left mid-update.
        :param drain: cancel running jobs first, then wait up to this long for their
            devices to finish before deleting them (with ``force``, deleted after that time
            anyway; without, the cleanup fails naming the busy devices). The drain time
            counts inside ``total_timeout`` and must leave its last 60 s for the deletions.
        :param namespace_id: the customer-managed job namespace the jobs were created in.
        :param query_interval: how often the handler checks IoT while deletions are under
            way (1 s to 5 min, at most ``total_timeout``; default 2 s).
        :param total_timeout: how long the cleanup may take (1 min to 1 hour, whole
            seconds; default 1 hour); also the resource's ServiceTimeout.
        :param removal_policy: ``RETAIN`` leaves the jobs alone when the stack is destroyed.
        :raises ValueError: a setting breaks a rule (of its type or range; ids and names made
            with ``Fn.join`` of literals are judged as the literal), or the stack's cleanups
            would need more than 10 managed policies on their shared handler role; the message
            names the construct, the value, the rule and the fix.
        """
        path = f"{scope.node.path}/{construct_id}" if scope.node.path else construct_id
        stack = Stack.of(scope)
        try:
            settings = _Settings.check(
                stack,
                job_ids=job_ids,
                tags=tags,
                thing_groups=thing_groups,
                job_id_prefix=job_id_prefix,
                force=force,
                drain=drain,
                namespace_id=namespace_id,
                query_interval=query_interval,
                total_timeout=total_timeout,
                removal_policy=removal_policy,
            )
            permissions = _Permissions.of(path, settings)
            _CleanupProvider.check_room(stack, permissions)
        except _SettingError as refusal:
            # Before the construct joins the tree: the same id can be used again with the fix.
            raise ValueError(f"IotJobCleanup {path}: {refusal}") from None
        super().__init__(scope, construct_id)
        sources, selection = settings.sources, settings.selection

        provider = _CleanupProvider.of(stack)
        self.job_ids: list[str] = list(job_ids) if job_ids is not None else []
        self.job_arns: list[str] = sources.arns(stack) if sources is not None else []
        self.tags: dict[str, str] = dict(selection.tags)
        self.thing_group_names: list[str] = list(selection.thing_group_names)
        self.job_id_prefix: str | None = selection.prefix

        properties: dict[str, object] = {}
        if sources is not None:
            properties["JobIds"] = sources.property_value()
        if selection.tags:
            properties["JobTags"] = [{"Key": key, "Value": value} for key, value in selection.tags]
        if selection.thing_group_names:
            properties["ThingGroupNames"] = list(selection.thing_group_names)
        if selection.prefix is not None:
            properties["JobIdPrefix"] = selection.prefix
        properties["Force"] = "true" if settings.force else "false"
        if settings.drain is not None:
            properties["DrainSeconds"] = _seconds_text(settings.drain)
        properties["QueryIntervalSeconds"] = _seconds_text(settings.query_interval)
        properties["TotalTimeoutSeconds"] = _seconds_text(settings.total_timeout)
        if settings.namespace_id:
            properties["NamespaceId"] = settings.namespace_id
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties=properties,
            removal_policy=settings.removal_policy,
            service_timeout=settings.total_timeout,
        )
        # On destroy, CloudFormation must not remove the permission before the Delete ran:
        # the role's construct holds its default policy and the job policies (a filtered
        # cleanup's own SelectionPolicy gets its dependency when it is laid out).
        self.resource.node.add_dependency(provider.role)
        provider.add(self, permissions)

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

        ``iot:TagResource`` cannot be limited to creation: the grantee may also put the
        cleanup's tags on an existing job the ARN pattern covers, which makes that job the
        cleanup's. So the cleanup needs a ``job_id_prefix``: the grant covers only
        ``job/<prefix>*``, ids the cleanup owns; on ``job/*`` the grantee could bring any
        job of the account under the cleanup, which would cancel and delete it at teardown.

        :param grantee: the principal that creates the jobs, e.g. a Lambda function.
        :returns: the grant, over both statements.
        :raises ValueError: the cleanup has no ``tags`` (the grant is only safe when every
            job created carries the tags that make it this cleanup's) or no
            ``job_id_prefix`` (the grantee could tag any job of the account).
        """
        if not self.tags:
            raise ValueError(
                f"grant_create_jobs on {self.node.path}, a cleanup without tags: what it grants "
                "(CreateJob on any job id and target) is only safe when every job created carries "
                "the tags this cleanup selects, so that the cleanup deletes it at teardown. Pass "
                "tags={...} to IotJobCleanup (and tag the jobs you create with them)."
            )
        if self.job_id_prefix is None:
            raise ValueError(
                f"grant_create_jobs on {self.node.path}, a cleanup without job_id_prefix: it would "
                "grant iot:TagResource on job/*, and iot:TagResource cannot be limited to creation, so "
                "the grantee could put this cleanup's tags on any job in the account, which the "
                "cleanup then cancels and deletes at teardown. Give the cleanup a job_id_prefix (e.g. "
                "job_id_prefix='ota-') and create the jobs under it: the grant then covers "
                "job/<prefix>* only, ids that are the cleanup's own."
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


class _SettingError(ValueError):
    """A setting breaks a rule; the constructor adds the construct's path to the message."""


def _seconds(duration: Duration) -> float:
    return duration.to_milliseconds() / 1000  # to_seconds() refuses fractions


def _seconds_text(duration: Duration) -> str:
    return f"{_seconds(duration):g}"


def _kind(value: object) -> str:
    """``value`` and its type, as a message names them: ``600 (int)``."""
    return f"{value!r} ({type(value).__name__})"


# Fn.join returns a token even over literals (Fn.select and Fn.split of literals give the
# literal itself); such a token shows as ${Token[Fn::Join.<n>]}.
_JOIN_TOKEN = re.compile(r"\$\{Token\[Fn::Join\.\d+\]\}")
_OPAQUE = "\x00unresolved\x00"  # what any other token resolves to while judging a join


class _JoinsOfLiterals(DefaultTokenResolver):
    """Resolves Fn::Join tokens only: any other token (a Lazy, a Ref, a parameter) becomes
    ``_OPAQUE`` unproduced, since a Lazy's producer may depend on constructs added later."""

    def __init__(self) -> None:
        super().__init__(StringConcat())

    def resolve_token(
        self, t: IResolvable, context: IResolveContext, post_processor: IPostProcessor
    ) -> object:
        if _JOIN_TOKEN.fullmatch(t.to_string()):
            return super().resolve_token(t, context, post_processor)
        return _OPAQUE


@dataclass(frozen=True)
class _Literals:
    """Judges ids as what they are: a string made of Fn.join over literals (``Fn.join("-",
    ["ota", "1"])``) is the literal it resolves to; any other token stays a token."""

    stack: Stack

    def __call__(self, value: str) -> str:
        if not isinstance(value, str) or not Token.is_unresolved(value):
            return value
        fragments = Tokenization.reverse_string(value)
        if not all(_JOIN_TOKEN.fullmatch(token.to_string()) for token in fragments.tokens):
            return value
        resolved = Tokenization.resolve(value, scope=self.stack, resolver=_JoinsOfLiterals())
        return resolved if isinstance(resolved, str) and _OPAQUE not in resolved else value


@dataclass(frozen=True)
class _Settings:
    """A cleanup's options, each checked for its type and range."""

    sources: _JobIdSources | None
    selection: _Selection
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
    ) -> _Settings:
        literal = _Literals(stack)
        sources = _JobIdSources.parse(job_ids, literal) if job_ids is not None else None
        selection = _Selection.parse(tags, thing_groups, job_id_prefix, literal)
        if sources is not None and not sources.order and not selection.filtered:
            raise _SettingError(
                "job_ids is empty: name at least one job, select jobs with tags, thing_groups or "
                "job_id_prefix, or leave IotJobCleanup out."
            )
        if sources is None and not selection.filtered:
            raise _SettingError(
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
        total = (
            MAX_TOTAL_TIMEOUT if total_timeout is None else _check_duration("total_timeout", total_timeout)
        )
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
            _check_selection_policy_size(selection, settings.actions)
        return settings


@dataclass
class _JobIdSources:
    """``job_ids`` sorted by kind: ids known now, and string and list tokens resolved at deploy."""

    scalars: list[str] = field(default_factory=list)  # literals and string tokens, in order
    lists: list[str] = field(default_factory=list)  # list tokens, each encoded as one string
    order: list[tuple[str, str]] = field(default_factory=list)  # ("scalar" | "list", value)

    @classmethod
    def parse(cls, job_ids: object, literal: _Literals) -> _JobIdSources:
        if isinstance(job_ids, str):
            raise _SettingError(
                f"job_ids is {job_ids!r}: it must be a list of job ids. Write job_ids=[{job_ids!r}]."
            )
        if not isinstance(job_ids, Sequence):
            raise _SettingError(
                f"job_ids is {_kind(job_ids)}: it must be a list of job id strings, e.g. "
                "job_ids=['ota-1'], or string and list tokens."
            )
        sources = cls()
        for job_id in job_ids:
            if not isinstance(job_id, str):
                raise _SettingError(
                    f"job_ids contains {_kind(job_id)}: every entry must be a job "
                    "id string (1 to 64 characters of letters, digits, '_' and '-') or a CDK token. "
                    "For a list of ids from a parameter write job_ids=[*ids] or job_ids=ids, not "
                    "job_ids=[ids]; write numbers as strings."
                )
            if Tokenization.reverse_list([job_id]) is not None:
                sources.lists.append(job_id)
                sources.order.append(("list", job_id))
                continue
            job_id = literal(job_id)
            if not Token.is_unresolved(job_id) and not JOB_ID_PATTERN.fullmatch(job_id):
                raise _SettingError(
                    f"job_ids contains {job_id!r} ({len(job_id)} characters): a job id is 1 to 64 "
                    "characters of letters, digits, '_' and '-'. Fix or remove that id."
                )
            sources.scalars.append(job_id)
            sources.order.append(("scalar", job_id))
        literals = [job_id for job_id in sources.scalars if not Token.is_unresolved(job_id)]
        duplicates = sorted({job_id for job_id in literals if literals.count(job_id) > 1})
        if duplicates:
            raise _SettingError(
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
    def parse(cls, tags: object, thing_groups: object, prefix: object, literal: _Literals) -> _Selection:
        return cls(
            tags=_parse_tags(tags, literal) if tags is not None else [],
            thing_group_names=_parse_thing_groups(thing_groups, literal) if thing_groups is not None else [],
            prefix=_parse_prefix(prefix, literal),
        )


def _parse_tags(tags: object, literal: _Literals) -> list[tuple[str, str]]:
    if not isinstance(tags, Mapping):
        raise _SettingError(
            f"tags is {_kind(tags)}: it must be a mapping of tag keys to values, each key once (a "
            "list of pairs could give a key twice, and a job carries each key once, so no job "
            "could match). Write it as a dict, e.g. tags={'fleet': 'demo'}."
        )
    if not tags:
        raise _SettingError(
            "tags is empty: it selects the jobs carrying every one of its tags, so it needs one "
            "at least. Give a tag, e.g. tags={'fleet': 'demo'}, or leave tags out."
        )
    if len(tags) > MAX_TAGS:
        raise _SettingError(
            f"tags has {len(tags)} tags: an IoT job carries at most {MAX_TAGS}, so no job could "
            f"match. Select with {MAX_TAGS} tags or fewer."
        )
    judged: dict[str, str] = {}
    for given_key, given_value in tags.items():
        key = literal(given_key) if isinstance(given_key, str) else given_key
        if not isinstance(key, str) or Token.is_unresolved(key):
            raise _SettingError(
                f"tags has the key {key!r}: a tag key must be a literal string, since it becomes the "
                "IAM condition key aws:ResourceTag/<key>, which CloudFormation cannot compute. "
                "Write the key itself; the value may be a token."
            )
        if not TAG_KEY_PATTERN.fullmatch(key):
            raise _SettingError(
                f"tags has the key {key!r} ({len(key)} characters): a tag key is 1 to 128 letters, "
                "digits, spaces or _.:/=+-@. Fix or remove that key."
            )
        if key.lower().startswith("aws:"):
            raise _SettingError(
                f"tags has the key {key!r}: keys starting with 'aws:' are reserved for AWS and "
                "cannot be set on a job. Use another key."
            )
        if key in judged:
            raise _SettingError(
                f"tags names the key {key!r} more than once (a Fn.join of literals counts as the "
                "literal it resolves to): a job carries each key once, so no job could match. Keep "
                "one of them."
            )
        if not isinstance(given_value, str):
            raise _SettingError(
                f"tags gives {key!r} the value {_kind(given_value)}: a tag value is "
                "a string (or a string token). Write it as a string."
            )
        value = literal(given_value)
        if not Token.is_unresolved(value) and not TAG_VALUE_PATTERN.fullmatch(value):
            raise _SettingError(
                f"tags gives {key!r} the value {value!r} ({len(value)} characters): a tag value "
                "is 0 to 256 letters, digits, spaces or _.:/=+-@. Fix that value."
            )
        judged[key] = value
    return sorted(judged.items())


def _parse_thing_groups(thing_groups: object, literal: _Literals) -> list[str]:
    if isinstance(thing_groups, (str, iot.CfnThingGroup)):
        raise _SettingError(
            f"thing_groups is {thing_groups!r}: it must be a list of thing groups. Write "
            f"thing_groups=[{thing_groups!r}]."
        )
    if not isinstance(thing_groups, Sequence):
        raise _SettingError(
            f"thing_groups is {_kind(thing_groups)}: it must be a list of thing groups, each an "
            "aws_iot.CfnThingGroup or a group name, e.g. thing_groups=['demo-fleet']."
        )
    if not thing_groups:
        raise _SettingError(
            "thing_groups is empty: it selects the jobs targeting any of its groups, so it needs "
            "one at least. Name a group, or leave thing_groups out."
        )
    names: list[str] = []
    for group in thing_groups:
        if isinstance(group, iot.CfnThingGroup):
            name = group.thing_group_name
            if name is not None:
                name = literal(name)
                if not Token.is_unresolved(name):
                    _check_thing_group_name(name)
            names.append(group.ref)  # the group's name; the cleanup then depends on the group
            continue
        if not isinstance(group, str):
            raise _SettingError(
                f"thing_groups contains {_kind(group)}: every entry must be "
                "an aws_iot.CfnThingGroup or a thing group name. Pass the group or its name."
            )
        if Tokenization.reverse_list([group]) is not None:
            raise _SettingError(
                "thing_groups contains a list token (a list parameter's value_as_list, Fn.split): "
                "each entry must be one group. Pass each group's name (a string token is fine)."
            )
        group = literal(group)
        if not Token.is_unresolved(group):
            _check_thing_group_name(group)
        names.append(group)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise _SettingError(
            f"thing_groups names {', '.join(map(repr, duplicates))} more than once: each group may "
            "be listed once. Remove the duplicates."
        )
    return names


def _check_thing_group_name(name: str) -> None:
    if not THING_GROUP_NAME_PATTERN.fullmatch(name):
        raise _SettingError(
            f"thing_groups contains {name!r} ({len(name)} characters): a thing group name is 1 to "
            "128 characters of letters, digits, ':', '_' and '-'. Fix that name."
        )


def _parse_prefix(prefix: object, literal: _Literals) -> str | None:
    if prefix is None:
        return None
    if not isinstance(prefix, str):
        raise _SettingError(
            f"job_id_prefix is {_kind(prefix)}: it must be a string. "
            "Write it as a string, e.g. job_id_prefix='ota-'."
        )
    prefix = literal(prefix)
    if prefix == "":
        raise _SettingError(
            "job_id_prefix is '' (0 characters): a prefix is 1 to 64 characters of letters, digits, "
            "'_' and '-', as a job id is; an empty one would select every job the other filters "
            "reach. Give a prefix, or leave it out."
        )
    if not Token.is_unresolved(prefix) and not JOB_ID_PATTERN.fullmatch(prefix):
        raise _SettingError(
            f"job_id_prefix is {prefix!r} ({len(prefix)} characters): a prefix is 1 to 64 "
            "characters of letters, digits, '_' and '-', as a job id is. Fix it, or leave it out."
        )
    return prefix


def _check_force(force: object) -> bool:
    if not isinstance(force, bool):
        raise _SettingError(
            f"force is {_kind(force)}: it must be True or False. Any other value would be taken "
            "for its truth, and the string 'false' (what `cdk synth -c forceJobDeletion=false` "
            "gives) is true: running jobs would be force-deleted under devices mid-update. From a "
            'context value write force=app.node.try_get_context("forceJobDeletion") in (True, "true").'
        )
    return force


def _check_duration(name: str, value: object) -> Duration:
    if not isinstance(value, Duration):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        example = f"Duration.seconds({value:g})" if number else "Duration.seconds(...)"
        raise _SettingError(f"{name} is {_kind(value)}: it must be a Duration. Write {name}={example}.")
    if value.is_unresolved():
        raise _SettingError(
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
        raise _SettingError(
            f"drain is {seconds:g} s: drain time counts inside total_timeout ({total:g} s), whose "
            f"last 60 s are left for the deletions, so drain may be at most {limit:g} s. Shorten "
            f"drain to Duration.seconds({limit:g}) or less"
            + (
                f", or raise total_timeout to Duration.seconds({seconds + 60:g}) (at most 1 hour)."
                if seconds + 60 <= MAX_TOTAL_TIMEOUT.to_seconds()
                else " (total_timeout is at most 1 hour)."
            )
        )


def _check_namespace_id(namespace_id: object, literal: _Literals) -> str | None:
    if namespace_id is None:
        return None
    if not isinstance(namespace_id, str):
        raise _SettingError(
            f"namespace_id is {_kind(namespace_id)}: it must be a string of letters, digits, '_' "
            "and '-'. Write it as a string, or leave it out for jobs created without a namespace."
        )
    namespace_id = literal(namespace_id)
    if not Token.is_unresolved(namespace_id) and not NAMESPACE_ID_PATTERN.fullmatch(namespace_id):
        raise _SettingError(
            f"namespace_id is {namespace_id!r}: it must be letters, digits, '_' and '-' only. "
            "Fix it, or leave it out for jobs created without a namespace."
        )
    return namespace_id


def _check_timing(query_interval: Duration, total_timeout: Duration) -> None:
    interval, total = _seconds(query_interval), _seconds(total_timeout)
    if total > MAX_TOTAL_TIMEOUT.to_seconds():
        raise _SettingError(
            f"total_timeout is {total:g} s: it may be at most 3600 s (1 hour, the Provider's and "
            "CloudFormation's limit). Use Duration.hours(1) or less; a cleanup that needs longer "
            "resumes when you run cdk destroy again."
        )
    if total < MIN_TOTAL_TIMEOUT.to_seconds():
        raise _SettingError(
            f"total_timeout is {total:g} s: it must be at least 60 s, time for one deletion to "
            "finish. Use Duration.minutes(1) or more."
        )
    if total != int(total):
        raise _SettingError(
            f"total_timeout is {total:g} s: it must be a whole number of seconds, since it is also "
            "the resource's ServiceTimeout, which CloudFormation takes in whole seconds. Use "
            f"Duration.seconds({math.floor(total)}) or Duration.seconds({math.ceil(total)})."
        )
    if not 1 <= interval <= MAX_QUERY_INTERVAL.to_seconds():
        raise _SettingError(
            f"query_interval is {interval:g} s: the handler checks IoT that often while deletions "
            "are under way, from every 1 s to every 300 s. Use e.g. Duration.seconds(2), or leave "
            "it out."
        )
    if interval > total:
        raise _SettingError(
            f"query_interval is {interval:g} s, longer than total_timeout ({total:g} s): the handler "
            "would not look at IoT again before the cleanup gives up. Shorten query_interval to "
            f"Duration.seconds({total:g}) or less (the default is 2 s), or raise total_timeout."
        )


def _check_removal_policy(removal_policy: object) -> RemovalPolicy:
    if not isinstance(removal_policy, RemovalPolicy):
        raise _SettingError(
            f"removal_policy is {_kind(removal_policy)}: it must be a RemovalPolicy: "
            "RemovalPolicy.DESTROY (the default: the jobs are deleted with the stack) or "
            "RemovalPolicy.RETAIN (they are left alone)."
        )
    if removal_policy == RemovalPolicy.SNAPSHOT:
        raise _SettingError(
            "removal_policy is SNAPSHOT: IoT jobs have no snapshot. Use DESTROY to delete the "
            "jobs with the stack, or RETAIN to leave them alone."
        )
    return removal_policy


# --------------------------------------------------------------------------- the shared provider


class _CleanupProvider(Construct):
    """The one set of provider resources of a stack, shared by every IotJobCleanup in it.

    Its construct path (``<Stack>/IotJobCleanupProvider``) and so its logical ids are a
    compatibility promise: every deployed cleanup's ServiceToken points at its
    ``framework-onEvent`` function, and CloudFormation refuses to change a ServiceToken.
    Nothing a cleanup's options say may change them; per-resource timing travels in the
    resource's properties.

    The cleanups' permissions on jobs are laid out as the handler role's managed policies
    once every cleanup of the stack is known, when the stack is synthesized (an aspect at
    the stack, so that other aspects see the policies too). See ``_layout``.
    """

    @classmethod
    def of(cls, stack: Stack) -> _CleanupProvider:
        existing = stack.node.try_find_child(PROVIDER_ID)
        if isinstance(existing, _CleanupProvider):
            return existing
        return cls(stack, PROVIDER_ID)

    @classmethod
    def check_room(cls, stack: Stack, permissions: _Permissions) -> None:
        """Refuses a cleanup whose permissions, with those of the stack's other cleanups,
        cannot fit the role's managed policies even packed by size."""
        existing = stack.node.try_find_child(PROVIDER_ID)
        provider = existing if isinstance(existing, _CleanupProvider) else None
        if provider is not None and provider._laid_out:
            raise _SettingError(
                "added after the stack was synthesized: the handler role's policies were laid out "
                "then, for the cleanups there were. Add every IotJobCleanup before synthesizing "
                "(app.synth(), Template.from_stack)."
            )
        everyone = [*(provider._permissions if provider is not None else []), permissions]
        _, policies = _layout(everyone)
        if len(policies) > MAX_MANAGED_POLICIES:
            raise _SettingError(_too_many_policies(everyone, len(policies)))

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
        # A Delete deletes jobs only at stack teardown: the handler asks for this stack's status
        # and, in a nested stack, for its root stack's (the RootId DescribeStacks gives): a
        # nested stack is deleted too when its parent's update removes it. Inside a nested
        # stack AWS::StackId is the nested stack's own; CDK hands the root's id down as a
        # parameter.
        stacks = [Aws.STACK_ID]
        stack = Stack.of(self)
        if stack.nested:
            root = stack
            while root.nested_stack_parent is not None:
                root = root.nested_stack_parent
            stacks.append(root.stack_id)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=stacks)
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
        self._permissions: list[_Permissions] = []
        self._laid_out = False
        self._acknowledge_framework_findings(on_event, is_complete)
        Aspects.of(stack).add(_LayOutPolicies(self), priority=AspectPriority.MUTATING)

    def add(self, cleanup: IotJobCleanup, permissions: _Permissions) -> None:
        """Counts ``cleanup``'s permissions in (``check_room`` has made sure they fit)."""
        permissions.cleanup = cleanup
        self._permissions.append(permissions)

    def lay_out(self) -> None:
        """Creates the handler role's managed policies for every cleanup of the stack.

        While the cleanups' policies fit IAM's quota as they always were laid out (a
        ``SelectionPolicy`` of its own for each filtered cleanup, named job ARNs filling
        ``JobPolicy1``, ``JobPolicy2``...), they keep that layout, so that no deployed
        stack's template changes. Past the quota every statement is packed by size into the
        fewest ``JobPolicy<n>``. Every cleanup's resource depends on the policies holding its
        permissions: on the role (and so on every JobPolicy), and on its SelectionPolicy.
        """
        if self._laid_out:
            return
        self._laid_out = True
        stack = Stack.of(self)
        packed, plans = _layout(self._permissions)
        for number, plan in enumerate(plans, start=1):
            policy = iam.ManagedPolicy(
                self.role,
                f"JobPolicy{number}",
                description=(
                    "Lets IotJobCleanup delete the jobs its resources name or select (packed by size: "
                    "a role holds at most 10 managed policies)."
                    if packed
                    else "Lets IotJobCleanup delete exactly the jobs its resources name."
                ),
                roles=[self.role],
            )
            plan.add_to(policy, stack)
        if not packed:
            for permissions in self._permissions:
                if permissions.selection is not None and permissions.cleanup is not None:
                    policy = _SelectionPolicy(
                        permissions.cleanup,
                        "SelectionPolicy",
                        permissions.selection,
                        permissions.actions,
                        self.role,
                    )
                    permissions.cleanup.resource.node.add_dependency(policy)

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


# --------------------------------------------------------------------------- the handler role's job policies


@jsii.implements(IAspect)
class _LayOutPolicies:
    """Lays out the provider's job policies when synthesis reaches its stack: every cleanup
    is known by then, and the stack's other constructs are still to be visited."""

    def __init__(self, provider: _CleanupProvider) -> None:
        self._provider = provider
        self._stack_path = Stack.of(provider).node.path

    def visit(self, node: IConstruct) -> None:
        if node.node.path == self._stack_path:
            self._provider.lay_out()


@dataclass
class _Permissions:
    """What one cleanup needs on jobs: ``actions`` on its named jobs and on the jobs its
    filters reach."""

    path: str  # the cleanup's construct path, for messages and acknowledgements
    actions: tuple[str, ...]
    scalars: list[str]  # job ids: literals and string tokens
    lists: list[str]  # list tokens of job ids
    selection: _Selection | None  # the filters, if any
    selection_size: int  # its statements, resolved at their longest
    cleanup: IotJobCleanup | None = None  # once constructed

    @classmethod
    def of(cls, path: str, settings: _Settings) -> _Permissions:
        sources, selection, actions = settings.sources, settings.selection, settings.actions
        return cls(
            path=path,
            actions=actions,
            scalars=list(sources.scalars) if sources is not None else [],
            lists=list(sources.lists) if sources is not None else [],
            selection=selection if selection.filtered else None,
            selection_size=_selection_size(selection, actions) if selection.filtered else 0,
        )


def _arn_size(job_id: str) -> int:
    """A named job's ARN in a policy, resolved at its longest, with its quotes and comma."""
    return ARN_SCAFFOLD_SIZE + (TOKEN_JOB_ID_SIZE if Token.is_unresolved(job_id) else len(job_id))


@dataclass
class _PolicyPlan:
    """The statements of one managed policy of the handler role, and its size so far."""

    size: int
    named: dict[tuple[str, ...], list[str]] = field(default_factory=dict)  # actions -> job ids
    list_token: tuple[tuple[str, ...], str] | None = None  # actions, a list token of job ids
    selections: list[_Permissions] = field(default_factory=list)

    def add_to(self, policy: iam.ManagedPolicy, stack: Stack) -> None:
        for actions, job_ids in self.named.items():
            policy.add_statements(
                iam.PolicyStatement(actions=list(actions), resources=[job_arn(stack, i) for i in job_ids])
            )
        reasons: dict[str, list[str]] = {}
        if self.list_token is not None:
            actions, list_token = self.list_token
            arns = job_arns_of_list(stack, list_token)
            policy.add_statements(iam.PolicyStatement(actions=list(actions), resources=[arns]))
            reasons[_nag_wildcard_resource_id(stack, arns)] = [
                "The job ids of a list token get their ARNs inside CloudFormation, by Fn::Join, whose "
                "delimiter must be a literal: the partition, region or account known only at deploy "
                "time are '*'. The job ids are exact, and a role reaches only its own account's jobs."
            ]
        for permissions in self.selections:
            assert permissions.selection is not None
            policy.add_statements(*_selection_statements(stack, permissions.selection, permissions.actions))
            for acknowledgment in _selection_acknowledgments(
                stack, permissions.path, permissions.selection, permissions.actions
            ):
                reasons.setdefault(acknowledgment.id, []).append(acknowledgment.reason)
        if reasons:
            Validations.of(policy).acknowledge(
                *[Acknowledgment(id=rule, reason=" ".join(texts)) for rule, texts in reasons.items()]
            )


def _layout(everyone: Sequence[_Permissions]) -> tuple[bool, list[_PolicyPlan]]:
    """The role's job policies: (packed, plans).

    As they always were while that fits IAM's quota of 10 managed policies per role (then
    the plans are the JobPolicies only, each filtered cleanup adding its SelectionPolicy);
    else packed by size, selection statements and named ARNs together.
    """
    classic = _classic_job_policies(everyone)
    filtered = sum(1 for permissions in everyone if permissions.selection is not None)
    if len(classic) + filtered <= MAX_MANAGED_POLICIES:
        return False, classic
    return True, _packed_policies(everyone)


def _classic_job_policies(everyone: Sequence[_Permissions]) -> list[_PolicyPlan]:
    """The named ARNs, cleanup after cleanup, each policy filled up to the budget (whose
    reserve covers a policy's first statement; another set of actions in the same policy
    costs its own Action list and braces). A list token's size is known only at deploy
    time: it gets a policy of its own.

    CDK's own overflow splitting cannot split one statement's resources and counts every
    token ARN as 150 characters, which for hundreds of jobs needs more policies than a role
    may hold.
    """
    plans: list[_PolicyPlan] = []
    current: _PolicyPlan | None = None
    for permissions in everyone:
        actions = permissions.actions
        for job_id in permissions.scalars:
            size = _arn_size(job_id)
            another = current is not None and actions not in current.named and bool(current.named)
            cost = size + (_statement_overhead(actions) if another else 0)
            if current is None or current.size + cost > MANAGED_POLICY_BUDGET:
                current = _PolicyPlan(size=0)
                plans.append(current)
                cost = size
            current.named.setdefault(actions, []).append(job_id)
            current.size += cost
        for list_token in permissions.lists:
            plans.append(_PolicyPlan(size=0, list_token=(actions, list_token)))
            current = None  # full, as far as anyone can tell at synth time
    return plans


def _packed_policies(everyone: Sequence[_Permissions]) -> list[_PolicyPlan]:
    """Every statement packed by its size resolved at its longest, each policy within IAM's
    6,144 characters: the cleanups' selection statements first fit, largest first (a
    cleanup's statements stay together), then the named ARNs first fit into the room left,
    then a policy for each list token."""
    plans: list[_PolicyPlan] = []

    def first_fit(cost: Callable[[_PolicyPlan], int]) -> _PolicyPlan:
        for plan in plans:
            if plan.size + cost(plan) <= MANAGED_POLICY_SIZE:
                return plan
        plans.append(_PolicyPlan(size=POLICY_DOCUMENT_SIZE))
        return plans[-1]

    filtered = [permissions for permissions in everyone if permissions.selection is not None]
    for permissions in sorted(filtered, key=lambda permissions: -permissions.selection_size):
        plan = first_fit(lambda _, size=permissions.selection_size: size)
        plan.selections.append(permissions)
        plan.size += permissions.selection_size
    for permissions in everyone:
        actions = permissions.actions
        for job_id in permissions.scalars:

            def cost(
                plan: _PolicyPlan, size: int = _arn_size(job_id), actions: tuple[str, ...] = actions
            ) -> int:
                return size + (0 if actions in plan.named else _statement_overhead(actions))

            plan = first_fit(cost)
            plan.size += cost(plan)
            plan.named.setdefault(actions, []).append(job_id)
    for permissions in everyone:
        plans.extend(
            _PolicyPlan(size=MANAGED_POLICY_SIZE, list_token=(permissions.actions, list_token))
            for list_token in permissions.lists
        )
    return plans


def _too_many_policies(everyone: Sequence[_Permissions], needed: int) -> str:
    def counted(number: int, one: str, many: str) -> str:
        return f"{number} {one if number == 1 else many}"

    filtered = sum(1 for permissions in everyone if permissions.selection is not None)
    named = sum(len(permissions.scalars) for permissions in everyone)
    lists = sum(len(permissions.lists) for permissions in everyone)
    parts = [
        counted(filtered, "filtered cleanup's selection", "filtered cleanups' selections")
        if filtered
        else "",
        counted(named, "named job ARN", "named job ARNs") if named else "",
        counted(lists, "list of job ids from tokens", "lists of job ids from tokens")
        + " (a policy of its own each: a list's length is known only at deploy time)"
        if lists
        else "",
    ]
    return (
        f"the stack's cleanups would need {needed} managed policies on their shared handler role, "
        f"even packed by size, and IAM attaches at most {MAX_MANAGED_POLICIES} to a role (its default "
        f"quota): {', '.join(part for part in parts if part)}, each policy at most 6,144 characters. "
        "Select with fewer filtered cleanups (one cleanup's tags or job_id_prefix can cover the jobs "
        "of several), name fewer jobs or give fewer lists of ids, or move some cleanups into another "
        "stack or a NestedStack (each has a handler role of its own)."
    )


@functools.cache
def _statement_overhead(actions: tuple[str, ...]) -> int:
    """A statement's size without its resources, as IAM counts it, and the comma before it."""
    return (
        len(json.dumps({"Action": list(actions), "Effect": "Allow", "Resource": []}, separators=(",", ":")))
        + 1
    )


# --------------------------------------------------------------------------- a filtered cleanup's IAM


def _selection_statements(
    stack: Stack, selection: _Selection, actions: Sequence[str]
) -> list[iam.PolicyStatement]:
    """A filtered cleanup's own permissions: the jobs its filters reach.

    With tags the job actions are conditioned on ``aws:ResourceTag`` for every tag, so even
    a bug in the handler cannot delete a job without them; with a prefix they are limited
    to ``job/<prefix>*``; thing groups alone have no condition key and get ``job/*``. The
    discovery reads: ``iot:ListTagsForResource`` on the same jobs, and with tags
    ``tag:GetResources`` (no resource-level permissions: ``*``).
    """
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
    return statements


def _selection_acknowledgments(
    stack: Stack, cleanup: str, selection: _Selection, actions: Sequence[str]
) -> list[Acknowledgment]:
    """cdk-nag's AwsSolutions-IAM5 (wildcard resources) on a selection's statements, with
    the reason for each; ``cleanup`` is the cleanup's construct path."""
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
    pattern = _job_pattern_arn(stack, selection.prefix)
    acknowledgments = [Acknowledgment(id=_nag_wildcard_resource_id(stack, pattern), reason=reason)]
    if selection.tags:
        acknowledgments.append(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason=f"tag:GetResources has no resource-level permissions; it is read-only and "
                f"lets IotJobCleanup {cleanup} find the jobs carrying its tags.",
            )
        )
    return acknowledgments


class _SelectionPolicy(iam.ManagedPolicy):
    """A filtered cleanup's own permissions on the handler role (``_selection_statements``),
    while the stack's policies fit IAM's quota without packing."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        selection: _Selection,
        actions: Sequence[str],
        role: iam.IRole,
    ) -> None:
        stack = Stack.of(scope)
        super().__init__(
            scope,
            construct_id,
            description="Lets IotJobCleanup delete only the jobs its filters select.",
            statements=_selection_statements(stack, selection, actions),
            roles=[role],
        )
        Validations.of(self).acknowledge(
            *_selection_acknowledgments(stack, scope.node.path, selection, actions)
        )


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

    # Resolved inside a list: a list token of ARNs (job_arns_of_list) is no scalar.
    resolved = stack.resolve([arn])
    resource = resolved[0] if isinstance(resolved, list) else resolved
    return f"AwsSolutions::AwsSolutions-IAM5[Resource::{render(resource)}]"


def _worst_case_selection_statements(
    selection: _Selection, actions: Sequence[str]
) -> list[dict[str, object]]:
    """A selection's statements resolved for the longest partition, region and account,
    tokens at their longest: what IAM would count."""
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
    jobs: dict[str, object] = {"Action": list(actions), "Effect": "Allow", "Resource": pattern}
    if tags:
        jobs["Condition"] = {"StringEquals": tags}
    statements: list[dict[str, object]] = [
        jobs,
        {"Action": "iot:ListTagsForResource", "Effect": "Allow", "Resource": pattern},
    ]
    if tags:
        statements.append({"Action": "tag:GetResources", "Effect": "Allow", "Resource": "*"})
    return statements


def _selection_size(selection: _Selection, actions: Sequence[str]) -> int:
    """The selection's statements in a policy, as IAM counts them, each with its comma."""
    return sum(
        len(json.dumps(statement, separators=(",", ":"), ensure_ascii=False)) + 1
        for statement in _worst_case_selection_statements(selection, actions)
    )


def _check_selection_policy_size(selection: _Selection, actions: Sequence[str]) -> None:
    """A selection's statements stay together: they must fit IAM's 6,144 characters for a
    managed policy on their own."""
    size = POLICY_DOCUMENT_SIZE + _selection_size(selection, actions) - 1
    if size > MANAGED_POLICY_SIZE:
        raise _SettingError(
            f"tags {', '.join(key for key, _ in selection.tags)}: the IAM policy that limits the "
            f"handler to jobs carrying them would be {size} characters, more than the 6,144 of an IAM "
            "managed policy. Select with fewer or shorter tags (a value given as a token counts as "
            f"{TOKEN_TAG_VALUE_SIZE} characters)."
        )
