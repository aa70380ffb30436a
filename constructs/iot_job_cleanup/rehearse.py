"""Rehearse `cdk deploy`, `cdk deploy` of an update and `cdk destroy` of a CDK app's IotJobCleanup
resources, offline, by CloudFormation's rules.

    python -m iot_job_cleanup.rehearse [--cdk-out cdk.out] [--update-from old.out] ...

Reads a synthesized cloud assembly, starts an AWS-protocol endpoint on loopback (moto's server:
IoT with the DeleteJob lifecycle, see ``emulator``, and CloudFormation's stack records, which the
handler asks for its stack's status), then plays CloudFormation:

- **deploy**: creates the stacks' thing groups, things and the jobs their cleanup resources
  name, and sends each cleanup resource its Create (stack ``CREATE_IN_PROGRESS``);
- **runtime**: plays the creator of jobs at runtime for every cleanup with filters
  (``JobTags``, ``ThingGroupNames``, ``JobIdPrefix``): jobs with generated ids that match
  every filter, some of them SCHEDULED, and bystanders that miss exactly one filter;
- **update** (``--update-from OLD``: OLD is deployed first): refuses a changed ``ServiceToken``
  as CloudFormation does; sends Create to new cleanup resources and Update to changed ones
  (``UPDATE_IN_PROGRESS``), then Delete to the ones the new template no longer has
  (``UPDATE_COMPLETE_CLEANUP_IN_PROGRESS``), and checks that no job was touched;
- **destroy**: sends every cleanup resource whose ``DeletionPolicy`` is not ``Retain`` its
  Delete, all in parallel (``DELETE_IN_PROGRESS``).

Each request runs the handler code from the asset folder in the cloud assembly (what would
really be uploaded) the way the Provider framework does: ``on_event`` once, then
``is_complete`` every query interval until it is complete, raises, or the waiter's attempts
run out. Time runs faster by a factor, shown on screen. Exits 1 if a job is left that should
be gone, a job was touched that should not be, or a handler failed; 2 if the assembly cannot
be rehearsed (the message says why and what to pass).

Which jobs should go is decided here, not by the handler: the jobs a cleanup names, plus the
jobs whose tags, targets, id and namespace (read from the endpoint) match every filter of a
cleanup. Every other job must be left exactly as it was, neither deleted nor cancelled.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import inspect
import json
import logging
import math
import re
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TextIO

from .cleanup import RESOURCE_TYPE
from .provider import replay_delete

if TYPE_CHECKING:  # the emulator extra (moto, boto3) is imported only when a rehearsal runs
    from .emulator import DeletionLifecycle, DeletionTime

__all__ = ["RehearsalError", "main", "rehearse"]

ACCOUNT = "123456789012"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "rehearsal", "aws_secret_access_key": "rehearsal"}
BYSTANDER_JOB = "bystander-job-not-in-any-cleanup"
EMULATOR_EXTRA = "pip install 'iot-job-cleanup[emulator]'"
RETAIN_POLICIES = frozenset({"Retain", "RetainExceptOnCreate"})
KEPT = "kept: DeletionPolicy Retain"
# The runtime actor: the thing group bystanders target instead of the cleanup's, the generated
# ids of a cleanup without a prefix, and how far ahead a SCHEDULED job is scheduled.
OTHER_GROUP = "rehearsal-other-fleet"
RUNTIME_ID_PREFIX = "runtime-"
SCHEDULED_AHEAD_SECONDS = 86_400.0
SERVICE_TOKEN_REFUSAL = "Modifying service token is not allowed."


class RehearsalError(Exception):
    """The cloud assembly cannot be rehearsed; the message says why."""


class UnresolvableError(RehearsalError):
    """A value a cleanup resource depends on has no value offline."""


def _require_emulator() -> None:
    """The endpoint needs the emulator extra; say how to install it instead of a traceback."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401

        from . import emulator  # noqa: F401
    except ImportError as exc:
        missing = exc.name or str(exc)
        raise RehearsalError(
            f"the rehearsal needs the emulator extra (moto's server and boto3; {missing} is not "
            f"installed): {EMULATOR_EXTRA}"
        ) from None


def __getattr__(name: str) -> Any:
    """``rehearse.DeletionTime`` and friends, imported from the emulator when first used."""
    if name in ("DeletionLifecycle", "DeletionTime", "emulated_iot"):
        from . import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- time


class ScaledClock:
    """Simulated seconds that run ``factor`` times faster than the wall clock."""

    def __init__(self, factor: float, start: float = 1_800_000_000.0) -> None:
        self.factor = factor
        self.start = start
        self._wall_start = time.monotonic()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._wall_start) * self.factor

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.factor)


# --------------------------------------------------------------------------- intrinsic functions


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()
_PLACEHOLDER = re.compile(r"<unresolved-\d+>")


def _is_list_type(parameter_type: str) -> bool:
    return "CommaDelimitedList" in parameter_type or "List<" in parameter_type


