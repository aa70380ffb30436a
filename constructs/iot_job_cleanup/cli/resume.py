"""``resume``: finish the cleanups of a stack being deleted or in DELETE_FAILED.

A stack's cleanups are its ``Custom::IotJobCleanup`` resources not deleted yet (a retained one
keeps its jobs, as at ``cdk destroy``). Their properties are the template's, evaluated by
``cfn``'s one intrinsic evaluator over the live source (``StackValues``: what DescribeStacks
and ListStackResources tell). What CloudFormation does not tell (``Fn::GetAtt``, an import, a
condition) is read from the Delete input the Provider's waiter state machine was started with.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from ..cfn import RESOURCE_TYPE, RETAIN_POLICIES, Intrinsics, StackValues, UnresolvableError
from ..cfn.intrinsics import is_list_type
from ..engine import Engine
from .clients import Clients, pages
from .errors import EXIT_USAGE
from .run import Run

__all__ = [
    "FINISHED",
    "RESUMABLE_STATUSES",
    "StackRead",
    "cleanup_properties",
    "describe",
    "no_such_stack",
    "properties_from_the_waiter",
    "read_stack",
    "resume_runs",
    "stack_cleanups",
    "stack_values",
]

RESUMABLE_STATUSES = frozenset({"DELETE_IN_PROGRESS", "DELETE_FAILED"})
FINISHED = ("DELETE_COMPLETE", "DELETE_SKIPPED")  # a resource's Delete done, or never to come
WAITER_TYPE = "AWS::StepFunctions::StateMachine"  # the Provider's waiter


def describe(cloudformation: Any, stack: str) -> dict[str, Any] | None:
    """DescribeStacks' answer for ``stack``, or None when it does not exist."""
    from botocore.exceptions import ClientError

    try:
        (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in str(error.get("Message", "")):
            return None
        raise
    return dict(description)


def no_such_stack(stack: str, region: str) -> str:
    """What to check when ``stack`` is not found (one sentence, without its end)."""
    return (
        f"Stack {stack} does not exist in {region}. Check --stack (the stack's name or id; a deleted "
        "stack is found by its id only), --region and --profile"
    )


def resume_runs(engine: Engine, clients: Clients, args: argparse.Namespace, out: TextIO) -> list[Run] | int:
    """A run per cleanup of ``--stack`` left to finish, or an exit code when there is none to make."""
    if describe(clients.cloudformation, args.stack) is None:
        region = clients.cloudformation.meta.region_name
        print(f"iot-job-cleanup: {no_such_stack(args.stack, region)}; nothing was changed.", file=sys.stderr)
        return EXIT_USAGE
    status = engine.stack_status(clients.cloudformation, args.stack)
    if status not in RESUMABLE_STATUSES:
        out.write(
            f"Stack {args.stack} is {status}: a cleanup acts only when its stack is torn down, so resume "
            "works on a stack being deleted or in DELETE_FAILED. Run cdk destroy first.\n"
        )
        return EXIT_USAGE
    runs = []
    for logical_id, properties in stack_cleanups(clients, args.stack, out):
        request = engine.CleanupRequest.from_properties(properties)
        comment = (
            f"Cancelled by iot-job-cleanup resume of {args.stack}/{logical_id}; "
            "deleted once its devices finish."
        )
        runs.append(Run(request, f"{args.stack}/{logical_id}", comment, resumed=True))
    if not runs:
        out.write(f"Stack {args.stack} has no cleanup left to finish.\n")
    return runs


def stack_values(
    description: dict[str, Any], resources: list[Any], template: dict[str, Any], region: str
) -> StackValues:
    """The live source of a stack's values: DescribeStacks' name, id and parameters (list types
    as lists, as Ref gives them), ListStackResources' physical ids, the region asked."""
    declared = template.get("Parameters", {})

    def value(parameter: dict[str, Any]) -> str | list[str]:
        text = parameter.get("ResolvedValue") or parameter.get("ParameterValue", "")
        listed = is_list_type(declared.get(parameter["ParameterKey"], {}).get("Type", "String"))
        return text.split(",") if listed else text

    return StackValues(
        name=description["StackName"],
        stack_id=description["StackId"],
        region=region,
        parameters={p["ParameterKey"]: value(p) for p in description.get("Parameters", [])},
        physical_ids={r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources},
    )


@dataclass(frozen=True)
class StackRead:
    """What CloudFormation tells of a stack at one moment: DescribeStacks' description, every
    ListStackResources summary, the processed template, and ``cfn``'s evaluator over them."""

    description: dict[str, Any]
    resources: list[Any]
    template: dict[str, Any]
    intrinsics: Intrinsics

    def retained(self, logical_id: str) -> bool:
        """Its ``DeletionPolicy`` keeps it, and its jobs, when the stack is deleted."""
        return self.template["Resources"][logical_id].get("DeletionPolicy") in RETAIN_POLICIES


def read_stack(clients: Clients, stack: str) -> StackRead:
    """The stack as CloudFormation tells it now (DescribeStacks, ListStackResources, GetTemplate)."""
    cloudformation = clients.cloudformation
    (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    resources = list(pages(cloudformation, "list_stack_resources", "StackResourceSummaries", StackName=stack))
    body = cloudformation.get_template(StackName=stack, TemplateStage="Processed")["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    intrinsics = Intrinsics(stack_values(description, resources, template, cloudformation.meta.region_name))
    return StackRead(description, resources, template, intrinsics)


def cleanup_properties(clients: Clients, read: StackRead, logical_id: str) -> dict[str, Any]:
    """A cleanup resource's properties (``ServiceToken`` left out), resolved from the template,
    else from the Delete input of the Provider's waiter. ``UnresolvableError`` when neither tells:
    its message names what the properties depend on."""
    declared = read.template["Resources"][logical_id]
    raw = {k: v for k, v in declared.get("Properties", {}).items() if k != "ServiceToken"}
    try:
        return read.intrinsics.render(raw)
    except UnresolvableError:
        properties = properties_from_the_waiter(clients, read.resources, logical_id)
        if properties is None:
            raise
        return properties


def stack_cleanups(clients: Clients, stack: str, out: TextIO) -> list[tuple[str, dict[str, Any]]]:
    """The stack's cleanup resources not deleted yet, with their properties resolved."""
    read = read_stack(clients, stack)
    found = []
    for resource in read.resources:
        logical_id = resource["LogicalResourceId"]
        if resource["ResourceType"] != RESOURCE_TYPE or resource["ResourceStatus"] in FINISHED:
            continue
        if read.retained(logical_id):
            out.write(f"{stack}/{logical_id}: DeletionPolicy Retain: its jobs stay, as at cdk destroy.\n")
            continue
        try:
            properties = cleanup_properties(clients, read, logical_id)
        except UnresolvableError as exc:
            out.write(
                f"{stack}/{logical_id}: its properties depend on {exc}, which CloudFormation does not "
                "tell, and the provider's waiter has no Delete of it on record. Delete its jobs with "
                "`iot-job-cleanup delete --job-id ...`.\n"
            )
            continue
        found.append((logical_id, properties))
    return found


def properties_from_the_waiter(
    clients: Clients, resources: list[Any], logical_id: str
) -> dict[str, Any] | None:
    """The resolved properties CloudFormation sent with the resource's last Delete: the
    Provider's waiter state machine got them as its execution input."""
    machines = [
        r["PhysicalResourceId"]
        for r in resources
        if r["ResourceType"] == WAITER_TYPE and r.get("PhysicalResourceId")
    ]
    for machine in machines:
        executions = clients.states.list_executions(stateMachineArn=machine, maxResults=100).get(
            "executions", []
        )
        for execution in sorted(executions, key=lambda e: e.get("startDate", 0), reverse=True):
            event = json.loads(
                clients.states.describe_execution(executionArn=execution["executionArn"])["input"]
            )
            if event.get("LogicalResourceId") == logical_id and event.get("RequestType") == "Delete":
                return {k: v for k, v in event.get("ResourceProperties", {}).items() if k != "ServiceToken"}
    return None
