"""The IotJobCleanup construct: a custom resource that deletes IoT jobs at stack teardown."""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr

from constructs import Construct

__all__ = ["HANDLER_MODULE", "IotJobCleanup", "handler_directory"]

HANDLER_MODULE = "iot_job_cleanup_handler"
RESOURCE_TYPE = "Custom::IotJobCleanup"
JOB_ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]{1,64}")
NAMESPACE_ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]+")
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


def handler_directory() -> Path:
    """The handler asset, the folder holding the handler package: lambda/ in this
    repository, iot_job_cleanup/handler/ in the wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "handler", here.parent.parent / "lambda"):
        if (candidate / HANDLER_MODULE / "__init__.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"The handler package {HANDLER_MODULE} is neither in {here / 'handler'} nor in the "
        "repository's lambda/: reinstall iot-job-cleanup."
    )


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
    """Deletes the named AWS IoT jobs when the stack is torn down, and waits until they are gone.

    Create and Update touch no job. A Delete deletes the jobs only when the stack itself is
    being deleted (or a failed stack creation is rolled back): a cleanup that an update
    renames, moves or removes leaves its jobs alone. The deletion completes only when every
    job is gone, riding out IoT's limit of 10 deletions in progress per account and region.
    A job dropped from ``job_ids`` by an update is no longer deleted.

    Every IotJobCleanup of a stack shares one provider, whatever its options, so changing
    an option never changes a deployed resource's ServiceToken.
    """

    __signature__ = _InitSignature()

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        job_ids: Sequence[str],
        force: bool = False,
        namespace_id: str | None = None,
        query_interval: Duration | None = None,
        total_timeout: Duration | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        """Add a cleanup of IoT jobs to ``scope``'s stack.

        :param scope: the construct to add it to.
        :param construct_id: its id in ``scope``.
        :param job_ids: the jobs this resource owns and deletes at stack teardown: literal
            ids, string tokens, and list tokens (a CommaDelimitedList parameter's
            ``value_as_list``, an SSM ``StringListParameter``'s ``string_list_value``,
            ``Fn.split``), alone or mixed, e.g. ``["ota-1", *param.value_as_list]``.
        :param force: also delete jobs that are not COMPLETED or CANCELED (IN_PROGRESS,
            SCHEDULED); devices with an execution in progress may be left mid-update.
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
        sources = _JobIdSources.parse(job_ids)
        _check_namespace_id(namespace_id)
        _check_timing(query_interval, total_timeout)
        _check_removal_policy(removal_policy)

        stack = Stack.of(self)
        provider = _CleanupProvider.of(stack)
        self.job_ids: list[str] = list(job_ids)
        self.job_arns: list[str] = sources.arns(stack)
        provider.grant_delete(sources, stack)
        properties: dict[str, object] = {
            "JobIds": sources.property_value(),
            "Force": "true" if force else "false",
            "QueryIntervalSeconds": _seconds_text(query_interval),
            "TotalTimeoutSeconds": _seconds_text(total_timeout),
        }
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
        if not sources.order:
            raise ValueError("job_ids is empty: name at least one job, or leave IotJobCleanup out.")
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
        self._job_statement: iam.PolicyStatement | None = None
        self._job_policies = 0
        self._job_policy_size = 0
        self._acknowledge_framework_findings(on_event, is_complete)

    def grant_delete(self, sources: _JobIdSources, stack: Stack) -> None:
        """iot:DeleteJob and iot:DescribeJob on exactly these jobs' ARNs.

        They go into managed policies of the handler role, each filled up to IAM's size
        limit: CDK's own overflow splitting cannot split one statement's resources and
        counts every token ARN as 150 characters, which for hundreds of jobs needs more
        managed policies than a role may hold. A list token's size is known only at deploy
        time: it gets a managed policy of its own.
        """
        for job_id in sources.scalars:
            size = ARN_SCAFFOLD_SIZE + (TOKEN_JOB_ID_SIZE if Token.is_unresolved(job_id) else len(job_id))
            if self._job_statement is None or self._job_policy_size + size > MANAGED_POLICY_BUDGET:
                self._job_statement = self._new_job_policy()
            self._job_statement.add_resources(job_arn(stack, job_id))
            self._job_policy_size += size
        for list_token in sources.lists:
            statement = self._new_job_policy()
            statement.add_resources(job_arns_of_list(stack, list_token))
            self._job_statement = None  # full, as far as anyone can tell at synth time

    def _new_job_policy(self) -> iam.PolicyStatement:
        self._job_policies += 1
        statement = iam.PolicyStatement(actions=["iot:DeleteJob", "iot:DescribeJob"])
        iam.ManagedPolicy(
            self.role,
            f"JobPolicy{self._job_policies}",
            description="Lets IotJobCleanup delete exactly the jobs its resources name.",
            statements=[statement],
            roles=[self.role],
        )
        self._job_policy_size = 0
        return statement

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
