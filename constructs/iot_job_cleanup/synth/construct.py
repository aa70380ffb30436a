"""The IotJobCleanup construct: a custom resource that deletes IoT jobs at stack teardown.

Its constructor is a short sequence of steps: check every option (``Settings``) and that the
cleanup's permissions fit the stack's handler role (``CleanupProvider.check_room``), before
the construct joins the tree; join it; find or create the stack's shared provider; keep the
options' public attributes; add the custom resource, one per hour of ``total_timeout`` (its
stages, chained so that CloudFormation deletes them one after another); count its permissions
in. The metrics the handler writes (``metrics``) have their ``aws_cloudwatch.Metric`` here.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import jsii
from aws_cdk import (
    Annotations,
    CfnDeletionPolicy,
    CfnResource,
    CustomResource,
    Duration,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from aws_cdk import aws_logs as logs

from constructs import Construct, IValidation

from ..cfn import RESOURCE_TYPE
from .arns import create_job_arns
from .naming import SettingError
from .options import Settings
from .policies import Permissions
from .provider import CleanupProvider

__all__ = ["METRICS_NAMESPACE", "RETAINED_WARNING", "THING_GROUPS_ALONE_WARNING", "IotJobCleanup"]

METRICS_NAMESPACE = "IotJobCleanup"  # the handler's EMF records: dimensions StackName and Cleanup
# Synth-time warnings (CDK annotations), by the ids Annotations.acknowledge_warning takes.
THING_GROUPS_ALONE_WARNING = "iot-job-cleanup:thingGroupsAlone"
RETAINED_WARNING = "iot-job-cleanup:retained"


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

    Attributes: ``resource`` (the first stage), ``stages`` (one custom resource per hour of
    ``total_timeout``), ``log_group`` (the handler's logs, with its metrics), and
    ``metric_jobs_left``, ``metric_jobs_deleting``, ``metric_jobs_deleted`` (``metric`` for
    the others: ``SlotsHeldByOthers``, ``Throttled``, ``HandOvers``), the metrics the handler
    writes while a stage runs, in namespace ``IotJobCleanup`` with dimensions ``StackName``
    and ``Cleanup`` (the construct's path below its stack).
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
        :param total_timeout: how long the cleanup may take (1 min to 24 hours, whole
            seconds; default 1 hour). A custom resource may take an hour at most, so a longer
            cleanup is one resource per hour, its ``stages`` (``Resource``, ``Stage2``...),
            which CloudFormation deletes one after another; a stage whose hour runs out hands
            what is left on to the next, and only the last one fails. Each stage's
            ServiceTimeout is its part of total_timeout.
        :param removal_policy: ``RETAIN`` leaves the jobs alone when the stack is destroyed.
        :raises ValueError: a setting breaks a rule (of its type or range; ids and names made
            with ``Fn.join`` of literals are judged as the literal), or the stack's cleanups
            would need more than 10 managed policies on their shared handler role; the message
            names the construct, the value, the rule and the fix.
        """
        stack = Stack.of(scope)
        settings, permissions = _checked(
            scope,
            construct_id,
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
        super().__init__(scope, construct_id)
        provider = CleanupProvider.of(stack)
        self._keep_options(stack, job_ids, settings)
        self.log_group: logs.ILogGroup = provider.log_group
        self.stages: list[CustomResource] = self._add_stages(provider, settings)
        self.resource = self.stages[0]
        provider.add(self, permissions)
        self._warn_of_iam_on_every_job(settings)
        self.node.add_validation(_WarnIfRetained(self))

    def _keep_options(self, stack: Stack, job_ids: Sequence[str] | None, settings: Settings) -> None:
        """The public attributes: the options as given or judged, and the named jobs' ARNs."""
        sources, selection = settings.sources, settings.selection
        self.job_ids: list[str] = list(job_ids) if job_ids is not None else []
        self.job_arns: list[str] = sources.arns(stack) if sources is not None else []
        self.tags: dict[str, str] = dict(selection.tags)
        self.thing_group_names: list[str] = list(selection.thing_group_names)
        self.job_id_prefix: str | None = selection.prefix

    def _warn_of_iam_on_every_job(self, settings: Settings) -> None:
        selection = settings.selection
        if selection.thing_group_names and not selection.tags and selection.prefix is None:
            Annotations.of(self).add_warning_v2(
                THING_GROUPS_ALONE_WARNING,
                f"IotJobCleanup {self.node.path} selects jobs by thing_groups alone: IAM has no "
                "condition key for a job's targets, so its handler may delete any job of the account "
                "and region (job/*). The handler deletes only jobs it has seen target the groups, but "
                "IAM does not hold it to that. Add job_id_prefix='...' (IAM: job/<prefix>*) or "
                "tags={...} (an aws:ResourceTag condition), or acknowledge this warning: "
                f"Annotations.of(cleanup).acknowledge_warning('{THING_GROUPS_ALONE_WARNING}', 'why').",
            )

    @property
    def cleanup_path(self) -> str:
        """The construct's path below its stack: the ``Cleanup`` dimension of its metrics."""
        stack_path = Stack.of(self).node.path
        return self.node.path[len(stack_path) + 1 :] if stack_path else self.node.path

    def _add_stages(self, provider: CleanupProvider, settings: Settings) -> list[CustomResource]:
        """One custom resource per hour: ``Resource`` (the first to run, as ever) and
        ``Stage2``... Each depends on the next, so CloudFormation deletes them in order, one
        at a time; each hands what is left on to the next when its hour runs out."""
        timeouts = settings.stage_timeouts()
        stages = [
            CustomResource(
                self,
                "Resource" if number == 1 else f"Stage{number}",
                service_token=provider.service_token,
                resource_type=RESOURCE_TYPE,
                properties=settings.properties(self.cleanup_path, number, len(timeouts)),
                removal_policy=settings.removal_policy,
                service_timeout=timeout,
            )
            for number, timeout in enumerate(timeouts, start=1)
        ]
        for stage, after_it in pairwise(stages):
            stage.node.add_dependency(after_it)
        # On destroy, CloudFormation must not remove the permission before the Delete ran:
        # the role's construct holds its default policy and the job policies (a filtered
        # cleanup's own SelectionPolicy gets its dependency when it is laid out).
        for stage in stages:
            stage.node.add_dependency(provider.role)
        return stages

    # -- metrics

    def metric(self, metric_name: str, **props: Any) -> cloudwatch.Metric:
        """The handler's metric ``metric_name`` for this cleanup (every stage writes it):
        namespace ``IotJobCleanup``, dimensions ``StackName`` and ``Cleanup``. ``props`` are
        ``aws_cloudwatch.Metric``'s (``period``, ``statistic``, ``label``...)."""
        props.setdefault("period", Duration.minutes(1))
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"StackName": Stack.of(self).stack_name, "Cleanup": self.cleanup_path},
            **props,
        )

    def metric_jobs_left(self, **props: Any) -> cloudwatch.Metric:
        """Selected jobs not gone yet, as far as the cleanup knows (maximum a minute by default)."""
        props.setdefault("statistic", "Maximum")
        return self.metric("JobsLeft", **props)

    def metric_jobs_deleting(self, **props: Any) -> cloudwatch.Metric:
        """The cleanup's jobs in DELETION_IN_PROGRESS (maximum a minute by default)."""
        props.setdefault("statistic", "Maximum")
        return self.metric("JobsDeleting", **props)

    def metric_jobs_deleted(self, **props: Any) -> cloudwatch.Metric:
        """Jobs confirmed gone (sum a minute by default: deletions per minute)."""
        props.setdefault("statistic", "Sum")
        return self.metric("JobsDeleted", **props)

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
        jobs, others = create_job_arns(Stack.of(self), self.job_id_prefix, self.thing_group_names)
        conditions = {
            "StringEquals": {f"aws:RequestTag/{key}": value for key, value in self.tags.items()},
            "ForAnyValue:StringEquals": {"aws:TagKeys": list(self.tags)},
        }
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["iot:CreateJob"],
            resource_arns=[*jobs, *others],
            conditions=conditions,
        ).combine(
            iam.Grant.add_to_principal(
                grantee=grantee, actions=["iot:TagResource"], resource_arns=jobs, conditions=conditions
            )
        )
        if isinstance(grantee, Construct):
            grantee.node.add_dependency(self.resource)
        return grant


