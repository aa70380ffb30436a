"""The IotJobCleanup construct: a custom resource that deletes IoT jobs at stack teardown."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import (
    Acknowledgment,
    CustomResource,
    Duration,
    RemovalPolicy,
    Stack,
    Token,
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
POLL_INTERVAL = Duration.seconds(2)
POLL_WINDOW = Duration.seconds(300)
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
# IAM counts a managed policy's size resolved and without white space: at most 6,144
# characters. A job ARN resolves to at most 51 characters around its id (partition
# "aws-us-gov", a 14-character region, a 12-digit account) plus 3 for quotes and comma.
MANAGED_POLICY_BUDGET = 6144 - 200  # the rest: Version, Effect, Action
ARN_SCAFFOLD_SIZE = 51 + 3
TOKEN_JOB_ID_SIZE = 64


def handler_directory() -> Path:
    """The handler asset: lambda/ in this repository, iot_job_cleanup/handler/ in the wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "handler", here.parent.parent / "lambda"):
        if (candidate / f"{HANDLER_MODULE}.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"{HANDLER_MODULE}.py is neither in {here / 'handler'} nor in the repository's lambda/: "
        "reinstall iot-job-cleanup."
    )


class IotJobCleanup(Construct):
    """Deletes the named AWS IoT jobs when the stack is destroyed, and waits until they are gone.

    Create and Update touch no job. Delete starts the deletions and completes only when
    every job is gone, riding out IoT's limit of 10 deletions in progress per account and
    region. A job dropped from ``job_ids`` by an update is no longer deleted.

    :param job_ids: the jobs this resource owns: literals or CDK tokens.
    :param force: also delete jobs that are not COMPLETED or CANCELED (IN_PROGRESS, SCHEDULED).
    :param namespace_id: the customer-managed job namespace the jobs were created in.
    :param query_interval: how often the Provider's waiter calls ``is_complete``.
    :param total_timeout: how long the cleanup may take; at most 1 hour and a whole
        multiple of ``query_interval``.
    :param removal_policy: ``RETAIN`` leaves the jobs alone when the stack is destroyed.
    """

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
        super().__init__(scope, construct_id)
        query_interval = query_interval or Duration.seconds(10)
        total_timeout = total_timeout or MAX_TOTAL_TIMEOUT
        self.job_ids: list[str] = _checked_job_ids(job_ids)
        _check_namespace_id(namespace_id)
        _check_timing(query_interval, total_timeout)
        _check_removal_policy(removal_policy)

        stack = Stack.of(self)
        provider = _CleanupProvider.of(stack, query_interval, total_timeout)
        self.job_arns: list[str] = [
            stack.format_arn(service="iot", resource="job", resource_name=job_id) for job_id in self.job_ids
        ]
        provider.grant_delete(self.job_ids, self.job_arns)
        properties: dict[str, object] = {"JobIds": self.job_ids, "Force": "true" if force else "false"}
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


def _checked_job_ids(job_ids: Sequence[str]) -> list[str]:
    if isinstance(job_ids, str) or not isinstance(job_ids, Sequence):
        raise ValueError(
            f"job_ids is {job_ids!r}: it must be a list of job ids. Write job_ids=[{job_ids!r}]."
        )
    ids = list(job_ids)
    if not ids:
        raise ValueError("job_ids is empty: name at least one job, or leave IotJobCleanup out.")
    for job_id in ids:
        if not Token.is_unresolved(job_id) and not JOB_ID_PATTERN.fullmatch(job_id):
            raise ValueError(
                f"job_ids contains {job_id!r} ({len(job_id)} characters): a job id is 1 to 64 "
                "characters of letters, digits, '_' and '-'. Fix or remove that id."
            )
    duplicates = sorted({job_id for job_id in ids if ids.count(job_id) > 1})
    if duplicates:
        raise ValueError(
            f"job_ids names {', '.join(map(repr, duplicates))} more than once: each job may be "
            "listed once. Remove the duplicates."
        )
    return ids