class Intrinsics:
    """CloudFormation's intrinsic functions over values known offline.

    ``Ref`` (pseudo parameters, parameters, a few resources), ``Fn::GetAtt`` (thing group
    ARNs, an AwsCustomResource's CreateJob parameters), ``Fn::Join``, ``Fn::Split``,
    ``Fn::Select``, ``Fn::Sub`` and ``Fn::ImportValue``. Parameter values: ``given``
    (``--parameter NAME=VALUE``) first, then the Default; list types split on commas. An SSM
    parameter's Default is the SSM parameter's name, never its value: it needs ``given``.

    Strict (the cleanup's properties): anything unknown raises ``UnresolvableError`` naming it and
    the way out. Lenient (an AwsCustomResource's whole call, only part of which is needed):
    it becomes a placeholder, and using a placeholder raises the original error.
    """

    def __init__(
        self,
        stack: str,
        template: Mapping[str, Any],
        given: Mapping[str, str] | None = None,
        *,
        strict: bool = True,
    ) -> None:
        self.stack = stack
        self.template = template
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.parameters: Mapping[str, Any] = template.get("Parameters", {})
        self.given = dict(given or {})
        self.strict = strict
        self._placeholders: dict[str, UnresolvableError] = {}

    def render(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.render(item) for item in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref" or key.startswith("Fn::"):
                try:
                    try:
                        return self._intrinsic(key, argument)
                    except (TypeError, ValueError, AttributeError) as exc:
                        raise UnresolvableError(
                            f"{key} {json.dumps(argument)} is malformed ({exc})."
                        ) from None
                except UnresolvableError as exc:
                    if self.strict:
                        raise
                    token = f"<unresolved-{len(self._placeholders)}>"
                    self._placeholders[token] = exc
                    return token
        rendered = {key: self.render(item) for key, item in value.items()}
        return {key: item for key, item in rendered.items() if item is not NO_VALUE}

    # -- shapes

    def _check(self, value: Any, *, lenient_too: bool = False) -> None:
        """Using a placeholder is using the value it stands for: raise why it has none. Lenient,
        placeholders pass through strings (only a part of the call may be needed)."""
        if not (self.strict or lenient_too):
            return
        for token in _PLACEHOLDER.findall(json.dumps(value, default=repr)):
            if token in self._placeholders:
                raise self._placeholders[token]

    def _string(self, value: Any, where: str) -> str:
        self._check(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        raise UnresolvableError(f"{where} needs a string here, not {value!r}.")

    def _list(self, value: Any, where: str) -> list[Any]:
        self._check(value, lenient_too=isinstance(value, str))  # a placeholder stands for a list
        if not isinstance(value, list):
            raise UnresolvableError(f"{where} needs a list here, not {value!r}.")
        return value

    # -- the functions

    def _intrinsic(self, key: str, argument: Any) -> Any:
        if key == "Ref":
            return self._ref(self._string(argument, "Ref"))
        if key == "Fn::GetAtt":
            logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            return self._get_att(logical_id, self._string(self.render(attribute), "Fn::GetAtt"))
        if key == "Fn::Join":
            separator, parts = argument
            items = self._list(self.render(parts), "Fn::Join")
            return self._string(separator, "Fn::Join").join(self._string(item, "Fn::Join") for item in items)
        if key == "Fn::Split":
            delimiter, source = argument
            return self._string(self.render(source), "Fn::Split").split(self._string(delimiter, "Fn::Split"))
        if key == "Fn::Select":
            index_value, items_value = argument
            items = self._list(self.render(items_value), "Fn::Select")
            index_text = self._string(self.render(index_value), "Fn::Select")
            if not index_text.isdigit() or int(index_text) >= len(items):
                raise UnresolvableError(f"Fn::Select index {index_text} is outside the list {items!r}.")
            return items[int(index_text)]
        if key == "Fn::Sub":
            return self._sub(argument)
        if key == "Fn::ImportValue":
            name = self._string(self.render(argument), "Fn::ImportValue")
            if name in self.given:
                return self.given[name]
            raise UnresolvableError(
                f"Fn::ImportValue {name!r} is another stack's export, which has no value offline: "
                f"pass --parameter {name}=VALUE."
            )
        raise UnresolvableError(
            f"{key} is not one of the intrinsic functions the rehearsal resolves offline."
        )

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self.render(value) for name, value in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return self._string(values[name], "Fn::Sub")
            if "." in name:
                return self._string(self._get_att(*name.split(".", 1)), "Fn::Sub")
            return self._string(self._ref(name), "Fn::Sub")

        return re.sub(r"\$\{([^}]+)\}", substitute, self._string(text, "Fn::Sub"))

    def _ref(self, name: str) -> Any:
        pseudo: dict[str, Any] = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{self.stack}/rehearsal",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self._parameter(name)
        if name in self.resources:
            return self._resource_ref(name)
        raise UnresolvableError(f"Ref {name!r} names no parameter or resource of the template.")

    def _parameter(self, name: str) -> Any:
        declared = self.parameters[name]
        parameter_type = str(declared.get("Type", "String"))
        is_list = _is_list_type(parameter_type)
        value_hint = f"--parameter {name}=VALUE" + (",VALUE... (comma-separated: a list)" if is_list else "")
        if name in self.given:
            text = self.given[name]
        elif parameter_type.startswith("AWS::SSM::Parameter::Value<"):
            raise UnresolvableError(
                f"parameter {name!r} ({parameter_type}) is read from SSM Parameter Store at deploy "
                f"time; its Default {declared.get('Default')!r} is the SSM parameter's name, not a "
                f"value. Pass {value_hint}."
            )
        elif "Default" in declared:
            text = declared["Default"]
        else:
            raise UnresolvableError(f"parameter {name!r} has no Default: pass {value_hint}.")
        if not is_list:
            return str(text)
        return [str(item) for item in text] if isinstance(text, list) else str(text).split(",")

    def _resource_ref(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        properties = resource.get("Properties", {})
        name_property = {"AWS::IoT::ThingGroup": "ThingGroupName", "AWS::IoT::Thing": "ThingName"}
        if resource.get("Type") in name_property and name_property[resource["Type"]] in properties:
            return self._string(self.render(properties[name_property[resource["Type"]]]), "Ref")
        if resource.get("Type") == "Custom::AWS":  # AwsCustomResource: its PhysicalResourceId.of(...)
            physical = self._custom_aws_call(logical_id).get("physicalResourceId", {}).get("id")
            if physical is not None:
                self._check(physical)
                return str(physical)
        raise UnresolvableError(f"Ref {logical_id} (a {resource.get('Type')}) has no value offline.")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.resources.get(logical_id, {})
        properties = resource.get("Properties", {})
        if (
            resource.get("Type") == "AWS::IoT::ThingGroup"
            and attribute == "Arn"
            and "ThingGroupName" in properties
        ):
            group = self._string(self.render(properties["ThingGroupName"]), "Fn::GetAtt")
            return f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}"
        if resource.get("Type") == "Custom::AWS":  # AwsCustomResource: answer from its Create call
            parameters = self._custom_aws_call(logical_id).get("parameters", {})
            if attribute in parameters:
                self._check(parameters[attribute])
                return str(parameters[attribute])
        raise UnresolvableError(
            f"Fn::GetAtt {logical_id}.{attribute} has no value offline: only literal job ids, "
            "parameters (--parameter NAME=VALUE), Fn::Join/Split/Select/Sub over them and "
            "AwsCustomResource CreateJob calls can be rehearsed."
        )

    def _custom_aws_call(self, logical_id: str) -> dict[str, Any]:
        create = self.resources[logical_id].get("Properties", {}).get("Create")
        lenient = Intrinsics(self.stack, self.template, self.given, strict=False)
        try:
            call = json.loads(lenient.render(create))
        except (TypeError, ValueError):
            raise UnresolvableError(f"{logical_id}: its Create call cannot be read offline.") from None
        self._placeholders.update(lenient._placeholders)
        return call if isinstance(call, dict) else {}


def _as_sent(value: Any) -> Any:
    """Property values as CloudFormation hands them to a custom resource: scalars as strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return [_as_sent(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_sent(item) for key, item in value.items()}
    return value


# --------------------------------------------------------------------------- the cloud assembly


@dataclass(frozen=True)
class HandlerFunction:
    handler: str  # module.function
    asset_dir: Path
    environment: Mapping[str, str]
    timeout_seconds: float


@dataclass(frozen=True)
class JobFacts:
    """What the endpoint knows of a job: enough to tell which cleanup selects it."""

    job_id: str
    status: str
    targets: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    namespace_id: str | None = None
    devices_busy: int = 0  # executions in progress


@dataclass(frozen=True)
class Filters:
    """A cleanup's filters for jobs created at runtime (``JobTags`` AND ``ThingGroupNames`` AND
    ``JobIdPrefix``), and the namespace its jobs are in."""

    tags: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs
    thing_groups: tuple[str, ...] = ()
    prefix: str | None = None
    namespace_id: str | None = None

    @classmethod
    def of(cls, properties: Mapping[str, Any]) -> Filters:
        tags = properties.get("JobTags") or []
        return cls(
            tags=tuple(sorted((tag["Key"], tag.get("Value", "")) for tag in tags)),
            thing_groups=tuple(properties.get("ThingGroupNames") or ()),
            prefix=properties.get("JobIdPrefix") or None,
            namespace_id=properties.get("NamespaceId") or None,
        )

    @property
    def given(self) -> bool:
        return bool(self.tags or self.thing_groups or self.prefix)

    def describe(self) -> str:
        """As the handler words them: tags fleet=demo AND thing groups a or b AND id prefix 'ota-'."""
        from .engine import load_engine

        selection = load_engine().Selection(
            tags=self.tags, thing_groups=self.thing_groups, prefix=self.prefix
        )
        return str(selection.describe())

    def selects(self, job: JobFacts) -> bool:
        """Whether the job matches every filter (and is in the cleanup's namespace).

        Written apart from the handler's on purpose: the rehearsal judges the handler's
        deletions by it, so a handler that ignored a filter would be caught.
        """
        return (
            self.given
            and job.namespace_id == self.namespace_id
            and (self.prefix is None or job.job_id.startswith(self.prefix))
            and all(job.tags.get(key) == value for key, value in self.tags)
            and (
                not self.thing_groups
                or any(
                    target.endswith(f":thinggroup/{group}")
                    for target in job.targets
                    for group in self.thing_groups
                )
            )
        )

    def listings(self) -> list[tuple[str, dict[str, str]]]:
        """The handler's ListJobs listings for these filters, by the names its discovery gives
        them: one per thing group, then the SCHEDULED jobs (which a thing group listing leaves
        out, aws-cli#8924); without thing groups, all jobs."""
        if not self.thing_groups:
            return [("all jobs", {})]
        return [
            *((f"thing group {group}", {"thingGroupName": group}) for group in self.thing_groups),
            ("scheduled jobs", {"status": "SCHEDULED"}),
        ]


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
        target = _get_att_target(self.service_token) or "unknown"
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
    lenient = Intrinsics(name, template, given, strict=False)

    def names_of(resource_type: str, key: str) -> list[str]:
        values = [
            lenient.render(r["Properties"][key])
            for r in resources.values()
            if r["Type"] == resource_type and key in r.get("Properties", {})
        ]
        return [value for value in values if isinstance(value, str) and not _PLACEHOLDER.search(value)]

    intrinsics = Intrinsics(name, template, given)
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
    properties: dict[str, Any] = {}
    for key, value in resource.get("Properties", {}).items():
        if key == "ServiceToken":
            continue
        try:
            properties[key] = _as_sent(intrinsics.render(value))
        except UnresolvableError as exc:
            raise UnresolvableError(f"{stack}/{logical_id} {key}: {exc}") from None
    _check_selection(f"{stack}/{logical_id}", properties)
    token = resource.get("Properties", {}).get("ServiceToken")
    on_event, is_complete = _handler_functions(f"{stack}/{logical_id}", token, resources, cdk_out)
    policy = resource.get("DeletionPolicy", "Delete")
    return CleanupResource(
        stack,
        logical_id,
        properties,
        on_event,
        is_complete,
        service_token=token,
        deletion_policy=str(intrinsics.render(policy)),
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


def _get_att_target(value: Any) -> str | None:
    """X of {"Fn::GetAtt": [X, "Arn"]} (or "X.Arn")."""
    get_att = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    if isinstance(get_att, str):
        return get_att.split(".", 1)[0]
    if isinstance(get_att, list) and get_att and isinstance(get_att[0], str):
        return get_att[0]
    return None


def _handler_functions(
    name: str, service_token: Any, resources: Mapping[str, Any], cdk_out: Path
) -> tuple[HandlerFunction, HandlerFunction]:
    """The user functions behind a Provider framework's ServiceToken, in this template."""
    framework = resources.get(_get_att_target(service_token) or "", {})
    framework_env = framework.get("Properties", {}).get("Environment", {}).get("Variables", {})
    if not all(
        key in framework_env for key in ("USER_ON_EVENT_FUNCTION_ARN", "USER_IS_COMPLETE_FUNCTION_ARN")
    ):
        raise RehearsalError(
            f"{name}: its ServiceToken {json.dumps(service_token)} is not a Provider framework "
            "function of the template, so the rehearsal cannot find its handler."
        )

    def user_function(variable: str) -> HandlerFunction:
        logical_id = _get_att_target(framework_env[variable]) or ""
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


def load_handler(function: HandlerFunction) -> ModuleType:
    """Import the handler (a package, or a module as before 0.2) from its asset folder,
    under a name of its own."""
    module_name = function.handler.rsplit(".", 1)[0]
    name = f"rehearsal_{module_name}_{uuid.uuid4().hex[:8]}"
    package = function.asset_dir / module_name
    if (package / "__init__.py").is_file():
        spec = importlib.util.spec_from_file_location(
            name, package / "__init__.py", submodule_search_locations=[str(package)]
        )
    elif (function.asset_dir / f"{module_name}.py").is_file():
        spec = importlib.util.spec_from_file_location(name, function.asset_dir / f"{module_name}.py")
    else:
        raise RehearsalError(f"{package} does not exist: the asset folder does not hold the handler.")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- the endpoint


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def iot_endpoint(
    clock: ScaledClock, deletion: DeletionTime, list_lag_seconds: float = 0.0
) -> Iterator[tuple[str, DeletionLifecycle]]:
    """moto's server on a free loopback port (IoT with the DeleteJob lifecycle, and
    CloudFormation's stack records); stopped on exit."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.iot.models import iot_backends
    from moto.server import ThreadedMotoServer

    from .emulator import emulated_iot

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    iot_backends[ACCOUNT][REGION].reset()  # moto's state is per process: start empty
    cloudformation_backends[ACCOUNT][REGION].reset()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        with emulated_iot(
            ACCOUNT, REGION, clock=clock.now, deletion_time=deletion, list_lag_seconds=list_lag_seconds
        ) as lifecycle:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}", lifecycle
    finally:
        server.stop()


def iot_client(endpoint: str, config: Any = None) -> Any:
    import boto3

    return boto3.client("iot", endpoint_url=endpoint, region_name=REGION, config=config, **CREDENTIALS)


def deploy(plans: list[StackPlan], endpoint: str, lifecycle: DeletionLifecycle) -> None:
    """Create what the stacks would have: groups, things, and the jobs their cleanups name.

    Jobs are created over the wire, then put in the state a fleet leaves them in by teardown
    time: COMPLETED, or IN_PROGRESS where the resource deletes with force (a continuous job).
    What exists already (an update) is left exactly as it is.
    """
    iot = iot_client(endpoint)
    with lifecycle._lock:
        existing_groups = {group.thing_group_name for group in lifecycle.backend.thing_groups.values()}
        existing_things = {thing.thing_name for thing in lifecycle.backend.things.values()}
    targets: list[str] = []
    for plan in plans:
        things = plan.things or [f"{plan.name}-rehearsal-device"]  # a job needs a target
        for group in plan.thing_groups:
            if group not in existing_groups:
                iot.create_thing_group(thingGroupName=group)
        for thing in things:
            if thing in existing_things:
                continue
            iot.create_thing(thingName=thing)
            for group in plan.thing_groups[:1]:
                iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
        targets = [f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}" for group in plan.thing_groups[:1]]
        targets = targets or [f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{things[0]}"]
        for cleanup in plan.cleanups:
            namespace = cleanup.properties.get("NamespaceId")
            forced = str(cleanup.properties.get("Force", "false")).lower() == "true"
            for job_id in cleanup.job_ids:
                if job_id in lifecycle.backend.jobs:
                    continue
                iot.create_job(
                    jobId=job_id,
                    targets=targets,
                    document=json.dumps({"operation": "rehearsal"}),
                    **({"namespaceId": namespace} if namespace else {}),
                )
                lifecycle.set_status(job_id, "IN_PROGRESS" if forced else "COMPLETED")
    if BYSTANDER_JOB not in lifecycle.backend.jobs and targets:
        iot.create_job(jobId=BYSTANDER_JOB, targets=targets, document=json.dumps({"operation": "keep"}))
        lifecycle.set_status(BYSTANDER_JOB, "COMPLETED")


# --------------------------------------------------------------------------- the runtime actor


@dataclass
class RuntimeJob:
    """A job the runtime actor created for a cleanup with filters: one that matches every
    filter (``why`` empty), or a bystander that misses one (``why`` says which)."""

    job_id: str
    cleanup: str  # the name of the cleanup resource it is shown with
    status: str  # the status the runtime actor left it in
    why: str = ""
    listing: str = ""  # a selected job: which of the handler's listings shows it (read from IoT)
    expected: str = ""  # at the destroy: "deleted", "left alone" or "kept" (DeletionPolicy Retain)
    after: str = ""  # after the destroy: "gone", or its status

    @property
    def as_expected(self) -> bool:
        return self.after == "gone" if self.expected == "deleted" else self.after == self.status


def runtime_statuses(cleanup: CleanupResource) -> list[str]:
    """The jobs a runtime creator leaves at teardown, in states the cleanup's options delete:
    running and SCHEDULED ones only with force or a drain time. Without either they would fail
    the cleanup, in AWS as here, so none are created then."""
    if cleanup.forced or cleanup.drain_seconds is not None:
        return ["COMPLETED", "COMPLETED", "IN_PROGRESS", "SCHEDULED", "SCHEDULED"]
    return ["COMPLETED", "COMPLETED", "CANCELED"]


def _group_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{name}"


def _prefix_like(prefix: str) -> str:
    """The prefix with its last character changed: 'ota-rollout-' gives 'ota-rollout_'."""
    return prefix[:-1] + ("_" if prefix[-1] != "_" else "-")


def _runtime_specs(
    cleanup: CleanupResource, target: str, other: str
) -> list[tuple[str, str, list[str], dict[str, str], str]]:
    """(why, job id, targets, tags, status) of the jobs to create for a cleanup: those its
    filters select, then bystanders that each miss one filter and match the others."""
    filters = cleanup.filters
    tags = dict(filters.tags)
    serial = iter(range(1000))

    def generated(head: str | None = None) -> str:
        digest = hashlib.sha256(f"{filters!r}/{next(serial)}".encode()).hexdigest()[:8]
        return ((filters.prefix or RUNTIME_ID_PREFIX) if head is None else head) + digest

    specs = [("", generated(), [target], tags, status) for status in runtime_statuses(cleanup)]
    if filters.thing_groups:
        specs += [("another thing group", generated(), [other], tags, s) for s in ("COMPLETED", "SCHEDULED")]
    if filters.tags:
        specs += [("untagged", generated(), [target], {}, s) for s in ("COMPLETED", "SCHEDULED")]
        key, value = filters.tags[0]
        other_value = {**tags, key: ("other-" + value)[:256]}
        specs.append(("another tag value", generated(), [target], other_value, "IN_PROGRESS"))
    if filters.prefix:
        specs.append(("prefix-like id", generated(_prefix_like(filters.prefix)), [target], tags, "COMPLETED"))
    else:  # an id like the runtime jobs', on a job that is someone else's
        specs.append(("look-alike id", generated(), [other], {}, "COMPLETED"))
    return [(why, job_id[:64], *rest) for why, job_id, *rest in specs]


def play_runtime(
    plans: list[StackPlan],
    endpoint: str,
    lifecycle: DeletionLifecycle,
    played: dict[Filters, list[RuntimeJob]],
    say: Callable[[str], None],
) -> None:
    """Play the creator of jobs at runtime, once for every set of filters a cleanup has
    (``played``, filled here; a cleanup that an update renames keeps its jobs): create jobs its
    filters select and bystanders, over the wire (CreateJob with tags), then put each in its
    status as devices and schedules would. Ids are generated from the filters.

    Selected jobs target the cleanup's first thing group (else the stack's); some are SCHEDULED,
    which ListJobs by thing group leaves out. A bystander that some cleanup of ``plans`` would
    select after all is not created. IN_PROGRESS jobs of a cleanup with a drain time have
    devices that finish within half of it; a bystander's never do.
    """
    iot = iot_client(endpoint)
    everyone = [cleanup for plan in plans for cleanup in plan.cleanups]
    for plan in plans:
        for cleanup in plan.cleanups:
            if cleanup.filters.given and cleanup.filters not in played:
                played[cleanup.filters] = jobs = _play_for(cleanup, plan, everyone, iot, lifecycle)
                say(f"runtime: {cleanup.name} selects {cleanup.filters.describe()}")
                say(f"runtime:   created {_created_text(jobs)}")


def _play_for(
    cleanup: CleanupResource,
    plan: StackPlan,
    everyone: list[CleanupResource],
    iot: Any,
    lifecycle: DeletionLifecycle,
) -> list[RuntimeJob]:
    """One cleanup's runtime jobs and bystanders, created over the wire and put in their status."""
    filters = cleanup.filters
    with lifecycle._lock:
        groups = {group.thing_group_name for group in lifecycle.backend.thing_groups.values()}
    group = (filters.thing_groups or tuple(plan.thing_groups) or (None,))[0]
    for name in sorted({group, OTHER_GROUP} - groups - {None}):
        iot.create_thing_group(thingGroupName=name)
    thing = (plan.things or [f"{plan.name}-rehearsal-device"])[0]
    target = _group_arn(group) if group else f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{thing}"
    namespace = {"namespaceId": filters.namespace_id} if filters.namespace_id else {}
    jobs: list[RuntimeJob] = []
    for why, job_id, targets, tags, status in _runtime_specs(cleanup, target, _group_arn(OTHER_GROUP)):
        facts = JobFacts(job_id, status, tuple(targets), tags, filters.namespace_id)
        if job_id in lifecycle.backend.jobs or (why and any(c.filters.selects(facts) for c in everyone)):
            continue
        scheduled = {}
        if status == "SCHEDULED":  # IoT keeps it SCHEDULED until its start time
            start = time.gmtime(lifecycle.clock() + SCHEDULED_AHEAD_SECONDS)
            scheduled = {"schedulingConfig": {"startTime": time.strftime("%Y-%m-%dT%H:%M", start)}}
        iot.create_job(
            jobId=job_id,
            targets=targets,
            document=json.dumps({"operation": "rehearsal-runtime"}),
            **({"tags": [{"Key": key, "Value": value} for key, value in tags.items()]} if tags else {}),
            **namespace,
            **scheduled,
        )
        _put_in_status(lifecycle, job_id, status, None if why else cleanup.drain_seconds)
        jobs.append(RuntimeJob(job_id, cleanup.name, status, why))
    return jobs


def _created_text(jobs: list[RuntimeJob]) -> str:
    """'5 jobs it selects (2 COMPLETED, ...) and 7 bystanders (another thing group 2, ...)'."""
    selected = Counter(job.status for job in jobs if not job.why)
    bystanders = Counter(job.why for job in jobs if job.why)

    def counted(counter: Counter[str], what: str, each: str) -> str:
        if not counter:
            return f"no {what}"
        parts = ", ".join(each.format(key=key, count=count) for key, count in counter.items())
        return f"{sum(counter.values())} {what} ({parts})"

    text = (
        f"{counted(selected, 'jobs it selects', '{count} {key}')} and "
        f"{counted(bystanders, 'bystanders', '{key} {count}')}"
    )
    if "SCHEDULED" not in selected:
        text += "; none running or scheduled: without force or drain they would fail the cleanup"
    return text


def _put_in_status(lifecycle: DeletionLifecycle, job_id: str, status: str, drain: float | None) -> None:
    """A running job's devices finish within half the drain time (never without a drain);
    a SCHEDULED job has not started: its executions are queued, no device is busy."""
    finish_in = math.inf if status != "IN_PROGRESS" or drain is None else drain / 2
    lifecycle.set_status(job_id, status, executions_finish_in=finish_in)


def _job_facts(lifecycle: DeletionLifecycle) -> dict[str, JobFacts]:
    with lifecycle._lock:
        lifecycle.settle()
        return {
            job_id: JobFacts(
                job_id,
                job.status,
                tuple(job.targets or ()),
                dict(lifecycle.tags.get(job_id, {})),
                lifecycle.namespaces.get(job_id),
                int(job.job_process_details.get("numberOfInProgressThings") or 0),
            )
            for job_id, job in lifecycle.backend.jobs.items()
        }


def selected_jobs(cleanup: CleanupResource, facts: Mapping[str, JobFacts], exclude: set[str]) -> list[str]:
    """The jobs (in creation order) a cleanup's filters select, besides those it names."""
    named = set(cleanup.job_ids)
    filters = cleanup.filters
    return [
        job_id
        for job_id, job in facts.items()
        if job_id not in named and job_id not in exclude and filters.selects(job)
    ]


# --------------------------------------------------------------------------- one request


@dataclass
class Outcome:
    resource: CleanupResource
    state: str = "waiting"  # waiting | creating | updating | deleting | complete | failed | retained
    invocations: int = 0
    elapsed: float = 0.0
    reason: str = ""
    request: str = "Delete"  # Create | Update | Delete
    physical_id: str = ""
    iot_calls: int = 0  # IoT calls while it ran (counted for the requests run one at a time)
    stack_status: str = ""  # the stack's status while it ran
    selected: list[str] = field(default_factory=list)  # jobs its filters select, at the destroy

    @property
    def jobs(self) -> list[str]:
        """The jobs it deletes (or keeps): those it names, then those its filters select."""
        return [*self.resource.job_ids, *self.selected]


OPTIONAL_CLIENTS = frozenset({"cloudformation", "tagging"})


def _with_accepted(function: Callable[..., Any], **keywords: Any) -> dict[str, Any]:
    """The handler's keywords; ``cloudformation`` and ``tagging`` only if this handler takes
    them (an older handler does not: it then runs as it would in Lambda, without them)."""
    accepted = inspect.signature(function).parameters
    return {key: value for key, value in keywords.items() if key not in OPTIONAL_CLIENTS or key in accepted}


class HandlerRequest:
    """One CloudFormation request (``outcome.request``) to a cleanup resource, as CloudFormation
    and the Provider framework run it: ``on_event``, then ``is_complete`` every query interval.

    Made (handler modules loaded from the asset folder, clients created) before it is run, so
    that requests run in parallel start together and simulated time is not spent setting up.
    """

    def __init__(
        self,
        cleanup: CleanupResource,
        outcome: Outcome,
        *,
        endpoint: str,
        clock: ScaledClock,
        stack_id: str,
        physical_id: str | None = None,
        old_properties: Mapping[str, Any] | None = None,
        session: Any = None,
    ) -> None:
        import boto3

        self.cleanup, self.outcome, self.clock, self.physical_id = cleanup, outcome, clock, physical_id
        self.on_event_module = load_handler(cleanup.on_event)
        self.is_complete_module = load_handler(cleanup.is_complete)
        self.request: dict[str, Any] = {
            "RequestType": outcome.request,
            "ServiceToken": cleanup.service_token_arn,
            "ResponseURL": "https://rehearsal.invalid/response",
            "StackId": stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": cleanup.logical_id,
            "ResourceType": RESOURCE_TYPE,
            "ResourceProperties": {"ServiceToken": cleanup.service_token_arn, **cleanup.properties},
        }
        if physical_id:
            self.request["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            self.request["OldResourceProperties"] = dict(old_properties)
        session = session or boto3.session.Session(region_name=REGION, **CREDENTIALS)

        def keywords(module: ModuleType, function: HandlerFunction) -> dict[str, Any]:
            def client(service: str) -> Any:
                return session.client(service, endpoint_url=endpoint, config=module.CLIENT_CONFIG)

            return {
                "client": client("iot"),
                "cloudformation": client("cloudformation"),
                "tagging": client("resourcegroupstaggingapi"),  # as in Lambda; moto's answers no IoT job
                "timing": module.Timing.from_environment(function.environment),
                "remaining_lambda_seconds": function.timeout_seconds,
                "clock": clock.now,
                "sleep": clock.sleep,
            }

        self.on_event_keywords = keywords(self.on_event_module, cleanup.on_event)
        self.is_complete_keywords = keywords(self.is_complete_module, cleanup.is_complete)

    def on_event(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        self.outcome.invocations += 1
        handle = self.on_event_module.handle_on_event
        result = handle(event, **_with_accepted(handle, **self.on_event_keywords))
        # The framework: no id on Create is the request id; on Update, the old one stays.
        self.outcome.physical_id = (result or {}).get("PhysicalResourceId") or (
            self.physical_id or self.request["RequestId"]
        )
        return result

    def is_complete(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        self.outcome.invocations += 1
        handle = self.is_complete_module.handle_is_complete
        return handle(event, **_with_accepted(handle, **self.is_complete_keywords))

    def run(self) -> None:
        outcome, clock = self.outcome, self.clock
        timing = self.is_complete_keywords["timing"]
        start = clock.now()
        try:
            outcome.state = {"Create": "creating", "Update": "updating"}.get(outcome.request, "deleting")
            replay_delete(  # the Provider's lifecycle, the same for every request type
                self.request,
                self.on_event,
                self.is_complete,
                sleep=clock.sleep,
                query_interval=timing.query_interval,
                max_attempts=int(timing.total_timeout // timing.query_interval),
            )
            outcome.state = "complete"
        except Exception as exc:  # the Provider reports any exception as FAILED with its message
            outcome.state, outcome.reason = "failed", str(exc) or type(exc).__name__
        finally:
            outcome.elapsed = clock.now() - start


# --------------------------------------------------------------------------- showing it


@dataclass
class View:
    out: TextIO
    clock: ScaledClock
    lifecycle: DeletionLifecycle
    outcomes: list[Outcome]
    live: bool
    max_job_lines: int = 30
    _lines_drawn: int = 0
    gone_at: dict[str, float] = field(default_factory=dict)
    origin: float = field(init=False)

    def __post_init__(self) -> None:
        self.origin = self.clock.now()  # the destroy starts now

    def elapsed(self) -> float:
        return self.clock.now() - self.origin

    def deleted_by(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.state != "retained"]

    def job_state(self, job_id: str) -> str:
        job = self.lifecycle.backend.jobs.get(job_id)
        if job is None:
            self.gone_at.setdefault(job_id, self.elapsed())
            return f"gone after {self.gone_at[job_id]:.0f} s"
        if job.status == "DELETION_IN_PROGRESS":
            return "deleting"
        if not self.outcomes_started():
            return job.status.lower()
        if job.status == "CANCELED" and job.job_process_details.get("numberOfInProgressThings"):
            return "cancelled, devices busy"  # a drain: deleted once they finish
        return "waiting for a slot"

    def outcomes_started(self) -> bool:
        return any(outcome.state != "waiting" for outcome in self.deleted_by())

    def frame(self) -> list[str]:
        with self.lifecycle._lock:
            self.lifecycle.settle()
            ours = {job for outcome in self.deleted_by() for job in outcome.jobs}
            in_use = len(self.lifecycle.deleting)
            ours_in_use = len(ours & set(self.lifecycle.deleting))
            lines = [
                f"destroy: {self.elapsed():5.0f} s simulated   deletion slots in use {in_use:2d}/10 "
                f"(ours {ours_in_use}, other stacks {in_use - ours_in_use})   "
                f"LimitExceededException answered: {self.lifecycle.refusals['LimitExceededException']}"
            ]
            for outcome in self.outcomes:
                name = outcome.resource.name
                if outcome.state == "retained":
                    lines.append(f"  {name}: {len(outcome.jobs)} jobs {KEPT}, no Delete sent")
                    continue
                states = [self.job_state(job) for job in outcome.jobs]
                gone = sum(state.startswith("gone") for state in states)
                deleting = states.count("deleting")
                draining = states.count("cancelled, devices busy")
                waiting = len(states) - gone - deleting - draining
                lines.append(
                    f"  {name}: {gone} gone, {deleting} deleting, "
                    f"{f'{draining} draining, ' if draining else ''}{waiting} waiting   "
                    f"[{outcome.state}, invocation {outcome.invocations}]"
                )
            shown = [job for outcome in self.deleted_by() for job in outcome.jobs]
            lines += [f"    {job:<40} {self.job_state(job)}" for job in shown[: self.max_job_lines]]
        return lines

    def draw(self) -> None:
        lines = self.frame()
        if self.live:
            if self._lines_drawn:
                self.out.write(f"\x1b[{self._lines_drawn}F")
            self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
            self._lines_drawn = len(lines)
        else:
            self.out.write(lines[0] + "\n" + "\n".join(lines[1 : 1 + len(self.outcomes)]) + "\n")
        self.out.flush()


# --------------------------------------------------------------------------- the command


@dataclass
class Report:
    outcomes: list[Outcome]  # the destroy's, retained resources included
    jobs_left: list[str]  # jobs a deleted resource names or selects that still exist
    bystanders_touched: list[str]  # jobs no deleted resource selects that were deleted or changed
    iot_calls: dict[str, int]
    limit_exceeded: int
    simulated_seconds: float
    jobs_kept: list[str] = field(default_factory=list)  # named only by DeletionPolicy Retain resources
    jobs_released: list[str] = field(
        default_factory=list
    )  # no cleanup names or selects them after the update
    update_outcomes: list[Outcome] = field(default_factory=list)
    update_touched: list[str] = field(default_factory=list)  # jobs the update deleted or changed
    update_delete_calls: int = 0
    stopped: str = ""  # why the rehearsal stopped before the destroy (an update refused, ...)
    runtime: list[RuntimeJob] = field(default_factory=list)  # the runtime actor's, for the destroy

    @property
    def ok(self) -> bool:
        """Every job that should go is gone and no other was touched; jobs kept by
        DeletionPolicy Retain (or no longer any cleanup's after an update) are no failure."""
        return (
            not self.stopped
            and all(o.state in ("complete", "retained") for o in self.outcomes + self.update_outcomes)
            and not self.jobs_left
            and not self.bystanders_touched
            and not self.update_touched
            and not self.update_delete_calls
        )


class _Rehearsal:
    """The state CloudFormation keeps between the phases: stack ids, physical ids."""

    def __init__(self, endpoint: str, lifecycle: DeletionLifecycle, clock: ScaledClock, out: TextIO) -> None:
        import boto3

        self.session = boto3.session.Session(region_name=REGION, **CREDENTIALS)  # clients made here
        self.endpoint = endpoint
        self.lifecycle = lifecycle
        self.clock = clock
        self.out = out
        self.stack_ids: dict[str, str] = {}
        self.physical_ids: dict[tuple[str, str], str] = {}
        self.played: dict[Filters, list[RuntimeJob]] = {}  # the runtime actor's jobs, by filters

    def play_runtime(self, plans: list[StackPlan]) -> None:
        play_runtime(plans, self.endpoint, self.lifecycle, self.played, self.say)

    def runtime_of(self, outcome: Outcome) -> list[RuntimeJob]:
        """The runtime actor's jobs for this cleanup's filters (a cleanup whose filters an update
        changed shows the jobs made for its new ones; the others are judged like any job)."""
        jobs = self.played.get(outcome.resource.filters, [])
        return [replace(job, cleanup=outcome.resource.name) for job in jobs]

    def observe_listings(self, outcomes: list[Outcome], runtime: list[RuntimeJob]) -> None:
        """Which of the handler's listings shows each selected runtime job, asked of IoT as the
        handler asks it (ListJobs by thing group, then SCHEDULED; or all jobs). The handler's
        own view is out of sight: this is what its listings can find. These ListJobs calls are
        the rehearsal's, not counted with the handler's."""
        iot = iot_client(self.endpoint)
        calls = 0
        for outcome in outcomes:
            jobs = [job for job in runtime if job.cleanup == outcome.resource.name and not job.why]
            filters = outcome.resource.filters
            found: dict[str, str] = {}
            for name, listing in filters.listings() if jobs else []:
                namespace = {"namespaceId": filters.namespace_id} if filters.namespace_id else {}
                token = None
                while True:
                    more = {"nextToken": token} if token else {}
                    page = iot.list_jobs(maxResults=250, **listing, **namespace, **more)
                    calls += 1
                    for job in page.get("jobs", []):
                        found.setdefault(job["jobId"], name)
                    token = page.get("nextToken")
                    if not token:
                        break
            for job in jobs:
                job.listing = found.get(job.job_id, "no listing shows it")
        with self.lifecycle._lock:
            self.lifecycle.calls["ListJobs"] -= calls
            if self.lifecycle.calls["ListJobs"] <= 0:
                del self.lifecycle.calls["ListJobs"]

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def set_status(self, stack: str, status: str) -> None:
        from .emulator import emulated_stack, set_stack_status

        if stack in self.stack_ids:
            set_stack_status(ACCOUNT, REGION, self.stack_ids[stack], status)
        else:
            stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/{uuid.uuid4()}"
            self.stack_ids[stack] = emulated_stack(ACCOUNT, REGION, stack, status, stack_id=stack_id)

    def iot_call_count(self) -> int:
        with self.lifecycle._lock:
            return sum(self.lifecycle.calls.values())

    def request(
        self,
        cleanup: CleanupResource,
        request: str,
        status: str,
        old: CleanupResource | None = None,
        physical_id: str | None = None,
    ) -> Outcome:
        """One request, run to its end (the requests of deploy and update run one at a time)."""
        outcome = Outcome(cleanup, request=request, stack_status=status)
        key = (cleanup.stack, cleanup.logical_id)
        prepared = self.prepare(
            outcome,
            physical_id=physical_id or (self.physical_ids.get(key) if request != "Create" else None),
            old_properties=(
                {"ServiceToken": old.service_token_arn, **old.properties} if old is not None else None
            ),
        )
        before = self.iot_call_count()
        prepared.run()
        outcome.iot_calls = self.iot_call_count() - before
        if outcome.state == "complete" and request != "Delete":
            self.physical_ids[key] = outcome.physical_id
        return outcome

    def prepare(
        self,
        outcome: Outcome,
        physical_id: str | None = None,
        old_properties: Mapping[str, Any] | None = None,
    ) -> HandlerRequest:
        cleanup = outcome.resource
        return HandlerRequest(
            cleanup,
            outcome,
            endpoint=self.endpoint,
            clock=self.clock,
            stack_id=self.stack_ids[cleanup.stack],
            physical_id=physical_id or self.physical_ids.get((cleanup.stack, cleanup.logical_id)),
            old_properties=old_properties,
            session=self.session,
        )

    def describe(self, outcome: Outcome, why: str = "") -> str:
        text = f"{outcome.resource.name}: {outcome.request}{f' ({why})' if why else ''} -> "
        if outcome.state == "failed":
            return text + f"{outcome.request.upper()}_FAILED: {outcome.reason}"
        return text + f"{outcome.request.upper()}_COMPLETE, IoT calls: {outcome.iot_calls}"

    # -- deploy

    def deploy_phase(self, plans: list[StackPlan], source: Path) -> tuple[list[Outcome], str]:
        outcomes: list[Outcome] = []
        for plan in plans:
            self.set_status(plan.name, "CREATE_IN_PROGRESS")
            self.say(f"deploy: {plan.name} from {source}: CREATE_IN_PROGRESS")
            for cleanup in plan.cleanups:
                outcome = self.request(cleanup, "Create", "CREATE_IN_PROGRESS")
                outcomes.append(outcome)
                self.say(f"deploy:   {self.describe(outcome)}")
                if outcome.state == "failed":
                    self.set_status(plan.name, "ROLLBACK_COMPLETE")
                    return outcomes, (
                        f"the deploy of {plan.name} failed ({cleanup.name}: {outcome.reason}); "
                        "the stack would roll back"
                    )
            self.set_status(plan.name, "CREATE_COMPLETE")
            jobs = {job for cleanup in plan.cleanups for job in cleanup.job_ids}
            self.say(
                f"deploy: {plan.name}: CREATE_COMPLETE; {len(jobs)} jobs owned by "
                f"{len(plan.cleanups)} cleanup resources"
            )
        return outcomes, ""

    # -- update

    def refusals(self, old_plans: list[StackPlan], new_plans: list[StackPlan]) -> list[CleanupResource]:
        """Cleanups whose ServiceToken the update would change: CloudFormation refuses those."""
        old = {(c.stack, c.logical_id): c for plan in old_plans for c in plan.cleanups}
        return [
            cleanup
            for plan in new_plans
            for cleanup in plan.cleanups
            if (cleanup.stack, cleanup.logical_id) in old
            and old[(cleanup.stack, cleanup.logical_id)].service_token != cleanup.service_token
        ]

    def update_phase(
        self, old_plans: list[StackPlan], new_plans: list[StackPlan], source: Path
    ) -> tuple[list[Outcome], str]:
        refused = self.refusals(old_plans, new_plans)
        if refused:
            for cleanup in refused:
                self.say(f"update: {cleanup.name}: UPDATE_FAILED: {SERVICE_TOKEN_REFUSAL}")
            for stack in sorted({cleanup.stack for cleanup in refused}):
                self.set_status(stack, "UPDATE_ROLLBACK_COMPLETE")
                self.say(
                    f"update: {stack}: UPDATE_ROLLBACK_COMPLETE: the stack rolls back to the old "
                    "template; its jobs stay as they are. Nothing is destroyed."
                )
            self.say(
                "update: a custom resource's ServiceToken cannot change in place. Keep the "
                "provider's construct path, or give the cleanup a new construct id: CloudFormation "
                "then creates the new resource and deletes the old one, which deletes no job."
            )
            names = ", ".join(cleanup.name for cleanup in refused)
            return [], f"the update was refused: {names}: {SERVICE_TOKEN_REFUSAL}"
        outcomes: list[Outcome] = []
        old_by_stack = {plan.name: plan for plan in old_plans}
        for plan in new_plans:
            old_plan = old_by_stack.get(plan.name)
            failure = self._update_stack(old_plan, plan, source, outcomes)
            if failure:
                return outcomes, failure
        return outcomes, ""

    def _update_stack(
        self, old_plan: StackPlan | None, plan: StackPlan, source: Path, outcomes: list[Outcome]
    ) -> str:
        verb = "UPDATE" if old_plan else "CREATE"
        self.set_status(plan.name, f"{verb}_IN_PROGRESS")
        self.say(f"update: {plan.name} to {source}: {verb}_IN_PROGRESS")
        old = {c.logical_id: c for c in old_plan.cleanups} if old_plan else {}
        replaced: list[tuple[CleanupResource, str]] = []  # Update gave a new physical id
        unchanged = 0
        for cleanup in plan.cleanups:
            before = old.get(cleanup.logical_id)
            if before is not None and before.properties == cleanup.properties:
                unchanged += 1  # CloudFormation sends it nothing
                continue
            request, why = (
                ("Create", "new logical id") if before is None else ("Update", "properties changed")
            )
            old_physical = self.physical_ids.get((cleanup.stack, cleanup.logical_id))
            outcome = self.request(cleanup, request, f"{verb}_IN_PROGRESS", old=before)
            outcomes.append(outcome)
            self.say(f"update:   {self.describe(outcome, why)}")
            if outcome.state == "failed":
                self.set_status(plan.name, f"{verb}_ROLLBACK_COMPLETE" if old_plan else "ROLLBACK_COMPLETE")
                return (
                    f"the update of {plan.name} failed ({cleanup.name}: {outcome.reason}); it would roll back"
                )
            if before is not None and old_physical and outcome.physical_id != old_physical:
                replaced.append((before, old_physical))
        if unchanged:
            self.say(f"update:   {unchanged} cleanup resources unchanged: no request sent to them")
        if old_plan is None:
            self.set_status(plan.name, "CREATE_COMPLETE")
            self.say(f"update: {plan.name}: CREATE_COMPLETE")
            return ""
        cleanup_status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
        self.set_status(plan.name, cleanup_status)
        self.say(f"update: {plan.name}: {cleanup_status}")
        new_ids = {c.logical_id for c in plan.cleanups}
        for before in [c for c in old_plan.cleanups if c.logical_id not in new_ids]:
            if before.retained:
                outcomes.append(
                    Outcome(
                        before, state="retained", request="Delete", reason=KEPT, stack_status=cleanup_status
                    )
                )
                self.say(f"update:   {before.name}: not in the new template, {KEPT}: no Delete sent")
                continue
            outcome = self.request(self._as_deleted_by(before, plan), "Delete", cleanup_status)
            outcomes.append(outcome)
            self.say(f"update:   {self.describe(outcome, 'not in the new template')}")
        for before, old_physical in replaced:  # CloudFormation deletes the replaced physical id
            deleted_by = self._as_deleted_by(before, plan)
            outcome = self.request(deleted_by, "Delete", cleanup_status, physical_id=old_physical)
            outcomes.append(outcome)
            self.say(f"update:   {self.describe(outcome, f'old physical id {old_physical}')}")
        self.set_status(plan.name, "UPDATE_COMPLETE")
        self.say(f"update: {plan.name}: UPDATE_COMPLETE")
        return ""

    def checked_update(
        self, old_plans: list[StackPlan], new_plans: list[StackPlan], source: Path
    ) -> tuple[list[Outcome], str, list[str], int]:
        """The update, checked to touch no job: its outcomes, why it stopped (if it did), the
        jobs it deleted or changed, and its DeleteJob calls. Then the new template's jobs."""
        lifecycle = self.lifecycle
        before, calls_before = _job_statuses(lifecycle), lifecycle.calls["DeleteJob"]
        outcomes, stopped = self.update_phase(old_plans, new_plans, source)
        if stopped:
            return outcomes, stopped, [], 0
        after = _job_statuses(lifecycle)
        delete_calls = lifecycle.calls["DeleteJob"] - calls_before
        touched = sorted(job for job, status in before.items() if after.get(job) != status)
        shown = ", ".join(f"{job} ({after.get(job, 'gone')})" for job in touched[:5])
        more = f" and {len(touched) - 5} more" if len(touched) > 5 else ""
        self.say(
            f"update: {len(before)} jobs existed before the update, "
            f"{f'{len(touched)} touched: {shown}{more}' if touched else 'none touched'} "
            f"(DeleteJob calls during the update: {delete_calls})"
        )
        deploy(new_plans, self.endpoint, lifecycle)  # the jobs the new template names, if new
        created = set(_job_statuses(lifecycle)) - set(before)
        if created:
            self.say(f"update: created {len(created)} jobs the new template names")
        return outcomes, "", touched, delete_calls

    @staticmethod
    def _as_deleted_by(cleanup: CleanupResource, new_plan: StackPlan) -> CleanupResource:
        """The Delete of a removed resource goes to its old ServiceToken; when that function is
        still in the new template, it was updated before the clean-up: the new code answers."""
        try:
            on_event, is_complete = _handler_functions(
                cleanup.name, cleanup.service_token, new_plan.resources, new_plan.cdk_out
            )
        except RehearsalError:
            return cleanup  # the function goes too, after the resources that use it
        return replace(cleanup, on_event=on_event, is_complete=is_complete)


def _job_statuses(lifecycle: DeletionLifecycle) -> dict[str, str]:
    with lifecycle._lock:
        lifecycle.settle()
        return {job_id: job.status for job_id, job in lifecycle.backend.jobs.items()}


def rehearse(
    cdk_out: Path,
    *,
    stacks: list[str] | None = None,
    update_from: Path | None = None,
    parameters: Mapping[str, str] | None = None,
    scenario: str = "calm",
    time_factor: float = 30.0,
    deletion_seconds: float = 60.0,
    seconds_per_target: float = 0.0,
    other_stacks_slots: int | None = None,
    out: TextIO | None = None,
    live: bool | None = None,
    refresh_seconds: float = 0.25,
) -> Report:
    _require_emulator()
    from .emulator import DeletionTime

    given = dict(parameters or {})
    plans = read_assembly(cdk_out, stacks, parameters=given, keep_empty=update_from is not None)
    old_plans: list[StackPlan] = []
    left_alone: list[str] = []
    if update_from is not None:
        names = {plan.name for plan in plans}
        old_plans = read_assembly(update_from, stacks, parameters=given, keep_empty=True)
        left_alone = [plan.name for plan in old_plans if plan.name not in names and plan.cleanups]
        old_plans = [plan for plan in old_plans if plan.name in names]
        plans = [plan for plan in plans if plan.cleanups or plan.name in {p.name for p in old_plans}]
        if not any(plan.cleanups for plan in plans + old_plans):
            raise RehearsalError(
                f"No stack in {update_from} or {cdk_out} has an IotJobCleanup ({RESOURCE_TYPE}) resource."
            )
    clock = ScaledClock(time_factor)
    out = out or sys.stdout
    live = out.isatty() if live is None else live
    contended = scenario == "contended"
    held = other_stacks_slots if other_stacks_slots is not None else (10 if contended else 0)
    list_lag = 5.0 if contended else 0.0
    phases = "deploy, update and destroy" if update_from is not None else "deploy and destroy"
    out.write(
        f"Rehearsing {phases} of {', '.join(p.name for p in plans)} against an IoT endpoint on "
        f"loopback.\nTime runs x{time_factor:g}: 1 s on screen is {time_factor:g} s simulated. A deletion "
        f"takes {deletion_seconds:g} s + {seconds_per_target:g} s per target. Scenario: {scenario}"
        f"{f', other stacks hold {held} of the 10 slots' if held else ''}"
        f"{f', ListJobs lags {list_lag:g} s behind' if list_lag else ''}.\n"
    )
    if left_alone:
        out.write(
            f"update: {', '.join(left_alone)} not in {cdk_out}: cdk deploy leaves it alone; not rehearsed\n"
        )
    deletion = DeletionTime(deletion_seconds, seconds_per_target)
    with iot_endpoint(clock, deletion, list_lag) as (endpoint, lifecycle):
        run = _Rehearsal(endpoint, lifecycle, clock, out)
        first = old_plans if update_from is not None else plans
        deploy(first, endpoint, lifecycle)
        deployed, stopped = run.deploy_phase(first, update_from or cdk_out)
        if not stopped:
            run.play_runtime(first)  # while the stack lives, jobs are created at runtime
        update_outcomes: list[Outcome] = []
        touched: list[str] = []
        delete_calls = 0
        if not stopped and update_from is not None:
            update_outcomes, stopped, touched, delete_calls = run.checked_update(old_plans, plans, cdk_out)
            if not stopped:
                run.play_runtime(plans)  # for cleanups the update added or whose filters it changed
        if stopped:
            report = Report(
                outcomes=[],
                jobs_left=[],
                bystanders_touched=[],
                iot_calls=dict(lifecycle.calls),
                limit_exceeded=lifecycle.refusals["LimitExceededException"],
                simulated_seconds=0.0,
                update_outcomes=[o for o in deployed + update_outcomes if o.state != "complete"],
                stopped=stopped,
            )
        else:
            report = _destroy(run, plans, old_plans, held, deletion_seconds, contended, live, refresh_seconds)
            report.update_outcomes = update_outcomes
            report.update_touched = touched
            report.update_delete_calls = delete_calls
    print_summary(report, out)
    return report


def _destroy(
    run: _Rehearsal,
    plans: list[StackPlan],
    old_plans: list[StackPlan],
    held: int,
    deletion_seconds: float,
    contended: bool,
    live: bool,
    refresh_seconds: float,
) -> Report:
    lifecycle, clock, out = run.lifecycle, run.clock, run.out
    outcomes = [
        Outcome(cleanup, state="retained", reason=KEPT)
        if cleanup.retained
        else Outcome(cleanup, stack_status="DELETE_IN_PROGRESS")
        for plan in plans
        for cleanup in plan.cleanups
    ]
    deleted_by = [o for o in outcomes if o.state != "retained"]
    requests = [run.prepare(outcome) for outcome in deleted_by]
    outside: list[str] = []
    if held:
        outside = lifecycle.hold_slots(held, seconds=2 * deletion_seconds)
        if contended:  # more of their cleanups race ours for every freed slot
            outside += lifecycle.queue_outside_deletions(held, deletion_seconds, retry_seconds=1)
    before = _job_facts(lifecycle)
    everything = set(before)
    for outcome in outcomes:  # which jobs should go is decided here, from what IoT holds
        outcome.selected = selected_jobs(outcome.resource, before, set(outside))
    ours = {job for o in outcomes if o.state != "retained" for job in o.jobs}
    retained = {job for o in outcomes if o.state == "retained" for job in o.jobs}
    current = {(c.stack, c.logical_id) for plan in plans for c in plan.cleanups}
    removed = [c for plan in old_plans for c in plan.cleanups if (c.stack, c.logical_id) not in current]

    def jobs_of(cleanup: CleanupResource) -> list[str]:
        return [*cleanup.job_ids, *selected_jobs(cleanup, before, set(outside))]

    retained |= {job for c in removed if c.retained for job in jobs_of(c)}  # kept by the update
    owned_before = {job for plan in old_plans for c in plan.cleanups for job in jobs_of(c)}
    runtime = [job for o in outcomes for job in run.runtime_of(o)]
    run.observe_listings(outcomes, runtime)
    for job in runtime:
        job.expected = "deleted" if job.job_id in ours else "kept" if job.job_id in retained else "left alone"
    named = {job for o in outcomes for job in o.resource.job_ids}
    selected = (ours | retained) - named
    kept_note = f" ({len(retained - ours)} {KEPT})" if retained - ours else ""
    for plan in plans:
        run.set_status(plan.name, "DELETE_IN_PROGRESS")
    out.write(
        f"destroy: {', '.join(plan.name for plan in plans)}: DELETE_IN_PROGRESS; "
        f"{len(named)} jobs named by {len(outcomes)} cleanup resources"
        f"{f', {len(selected)} more their filters select' if selected else ''}{kept_note}, "
        f"{len(everything - ours - retained)} others\n"
    )
    view = View(out, clock, lifecycle, outcomes, live)
    # CloudFormation deletes resources that do not depend on each other in parallel.
    workers = [threading.Thread(target=request.run, daemon=True) for request in requests]
    for worker in workers:
        worker.start()
    last_printed = -1.0
    while any(worker.is_alive() for worker in workers):
        if live or view.elapsed() - last_printed >= 30:
            view.draw()
            last_printed = view.elapsed()
        time.sleep(refresh_seconds)
    view.draw()
    for plan in plans:
        failed = any(o.state == "failed" for o in outcomes if o.resource.stack == plan.name)
        run.set_status(plan.name, "DELETE_FAILED" if failed else "DELETE_COMPLETE")
    after = _job_facts(lifecycle)
    for job in runtime:
        job.after = after[job.job_id].status if job.job_id in after else "gone"
    return Report(
        outcomes=outcomes,
        jobs_left=sorted(ours & set(after)),
        # Left alone means exactly as it was: not deleted, and not cancelled either (a drain).
        bystanders_touched=sorted(
            job
            for job in everything - ours - set(outside)
            if job not in after or after[job].status != before[job].status
        ),
        iot_calls=dict(lifecycle.calls),
        limit_exceeded=lifecycle.refusals["LimitExceededException"],
        simulated_seconds=view.elapsed(),
        jobs_kept=sorted((retained - ours) & set(after)),
        jobs_released=sorted((owned_before - ours - retained) & set(after)),
        runtime=runtime,
    )


def print_summary(report: Report, out: TextIO) -> None:
    out.write("\nSummary\n")
    for o in report.update_outcomes:
        line = f"  update: {o.resource.name}: {o.request} during {o.stack_status or 'the update'}: "
        line += KEPT + ", no Delete sent" if o.state == "retained" else f"{o.state.upper()}"
        out.write(line + (f"\n    reason: {o.reason}" if o.reason and o.state == "failed" else "") + "\n")
    for o in report.outcomes:
        if o.state == "retained":
            out.write(f"  {o.resource.name}: RETAINED ({KEPT}), {_jobs_count(o)}, no Delete sent\n")
        else:
            line = f"  {o.resource.name}: {o.state.upper()} "
            line += f"after {o.elapsed:.0f} s simulated, {_jobs_count(o)}, "
            line += f"{o.invocations} handler invocations"
            out.write(line + (f"\n    reason: {o.reason}" if o.reason else "") + "\n")
        _print_runtime(o, [job for job in report.runtime if job.cleanup == o.resource.name], out)
    if report.stopped:
        out.write(f"  stopped before the destroy: {report.stopped}\n")
    calls = ", ".join(f"{name} {count}" for name, count in sorted(report.iot_calls.items()))
    out.write(f"  IoT calls: {calls}; LimitExceededException answered {report.limit_exceeded} times\n")
    if not report.stopped:
        out.write(f"  jobs left: {', '.join(report.jobs_left) or 'none'}\n")
        if report.jobs_kept:
            out.write(f"  jobs kept (DeletionPolicy Retain): {', '.join(report.jobs_kept)}\n")
        if report.jobs_released:
            out.write(
                "  jobs no cleanup names or selects after the update (left alone): "
                f"{', '.join(report.jobs_released)}\n"
            )
        if report.update_touched or report.update_delete_calls:
            out.write(
                f"  jobs the update touched: {', '.join(report.update_touched) or 'none'}; "
                f"DeleteJob calls during the update: {report.update_delete_calls}\n"
            )
        out.write(
            "  jobs no cleanup selects that were deleted or changed: "
            f"{', '.join(report.bystanders_touched) or 'none'}\n"
        )
    if not report.ok:
        out.write("FAILED: see above.\n")
    elif report.jobs_kept or report.jobs_released:
        released = len(report.jobs_released)
        out.write(
            f"OK: every job is gone, except {len(report.jobs_kept)} kept by DeletionPolicy Retain"
            f"{f' and {released} no cleanup names or selects any more' if released else ''}.\n"
        )
    else:
        out.write("OK: every job is gone.\n")


def _jobs_count(outcome: Outcome) -> str:
    """'12 jobs' for a cleanup that only names jobs; else how many it names and its filters select."""
    named, selected = len(outcome.resource.job_ids), len(outcome.selected)
    if not outcome.resource.filters.given:
        return f"{named} jobs"
    return f"{f'{named} jobs named and ' if named else ''}{selected} jobs its filters select"


def _print_runtime(outcome: Outcome, jobs: list[RuntimeJob], out: TextIO) -> None:
    """What the runtime actor made for a cleanup: the selected jobs by the listing that shows
    them, and the bystanders by why they are bystanders, each with what became of it."""
    if not jobs:
        return

    def shown(job: RuntimeJob) -> str:
        if job.as_expected:
            return f"{job.job_id} ({job.status})"
        became = "STILL THERE" if job.after == job.status else "DELETED" if job.after == "gone" else job.after
        return f"{job.job_id} ({job.status}, {became})"

    def grouped(of: list[RuntimeJob], key: Callable[[RuntimeJob], str]) -> None:
        groups: dict[str, list[RuntimeJob]] = {}
        for job in of:
            groups.setdefault(key(job), []).append(job)
        for name, members in groups.items():
            out.write(f"      {name}: {', '.join(shown(job) for job in members)}\n")

    out.write(f"    selects: {outcome.resource.filters.describe()}\n")
    selected = [job for job in jobs if not job.why]
    if selected:
        verb = {"deleted": "deleted", "kept": f"kept ({KEPT})"}.get(selected[0].expected, "left alone")
        fine = sum(job.as_expected for job in selected)
        out.write(f"    runtime jobs {verb}, {fine} of {len(selected)}, by the listing that shows them:\n")
        grouped(selected, lambda job: job.listing)
    bystanders = [job for job in jobs if job.why]
    if bystanders:
        fine = sum(job.as_expected for job in bystanders)
        out.write(f"    bystanders left alone, {fine} of {len(bystanders)}, by why they are bystanders:\n")
        grouped(bystanders, lambda job: job.why)


def _parameter(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def main(argv: list[str] | None = None, *, run: Callable[..., Report] = rehearse) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m iot_job_cleanup.rehearse", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--cdk-out", type=Path, default=Path("cdk.out"), help="the synthesized cloud assembly"
    )
    parser.add_argument(
        "--update-from",
        type=Path,
        metavar="OLD_CDK_OUT",
        help="deploy this older cloud assembly first, then update it to --cdk-out, then destroy",
    )
    parser.add_argument(
        "--parameter",
        type=_parameter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter's value (comma-separated for a list), or an Fn::ImportValue's "
        "(repeatable); needed for SSM parameters and parameters without a Default",
    )
    parser.add_argument("--stack", action="append", dest="stacks", help="only these stacks (repeatable)")
    parser.add_argument(
        "--scenario",
        choices=["calm", "contended"],
        default="calm",
        help="contended: other stacks' cleanups hold every slot and race ours for each freed one",
    )
    parser.add_argument("--time-factor", type=float, default=30.0, help="simulated seconds per wall second")
    parser.add_argument("--deletion-seconds", type=float, default=60.0, help="how long one deletion takes")
    parser.add_argument(
        "--seconds-per-target", type=float, default=0.0, help="extra deletion time per target"
    )
    parser.add_argument("--other-stacks-slots", type=int, help="slots other stacks hold at the start (0-10)")
    parser.add_argument("--no-live", action="store_true", help="print progress lines instead of a live view")
    args = parser.parse_args(argv)
    if args.time_factor <= 0 or not 0 <= (args.other_stacks_slots or 0) <= 10:
        parser.error("--time-factor must be positive and --other-stacks-slots between 0 and 10")
    try:
        report = run(
            args.cdk_out,
            stacks=args.stacks,
            update_from=args.update_from,
            parameters=dict(args.parameter),
            scenario=args.scenario,
            time_factor=args.time_factor,
            deletion_seconds=args.deletion_seconds,
            seconds_per_target=args.seconds_per_target,
            other_stacks_slots=args.other_stacks_slots,
            live=False if args.no_live else None,
        )
    except RehearsalError as exc:
        print(f"rehearse: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nrehearse: interrupted; the IoT endpoint is stopped.", file=sys.stderr)
        return 130
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
