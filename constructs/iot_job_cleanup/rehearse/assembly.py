"""Reading a synthesized cloud assembly: its stacks (those of nested cloud assemblies, a CDK
``Stage``'s ``assembly-*`` folders, and nested stacks, CDK's ``NestedStack``, included), the
region of each, the stacks each depends on, their thing groups and things, and each cleanup
resource with its properties as CloudFormation would send them (intrinsic functions evaluated
offline by ``cfn``; ``Fn::ImportValue`` from the exports of the assembly's stacks) and the
handler functions behind its ServiceToken."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cfn import RESOURCE_TYPE, RETAIN_POLICIES, Intrinsics, OfflineValues, UnresolvableError, as_sent
from ..cfn.offline import Exports
from .base import ACCOUNT, REGION, RehearsalError
from .oracle import Filters

__all__ = [
    "NESTED_STACK_TYPE",
    "CleanupResource",
    "HandlerFunction",
    "StackPlan",
    "get_att_target",
    "handler_functions",
    "read_assembly",
]

NESTED_STACK_TYPE = "AWS::CloudFormation::Stack"
_ASSET_HASH = re.compile(r"([0-9a-f]{64})\.json")


@dataclass(frozen=True)
class HandlerFunction:
    handler: str  # module.function
    asset_dir: Path
    environment: Mapping[str, str]
    timeout_seconds: float


def _whole(value: Any, default: int = 1) -> int:
    text = str(value) if value is not None else ""
    return int(text) if text.isdigit() else default


@dataclass
class CleanupResource:
    stack: str
    logical_id: str
    properties: dict[str, Any]  # as CloudFormation sends them, ServiceToken apart
    on_event: HandlerFunction
    is_complete: HandlerFunction
    service_token: Any = None  # the raw template value, e.g. {"Fn::GetAtt": [X, "Arn"]}
    deletion_policy: str = "Delete"
    region: str = REGION

    @property
    def name(self) -> str:
        return f"{self.stack}/{self.logical_id}"

    @property
    def stage(self) -> int:
        """Which stage of its cleanup this resource is (``Stage``; 1 for a cleanup of one)."""
        return _whole(self.properties.get("Stage"))

    @property
    def stages(self) -> int:
        """How many stages its cleanup has (``Stages``): one per hour of its total_timeout."""
        return _whole(self.properties.get("Stages"))

    @property
    def cleanup(self) -> str:
        """The cleanup it is a stage of: its stack and construct path (``Cleanup``); a cleanup
        of one stage is its resource."""
        path = self.properties.get("Cleanup")
        return f"{self.stack}/{path}" if self.stages > 1 and isinstance(path, str) and path else self.name

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
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{target}"


@dataclass
class StackPlan:
    """One stack to rehearse. A nested stack (an ``AWS::CloudFormation::Stack`` of its parent,
    CDK's NestedStack) has a ``parent`` and the ``parent_resource`` that holds it; its ``root``
    is the top stack, whose status its cleanups' handler reads."""

    name: str  # the stack's name in CloudFormation (a nested stack's: <parent>-<its logical id>)
    thing_groups: list[str]
    things: list[str]
    cleanups: list[CleanupResource]
    resources: Mapping[str, Any] = field(default_factory=dict)
    cdk_out: Path = Path()  # the (nested) cloud assembly's folder that holds its template
    region: str = REGION
    dependencies: tuple[str, ...] = ()  # the stacks it depends on (the manifest's, transitively)
    parent: str | None = None
    parent_resource: str | None = None
    root: str = ""

    def __post_init__(self) -> None:
        self.root = self.root or self.name


@dataclass(eq=False)
class _Stack:
    """A stack template found in the assembly, before it is read."""

    name: str
    template: Mapping[str, Any]
    directory: Path
    region: str = REGION
    artifact: str = ""  # a top stack's artifact id in its manifest
    ids: tuple[str, ...] = ()  # what --stack may call it: artifact id, name, display name
    depends_on: tuple[str, ...] = ()  # artifact ids of the same manifest
    parent: _Stack | None = None
    parent_resource: str | None = None

    @property
    def root(self) -> _Stack:
        return self if self.parent is None else self.parent.root


def read_assembly(
    cdk_out: Path,
    stack_names: list[str] | None = None,
    *,
    parameters: Mapping[str, str] | None = None,
    keep_empty: bool = False,
) -> list[StackPlan]:
    """The stacks of a cloud assembly that have cleanup resources (all of them: ``keep_empty``),
    with the stacks of its nested cloud assemblies and nested stacks, and the parents of the
    nested stacks kept; each stack before those that depend on it, a parent before its nested
    stacks."""
    if not (cdk_out / "manifest.json").is_file():
        raise RehearsalError(f"{cdk_out / 'manifest.json'} does not exist: run `cdk synth` first.")
    found: list[_Stack] = []
    _stacks_in(cdk_out, found)
    _unique_names(found)
    found = _in_dependency_order(found)
    dependencies = _dependencies(found)
    given = dict(parameters or {})
    exports = Exports()
    sources: dict[int, OfflineValues] = {}
    for stack in found:  # top stacks first: a nested stack's parameters are its parent's values
        if stack.parent is None:
            sources[id(stack)] = _source(stack, given, exports)
    for stack in found:
        if stack.parent is not None:
            sources[id(stack)] = _source(stack, {**given, **_handed_down(stack, sources)}, exports)
    chosen = [s for s in found if not stack_names or any(n in stack_names for n in s.root.ids)]
    plans = [_plan_stack(stack, sources[id(stack)], dependencies) for stack in chosen]
    needed = {plan.name for plan in plans if plan.cleanups or keep_empty}
    for stack in chosen:  # the parents of a nested stack with cleanups are rehearsed with it
        if stack.name in needed:
            parent = stack.parent
            while parent is not None:
                needed.add(parent.name)
                parent = parent.parent
    plans = [plan for plan in plans if plan.name in needed]
    if not keep_empty and not plans:
        raise RehearsalError(f"No stack in {cdk_out} has an IotJobCleanup ({RESOURCE_TYPE}) resource.")
    return plans


def _environment(environment: Any) -> str:
    """The region of aws://ACCOUNT/REGION; an environment-agnostic stack's is the offline one."""
    parts = str(environment or "").removeprefix("aws://").split("/")
    region = parts[1] if len(parts) > 1 else ""
    return region if region and region != "unknown-region" and "$" not in region else REGION


def _stacks_in(directory: Path, found: list[_Stack]) -> None:
    """The stacks of the cloud assembly in ``directory`` and of its nested ones (a Stage's)."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise RehearsalError(f"{manifest_path} does not exist: the cloud assembly is incomplete.")
    manifest = json.loads(manifest_path.read_text())
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        properties = artifact.get("properties", {})
        if artifact.get("type") == "cdk:cloud-assembly":
            _stacks_in(directory / properties["directoryName"], found)
        elif artifact.get("type") == "aws:cloudformation:stack":
            name = properties.get("stackName") or artifact_id
            stack = _Stack(
                name,
                json.loads((directory / properties["templateFile"]).read_text()),
                directory,
                region=_environment(artifact.get("environment")),
                artifact=artifact_id,
                ids=(artifact_id, name, artifact.get("displayName") or name),
                depends_on=tuple(artifact.get("dependencies", [])),
            )
            found.append(stack)
            _nested_in(stack, found)


def _unique_names(found: list[_Stack]) -> None:
    """Stacks of one name (in two regions, as CloudFormation allows) go by their artifact ids."""
    names = [stack.name for stack in found if stack.parent is None]
    for stack in found:
        if stack.parent is None and names.count(stack.name) > 1:
            stack.name = stack.artifact
    for stack in found:
        if stack.parent is not None:
            stack.name = f"{stack.parent.name}-{stack.parent_resource}"


def _nested_in(stack: _Stack, found: list[_Stack]) -> None:
    """The nested stacks of ``stack`` whose templates are in the assembly, depth first."""
    for logical_id, resource in stack.template.get("Resources", {}).items():
        if resource.get("Type") != NESTED_STACK_TYPE:
            continue
        path = _nested_template(stack.directory, resource)
        if path is None:
            continue  # a template from elsewhere (a TemplateURL of its own): not this app's to rehearse
        nested = _Stack(
            f"{stack.name}-{logical_id}",
            json.loads(path.read_text()),
            stack.directory,
            region=stack.region,
            parent=stack,
            parent_resource=logical_id,
        )
        found.append(nested)
        _nested_in(nested, found)


def _asset_paths(directory: Path) -> dict[str, Path]:
    """Asset hash -> its file or folder, from the assembly's asset manifests."""
    paths: dict[str, Path] = {}
    for manifest in sorted(directory.glob("*.assets.json")):
        for asset_hash, asset in json.loads(manifest.read_text()).get("files", {}).items():
            source = asset.get("source", {}).get("path")
            if isinstance(source, str):
                paths[asset_hash] = directory / source
    return paths


def _nested_template(directory: Path, resource: Mapping[str, Any]) -> Path | None:
    """A nested stack's template file: from the CLI's asset metadata, else from the hash in
    its TemplateURL."""
    asset = resource.get("Metadata", {}).get("aws:asset:path")
    if isinstance(asset, str) and (directory / asset).is_file():
        return directory / asset
    match = _ASSET_HASH.search(json.dumps(resource.get("Properties", {}).get("TemplateURL", "")))
    path = _asset_paths(directory).get(match.group(1)) if match else None
    return path if path is not None and path.is_file() else None


def _in_dependency_order(found: list[_Stack]) -> list[_Stack]:
    """Each top stack after the stacks it depends on (manifest order otherwise), each
    followed by its nested stacks."""
    tops = [stack for stack in found if stack.parent is None]
    by_artifact = {(stack.directory, stack.artifact): stack for stack in tops}
    ordered: list[_Stack] = []
    visiting: set[_Stack] = set()

    def visit(stack: _Stack) -> None:
        if stack in ordered:
            return
        if stack in visiting:
            raise RehearsalError(f"the stacks of the cloud assembly depend on each other: {stack.name}")
        visiting.add(stack)
        for artifact in stack.depends_on:
            if (stack.directory, artifact) in by_artifact:
                visit(by_artifact[(stack.directory, artifact)])
        ordered.append(stack)

    for stack in tops:
        visit(stack)
    return [nested for top in ordered for nested in found if nested.root is top]


def _dependencies(found: list[_Stack]) -> dict[str, tuple[str, ...]]:
    """Each top stack's dependencies, transitively (a stack that depends on one without
    cleanups still waits for what that one depends on), by name, in dependency order."""
    by_artifact = {(s.directory, s.artifact): s for s in found if s.parent is None}
    closure: dict[str, tuple[str, ...]] = {}
    for stack in found:  # in dependency order: a stack's dependencies are done before it
        if stack.parent is not None:
            continue
        direct = [
            by_artifact[(stack.directory, a)] for a in stack.depends_on if (stack.directory, a) in by_artifact
        ]
        names = {name for d in direct for name in (d.name, *closure[d.name])}
        closure[stack.name] = tuple(s.name for s in found if s.name in names)
    return closure


def _source(stack: _Stack, given: Mapping[str, str], exports: Exports) -> OfflineValues:
    source = OfflineValues(stack.name, stack.template, given, region=stack.region, exports=exports)
    exports.add(source)
    return source


def _handed_down(stack: _Stack, sources: Mapping[int, OfflineValues]) -> dict[str, str]:
    """A nested stack's parameter values: its parent's ``Parameters`` for it, those known offline."""
    assert stack.parent is not None and stack.parent_resource is not None
    parent = Intrinsics(sources[id(stack.parent)], strict=False)
    resource = stack.parent.template["Resources"][stack.parent_resource]
    values: dict[str, str] = {}
    for name, value in resource.get("Properties", {}).get("Parameters", {}).items():
        rendered = parent.render(value)
        if parent.resolved(rendered) and isinstance(rendered, str | list):
            values[name] = ",".join(map(str, rendered)) if isinstance(rendered, list) else rendered
    return values


def _plan_stack(
    stack: _Stack, source: OfflineValues, dependencies: Mapping[str, tuple[str, ...]]
) -> StackPlan:
    name, template, cdk_out = stack.name, stack.template, stack.directory
    resources = template.get("Resources", {})
    intrinsics = Intrinsics(source)
    lenient = Intrinsics(source, strict=False)

    def names_of(resource_type: str, key: str) -> list[str]:
        values = [
            lenient.render(r["Properties"][key])
            for r in resources.values()
            if r["Type"] == resource_type and key in r.get("Properties", {})
        ]
        return [value for value in values if isinstance(value, str) and lenient.resolved(value)]

    cleanups = [
        _plan_cleanup(name, logical_id, resource, resources, intrinsics, cdk_out, stack.region)
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
        region=stack.region,
        dependencies=dependencies.get(stack.name, ()),
        parent=stack.parent.name if stack.parent is not None else None,
        parent_resource=stack.parent_resource,
        root=stack.root.name,
    )


def _plan_cleanup(
    stack: str,
    logical_id: str,
    resource: Mapping[str, Any],
    resources: Mapping[str, Any],
    intrinsics: Intrinsics,
    cdk_out: Path,
    region: str,
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
        stack,
        logical_id,
        properties,
        on_event,
        is_complete,
        service_token=token,
        deletion_policy=policy,
        region=region,
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
    """The function's code folder: from the CLI's asset metadata, else by the hash of its S3
    key, from the asset manifests (a Stage's stacks share the top assembly's assets) or as
    ``asset.<hash>`` beside the template."""
    asset = function.get("Metadata", {}).get("aws:asset:path")
    if isinstance(asset, str) and (cdk_out / asset).is_dir():
        return cdk_out / asset
    key = function["Properties"].get("Code", {}).get("S3Key")
    if isinstance(key, str) and key.endswith(".zip"):
        asset_hash = key.removesuffix(".zip")
        for path in (_asset_paths(cdk_out).get(asset_hash), cdk_out / f"asset.{asset_hash}"):
            if path is not None and path.is_dir():
                return path
    raise RehearsalError(f"{name}: the handler's asset folder is not in {cdk_out}.")
