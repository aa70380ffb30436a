"""Reading a synthesized cloud assembly: its stacks, their thing groups and things, and each
cleanup resource with its properties as CloudFormation would send them (intrinsic functions
evaluated offline by ``cfn``) and the handler functions behind its ServiceToken."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cfn import RESOURCE_TYPE, RETAIN_POLICIES, Intrinsics, UnresolvableError, as_sent
from .base import ACCOUNT, REGION, RehearsalError
from .oracle import Filters

__all__ = [
    "CleanupResource",
    "HandlerFunction",
    "StackPlan",
    "get_att_target",
    "handler_functions",
    "read_assembly",
]


@dataclass(frozen=True)
class HandlerFunction:
    handler: str  # module.function
    asset_dir: Path
    environment: Mapping[str, str]
    timeout_seconds: float


@dataclass
class CleanupResource:
    stack: str
    logical_id: str
    properties: dict[str, Any]  # as CloudFormation sends them, ServiceToken apart
    on_event: HandlerFunction
    is_complete: HandlerFunction
    service_token: Any = None  # the raw template value, e.g. {"Fn::GetAtt": [X, "Arn"]}
    deletion_policy: str = "Delete"

    @property
    def name(self) -> str:
        return f"{self.stack}/{self.logical_id}"

    @property
    def job_ids(self) -> list[str]:
        """The jobs it names; empty strings (an empty CommaDelimitedList gives [""]) are none."""
        return [job_id for job_id in self.properties.get("JobIds", []) if job_id]

    @property
    def filters(self) -> Filters:
        return Filters.of(self.properties)

    @property
    def forced(self) -> bool:
        return str(self.properties.get("Force", "false")).lower() == "true"

    @property
    def drain_seconds(self) -> float | None:
        value = self.properties.get("DrainSeconds")
        return None if value in (None, "") else float(value)

    @property
    def retained(self) -> bool:
        return self.deletion_policy in RETAIN_POLICIES

    @property
    def service_token_arn(self) -> str:
        target = get_att_target(self.service_token) or "unknown"
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{target}"


@dataclass
class StackPlan:
    name: str
    thing_groups: list[str]
    things: list[str]
    cleanups: list[CleanupResource]
    resources: Mapping[str, Any] = field(default_factory=dict)
    cdk_out: Path = Path()


def read_assembly(
    cdk_out: Path,
    stack_names: list[str] | None = None,
    *,
    parameters: Mapping[str, str] | None = None,
    keep_empty: bool = False,
) -> list[StackPlan]:
    """The stacks of a cloud assembly that have cleanup resources (all of them: ``keep_empty``)."""
    manifest_path = cdk_out / "manifest.json"
    if not manifest_path.is_file():
        raise RehearsalError(f"{manifest_path} does not exist: run `cdk synth` first.")
    manifest = json.loads(manifest_path.read_text())
    plans = []
    for name, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack" or (stack_names and name not in stack_names):
            continue
        template = json.loads((cdk_out / artifact["properties"]["templateFile"]).read_text())
        plan = _plan_stack(name, template, cdk_out, parameters or {})
        if plan.cleanups or keep_empty:
            plans.append(plan)
    if not keep_empty and not plans:
        raise RehearsalError(f"No stack in {cdk_out} has an IotJobCleanup ({RESOURCE_TYPE}) resource.")
    return plans


def _plan_stack(name: str, template: Mapping[str, Any], cdk_out: Path, given: Mapping[str, str]) -> StackPlan:
    resources = template.get("Resources", {})
    intrinsics = Intrinsics.offline(name, template, given)
    lenient = Intrinsics.offline(name, template, given, strict=False)

    def names_of(resource_type: str, key: str) -> list[str]:
        values = [
            lenient.render(r["Properties"][key])
            for r in resources.values()
            if r["Type"] == resource_type and key in r.get("Properties", {})
        ]
        return [value for value in values if isinstance(value, str) and lenient.resolved(value)]

    cleanups = [
        _plan_cleanup(name, logical_id, resource, resources, intrinsics, cdk_out)
        for logical_id, resource in resources.items()
        if resource["Type"] == RESOURCE_TYPE
    ]
    return StackPlan(
        name,
        names_of("AWS::IoT::ThingGroup", "ThingGroupName"),
        names_of("AWS::IoT::Thing", "ThingName"),
        cleanups,
        resources,
        cdk_out,
    )


def _plan_cleanup(
    stack: str,
    logical_id: str,
    resource: Mapping[str, Any],
    resources: Mapping[str, Any],
    intrinsics: Intrinsics,
    cdk_out: Path,
) -> CleanupResource:
    name = f"{stack}/{logical_id}"
    properties: dict[str, Any] = {}
    for key, value in resource.get("Properties", {}).items():
        if key == "ServiceToken":
            continue
        try:
            properties[key] = as_sent(intrinsics.render(value))
        except UnresolvableError as exc:
            raise RehearsalError(f"{name} {key}: {exc}") from None
    _check_selection(name, properties)
    token = resource.get("Properties", {}).get("ServiceToken")
    on_event, is_complete = handler_functions(name, token, resources, cdk_out)
    try:
        policy = str(intrinsics.render(resource.get("DeletionPolicy", "Delete")))
    except UnresolvableError as exc:
        raise RehearsalError(str(exc)) from None
    return CleanupResource(
        stack, logical_id, properties, on_event, is_complete, service_token=token, deletion_policy=policy
    )


def _check_selection(name: str, properties: Mapping[str, Any]) -> None:
    """JobIds and the filters must have the shapes the contract gives them, and one is needed."""
    job_ids = properties.get("JobIds", [])
    if not isinstance(job_ids, list) or not all(isinstance(job_id, str) for job_id in job_ids):
        raise RehearsalError(f"{name}: JobIds is {job_ids!r}, not a list of job ids.")
    tags = properties.get("JobTags", [])
    if not isinstance(tags, list) or not all(
        isinstance(tag, dict) and isinstance(tag.get("Key"), str) and isinstance(tag.get("Value", ""), str)
        for tag in tags
    ):
        raise RehearsalError(f'{name}: JobTags is {tags!r}, not a list of {{"Key": ..., "Value": ...}}.')
    groups = properties.get("ThingGroupNames", [])
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        raise RehearsalError(f"{name}: ThingGroupNames is {groups!r}, not a list of thing group names.")
    prefix = properties.get("JobIdPrefix")
    if prefix is not None and not isinstance(prefix, str):
        raise RehearsalError(f"{name}: JobIdPrefix is {prefix!r}, not a string.")
    if "JobIds" not in properties and not (tags or groups or prefix):
        raise RehearsalError(
            f"{name}: it has none of JobIds, JobTags, ThingGroupNames and JobIdPrefix, so it selects no job."
        )
    drain = properties.get("DrainSeconds")
    if drain not in (None, ""):
        try:
            float(drain)
        except (TypeError, ValueError):
            raise RehearsalError(f"{name}: DrainSeconds is {drain!r}, not a number of seconds.") from None


def get_att_target(value: Any) -> str | None:
    """X of {"Fn::GetAtt": [X, "Arn"]} (or "X.Arn")."""
    get_att = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    if isinstance(get_att, str):
        return get_att.split(".", 1)[0]
    if isinstance(get_att, list) and get_att and isinstance(get_att[0], str):
        return get_att[0]
    return None


def handler_functions(
    name: str, service_token: Any, resources: Mapping[str, Any], cdk_out: Path
) -> tuple[HandlerFunction, HandlerFunction]:
    """The user functions behind a Provider framework's ServiceToken, in this template."""
    framework = resources.get(get_att_target(service_token) or "", {})
    framework_env = framework.get("Properties", {}).get("Environment", {}).get("Variables", {})
    if not all(
        key in framework_env for key in ("USER_ON_EVENT_FUNCTION_ARN", "USER_IS_COMPLETE_FUNCTION_ARN")
    ):
        raise RehearsalError(
            f"{name}: its ServiceToken {json.dumps(service_token)} is not a Provider framework "
            "function of the template, so the rehearsal cannot find its handler."
        )

    def user_function(variable: str) -> HandlerFunction:
        logical_id = get_att_target(framework_env[variable]) or ""
        function = resources.get(logical_id)
        if not function:
            raise RehearsalError(f"{name}: {variable} names no function of the template.")
        return HandlerFunction(
            handler=function["Properties"]["Handler"],
            asset_dir=_asset_dir(function, cdk_out, name),
            environment=function["Properties"].get("Environment", {}).get("Variables", {}),
            timeout_seconds=float(function["Properties"].get("Timeout", 3)),
        )

    return user_function("USER_ON_EVENT_FUNCTION_ARN"), user_function("USER_IS_COMPLETE_FUNCTION_ARN")


def _asset_dir(function: Mapping[str, Any], cdk_out: Path, name: str) -> Path:
    """The function's code folder: from the CLI's asset metadata, else from its S3 key."""
    asset = function.get("Metadata", {}).get("aws:asset:path")
    key = function["Properties"].get("Code", {}).get("S3Key")
    if not asset and isinstance(key, str) and key.endswith(".zip"):
        asset = f"asset.{key.removesuffix('.zip')}"
    if not asset or not (cdk_out / asset).is_dir():
        raise RehearsalError(f"{name}: the handler's asset folder is not in {cdk_out}.")
    return cdk_out / asset