def _check_namespace_id(namespace_id: str | None) -> None:
    if namespace_id is None or Token.is_unresolved(namespace_id):
        return
    if not NAMESPACE_ID_PATTERN.fullmatch(namespace_id):
        raise ValueError(
            f"namespace_id is {namespace_id!r}: it must be letters, digits, '_' and '-' only. "
            "Fix it, or leave it out for jobs created without a namespace."
        )


def _check_timing(query_interval: Duration, total_timeout: Duration) -> None:
    interval, total = query_interval.to_seconds(), total_timeout.to_seconds()
    if total > MAX_TOTAL_TIMEOUT.to_seconds():
        raise ValueError(
            f"total_timeout is {total} s: it may be at most 3600 s (1 hour, the Provider's and "
            "CloudFormation's limit). Use Duration.hours(1) or less; a cleanup that needs longer "
            "resumes when you run cdk destroy again."
        )
    if interval <= 0 or interval > total:
        raise ValueError(
            f"query_interval is {interval} s: it must be more than 0 and at most total_timeout "
            f"({total} s). Use a shorter query_interval, e.g. Duration.seconds(10)."
        )
    if total % interval:
        raise ValueError(
            f"total_timeout ({total} s) is not a whole multiple of query_interval ({interval} s), "
            "as the Provider requires. Choose values such as query_interval=Duration.seconds(10) "
            "with total_timeout=Duration.hours(1)."
        )


def _check_removal_policy(removal_policy: RemovalPolicy) -> None:
    if removal_policy == RemovalPolicy.SNAPSHOT:
        raise ValueError(
            "removal_policy is SNAPSHOT: IoT jobs have no snapshot. Use DESTROY to delete the "
            "jobs with the stack, or RETAIN to leave them alone."
        )


# --------------------------------------------------------------------------- the shared provider


class _CleanupProvider(Construct):
    """One set of provider resources per stack and timing, shared by every IotJobCleanup."""

    @classmethod
    def of(cls, stack: Stack, query_interval: Duration, total_timeout: Duration) -> _CleanupProvider:
        interval, total = int(query_interval.to_seconds()), int(total_timeout.to_seconds())
        default = (interval, total) == (10, int(MAX_TOTAL_TIMEOUT.to_seconds()))
        construct_id = "IotJobCleanupProvider" if default else f"IotJobCleanupProvider{interval}s{total}s"
        existing = stack.node.try_find_child(construct_id)
        if isinstance(existing, _CleanupProvider):
            return existing
        return cls(stack, construct_id, query_interval, total_timeout)

    def __init__(
        self, scope: Construct, construct_id: str, query_interval: Duration, total_timeout: Duration
    ) -> None:
        super().__init__(scope, construct_id)
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
            "POLL_INTERVAL_SECONDS": str(int(POLL_INTERVAL.to_seconds())),
            "POLL_WINDOW_SECONDS": str(int(POLL_WINDOW.to_seconds())),
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

    def grant_delete(self, job_ids: Sequence[str], job_arns: Sequence[str]) -> None:
        """iot:DeleteJob and iot:DescribeJob on exactly these job ARNs.

        They go into managed policies of the handler role, each filled up to IAM's size
        limit: CDK's own overflow splitting cannot split one statement's resources and
        counts every token ARN as 150 characters, which for hundreds of jobs needs more
        managed policies than a role may hold.
        """
        for job_id, arn in zip(job_ids, job_arns, strict=True):
            size = ARN_SCAFFOLD_SIZE + (TOKEN_JOB_ID_SIZE if Token.is_unresolved(job_id) else len(job_id))
            if self._job_statement is None or self._job_policy_size + size > MANAGED_POLICY_BUDGET:
                self._job_policies += 1
                self._job_statement = iam.PolicyStatement(actions=["iot:DeleteJob", "iot:DescribeJob"])
                iam.ManagedPolicy(
                    self.role,
                    f"JobPolicy{self._job_policies}",
                    description="Lets IotJobCleanup delete exactly the jobs its resources name.",
                    statements=[self._job_statement],
                    roles=[self.role],
                )
                self._job_policy_size = 0
            self._job_statement.add_resources(arn)
            self._job_policy_size += size

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
