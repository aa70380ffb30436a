"""The shared provider: the one set of Lambda functions, roles and log group of a stack that
serves every IotJobCleanup in it, and the laying out of their job policies at synthesis.

Its construct id (``IotJobCleanupProvider``) and the waiter's timing are fixed, whatever the
options of the cleanups it serves: every custom resource's ServiceToken points at it, and
CloudFormation refuses to change a deployed custom resource's ServiceToken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jsii
from aws_cdk import AspectPriority, Aspects, Aws, Duration, IAspect, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr

from constructs import Construct, IConstruct

from ..engine import HANDLER_MODULE, handler_directory
from .nag import acknowledge_framework_findings
from .naming import SettingError
from .options import DEFAULT_QUERY_INTERVAL, STAGE_TIMEOUT
from .policies import MAX_MANAGED_POLICIES, Permissions, layout, too_many_policies
from .statements import SelectionPolicy

if TYPE_CHECKING:
    from .construct import IotJobCleanup

__all__ = ["PROVIDER_ID", "CleanupProvider"]

POLL_WINDOW = Duration.seconds(300)
PROVIDER_ID = "IotJobCleanupProvider"
WAITER_INTERVAL = Duration.seconds(10)
WAITER_TIMEOUT = STAGE_TIMEOUT  # each stage's waiter: an hour at most
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


class CleanupProvider(Construct):
    """The one set of provider resources of a stack, shared by every IotJobCleanup in it.

    Its construct path (``<Stack>/IotJobCleanupProvider``) and so its logical ids are a
    compatibility promise: every deployed cleanup's ServiceToken points at its
    ``framework-onEvent`` function, and CloudFormation refuses to change a ServiceToken.
    Nothing a cleanup's options say may change them; per-resource timing travels in the
    resource's properties.

    The cleanups' permissions on jobs are laid out as the handler role's managed policies
    once every cleanup of the stack is known, when the stack is synthesized (an aspect at
    the stack, so that other aspects see the policies too). See ``policies.layout``.
    """

    @classmethod
    def of(cls, stack: Stack) -> CleanupProvider:
        existing = stack.node.try_find_child(PROVIDER_ID)
        if isinstance(existing, CleanupProvider):
            return existing
        return cls(stack, PROVIDER_ID)

    @classmethod
    def check_room(cls, stack: Stack, permissions: Permissions) -> None:
        """Refuses a cleanup whose permissions, with those of the stack's other cleanups,
        cannot fit the role's managed policies even packed by size."""
        existing = stack.node.try_find_child(PROVIDER_ID)
        if isinstance(existing, CleanupProvider):
            existing.check_room_for(permissions)
        else:
            _check_fits([permissions])

    def check_room_for(self, permissions: Permissions) -> None:
        """``check_room`` once the stack has its provider: the cleanups counted in so far."""
        if self._laid_out:
            raise SettingError(
                "added after the stack was synthesized: the handler role's policies were laid out "
                "then, for the cleanups there were. Add every IotJobCleanup before synthesizing "
                "(app.synth(), Template.from_stack)."
            )
        _check_fits([*self._permissions, permissions])

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        query_interval, total_timeout = WAITER_INTERVAL, WAITER_TIMEOUT
        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        self.log_group = log_group  # the handler's logs, and its metrics (EMF lines)
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
        self._permissions: list[Permissions] = []
        self._laid_out = False
        acknowledge_framework_findings(self, self.role, self.provider, [on_event, is_complete])
        Aspects.of(stack).add(_LayOutPolicies(self), priority=AspectPriority.MUTATING)

    def add(self, cleanup: IotJobCleanup, permissions: Permissions) -> None:
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
        packed, plans = layout(self._permissions)
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
                    policy = SelectionPolicy(
                        permissions.cleanup,
                        "SelectionPolicy",
                        permissions.selection,
                        permissions.actions,
                        self.role,
                    )
                    for stage in permissions.cleanup.stages:
                        stage.node.add_dependency(policy)


def _check_fits(everyone: list[Permissions]) -> None:
    _, policies = layout(everyone)
    if len(policies) > MAX_MANAGED_POLICIES:
        raise SettingError(too_many_policies(everyone, len(policies)))


@jsii.implements(IAspect)
class _LayOutPolicies:
    """Lays out the provider's job policies when synthesis reaches its stack: every cleanup
    is known by then, and the stack's other constructs are still to be visited."""

    def __init__(self, provider: CleanupProvider) -> None:
        self._provider = provider
        self._stack_path = Stack.of(provider).node.path

    def visit(self, node: IConstruct) -> None:
        if node.node.path == self._stack_path:
            self._provider.lay_out()