def _checked(
    scope: Construct, construct_id: str, stack: Stack, **options: object
) -> tuple[Settings, Permissions]:
    """The options checked, and the cleanup's permissions once they fit the stack's handler
    role; a refusal is a ValueError naming the construct, raised before it joins the tree,
    so the same id can be used again with the fix."""
    path = f"{scope.node.path}/{construct_id}" if scope.node.path else construct_id
    try:
        settings = Settings.check(stack, **options)
        permissions = Permissions.of(path, settings.sources, settings.selection, settings.actions)
        CleanupProvider.check_room(stack, permissions)
    except SettingError as refusal:
        raise ValueError(f"IotJobCleanup {path}: {refusal}") from None
    return settings, permissions


@jsii.implements(IValidation)
class _WarnIfRetained:
    """At synthesis, after every Aspect: a cleanup whose stages CloudFormation will never send
    a Delete (DeletionPolicy Retain, set by removal_policy or by an Aspect) deletes no job."""

    def __init__(self, cleanup: IotJobCleanup) -> None:
        self._cleanup = cleanup

    def validate(self) -> list[str]:
        cleanup = self._cleanup
        retained = [
            stage.node.id
            for stage in cleanup.stages
            if isinstance(stage.node.default_child, CfnResource)
            and stage.node.default_child.cfn_options.deletion_policy == CfnDeletionPolicy.RETAIN
        ]
        if retained:
            Annotations.of(cleanup).add_warning_v2(
                RETAINED_WARNING,
                f"IotJobCleanup {cleanup.node.path} will delete no job at cdk destroy: "
                f"{', '.join(retained)} {'has' if len(retained) == 1 else 'have'} DeletionPolicy "
                "Retain (removal_policy=RemovalPolicy.RETAIN, or an Aspect that retains every "
                "resource), so CloudFormation never sends the Delete that deletes the jobs. If that is "
                "meant, acknowledge this warning; else leave removal_policy at DESTROY and keep the "
                "cleanup out of the Aspect (e.g. skip nodes of type Custom::IotJobCleanup).",
            )
        return []
