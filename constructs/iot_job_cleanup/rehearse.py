"""Rehearse `cdk deploy` and `cdk destroy` of a CDK app's IotJobCleanup resources, offline.

    python -m iot_job_cleanup.rehearse [--cdk-out cdk.out] [--scenario calm|contended] ...

Reads a synthesized cloud assembly, starts an AWS-protocol IoT endpoint on loopback (moto's
server plus the DeleteJob lifecycle, see ``emulator``), "deploys" the stacks' thing groups,
things and the jobs their cleanup resources name, then "destroys": for every cleanup
custom resource it runs the handler code from the asset folder in the cloud assembly
(what would really be uploaded) the way CloudFormation and the Provider framework do:
``on_event`` once with the Delete request, then ``is_complete`` every query interval until
it is complete, raises, or the waiter's attempts run out. Time runs faster by a factor,
shown on screen. Exits non-zero if a job is left or a handler failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import boto3
from moto.iot.models import iot_backends
from moto.server import ThreadedMotoServer

from .cleanup import RESOURCE_TYPE
from .emulator import DeletionLifecycle, DeletionTime, emulated_iot
from .provider import replay_delete

__all__ = ["RehearsalError", "main", "rehearse"]

ACCOUNT = "123456789012"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "rehearsal", "aws_secret_access_key": "rehearsal"}
BYSTANDER_JOB = "bystander-job-not-in-any-cleanup"


class RehearsalError(Exception):
    """The cloud assembly cannot be rehearsed; the message says why."""


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


# --------------------------------------------------------------------------- the cloud assembly


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
    properties: dict[str, Any]
    on_event: HandlerFunction
    is_complete: HandlerFunction

    @property
    def job_ids(self) -> list[str]:
        return list(self.properties["JobIds"])


@dataclass
class StackPlan:
    name: str
    thing_groups: list[str]
    things: list[str]
    cleanups: list[CleanupResource]


class Intrinsics:
    """Just enough of CloudFormation's intrinsic functions to read a CDK template."""

    def __init__(
        self, template: Mapping[str, Any], attributes: Mapping[tuple[str, str], str], *, strict: bool = True
    ) -> None:
        self.template = template
        self.resources = template.get("Resources", {})
        self.parameters = template.get("Parameters", {})
        self.attributes = attributes
        self.strict = strict

    def render(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.render(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self.render(part)) for part in parts)
        if "Ref" in value:
            return self._ref(value["Ref"])
        if "Fn::GetAtt" in value:
            return self._get_att(*value["Fn::GetAtt"])
        return {key: self.render(item) for key, item in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters and "Default" in self.parameters[name]:
            return str(self.parameters[name]["Default"])
        raise RehearsalError(f"Ref {name!r} has no value offline: give the parameter a Default.")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if (logical_id, attribute) in self.attributes:
            return self.attributes[(logical_id, attribute)]
        resource = self.resources.get(logical_id, {})
        if resource.get("Type") == "Custom::AWS":  # AwsCustomResource: answer from its Create call
            lenient = Intrinsics(self.template, self.attributes, strict=False)
            call = json.loads(lenient.render(resource["Properties"]["Create"]))
            if attribute in call.get("parameters", {}):
                return str(call["parameters"][attribute])
        if not self.strict:
            return f"<{logical_id}.{attribute}>"
        raise RehearsalError(
            f"Fn::GetAtt {logical_id}.{attribute} has no value offline: only literal job ids, "
            "parameters with a Default and AwsCustomResource CreateJob calls can be rehearsed."
        )


def read_assembly(cdk_out: Path, stack_names: list[str] | None = None) -> list[StackPlan]:
    manifest_path = cdk_out / "manifest.json"
    if not manifest_path.is_file():
        raise RehearsalError(f"{manifest_path} does not exist: run `cdk synth` first.")
    manifest = json.loads(manifest_path.read_text())
    plans = []
    for name, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack" or (stack_names and name not in stack_names):
            continue
        template = json.loads((cdk_out / artifact["properties"]["templateFile"]).read_text())
        plan = _plan_stack(name, template, cdk_out)
        if plan.cleanups:
            plans.append(plan)
    if not plans:
        raise RehearsalError(f"No stack in {cdk_out} has an IotJobCleanup ({RESOURCE_TYPE}) resource.")
    return plans


def _plan_stack(name: str, template: Mapping[str, Any], cdk_out: Path) -> StackPlan:
    resources = template.get("Resources", {})

    def names_of(resource_type: str, key: str) -> list[str]:
        return [
            r["Properties"][key]
            for r in resources.values()
            if r["Type"] == resource_type and key in r.get("Properties", {})
        ]

    groups = names_of("AWS::IoT::ThingGroup", "ThingGroupName")
    attributes = {
        (logical_id, "Arn"): f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{r['Properties']['ThingGroupName']}"
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::IoT::ThingGroup" and "ThingGroupName" in r.get("Properties", {})
    }
    intrinsics = Intrinsics(template, attributes)
    cleanups = [
        _plan_cleanup(name, logical_id, resource, resources, intrinsics, cdk_out)
        for logical_id, resource in resources.items()
        if resource["Type"] == RESOURCE_TYPE
    ]
    return StackPlan(name, groups, names_of("AWS::IoT::Thing", "ThingName"), cleanups)


def _plan_cleanup(
    stack: str,
    logical_id: str,
    resource: Mapping[str, Any],
    resources: Mapping[str, Any],
    intrinsics: Intrinsics,
    cdk_out: Path,
) -> CleanupResource:
    properties = {k: intrinsics.render(v) for k, v in resource["Properties"].items() if k != "ServiceToken"}
    framework = resources[resource["Properties"]["ServiceToken"]["Fn::GetAtt"][0]]
    framework_env = framework["Properties"]["Environment"]["Variables"]

    def user_function(variable: str) -> HandlerFunction:
        function = resources[framework_env[variable]["Fn::GetAtt"][0]]
        return HandlerFunction(
            handler=function["Properties"]["Handler"],
            asset_dir=_asset_dir(function, cdk_out, logical_id),
            environment=function["Properties"].get("Environment", {}).get("Variables", {}),
            timeout_seconds=float(function["Properties"].get("Timeout", 3)),
        )

    return CleanupResource(
        stack,
        logical_id,
        properties,
        user_function("USER_ON_EVENT_FUNCTION_ARN"),
        user_function("USER_IS_COMPLETE_FUNCTION_ARN"),
    )


def _asset_dir(function: Mapping[str, Any], cdk_out: Path, logical_id: str) -> Path:
    """The function's code folder: from the CLI's asset metadata, else from its S3 key."""
    asset = function.get("Metadata", {}).get("aws:asset:path")
    key = function["Properties"].get("Code", {}).get("S3Key")
    if not asset and isinstance(key, str) and key.endswith(".zip"):
        asset = f"asset.{key.removesuffix('.zip')}"
    if not asset or not (cdk_out / asset).is_dir():
        raise RehearsalError(f"{logical_id}: the handler's asset folder is not in {cdk_out}.")
    return cdk_out / asset


def load_handler(function: HandlerFunction) -> ModuleType:
    """Import the handler module from its asset folder, under a name of its own."""
    module_name = function.handler.rsplit(".", 1)[0]
    path = function.asset_dir / f"{module_name}.py"
    if not path.is_file():
        raise RehearsalError(f"{path} does not exist: the asset folder does not hold the handler.")
    spec = importlib.util.spec_from_file_location(f"rehearsal_{module_name}_{uuid.uuid4().hex[:8]}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- deploy and destroy


@dataclass
class Outcome:
    resource: CleanupResource
    state: str = "waiting"  # waiting | deleting | complete | failed
    invocations: int = 0
    elapsed: float = 0.0
    reason: str = ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def iot_endpoint(
    clock: ScaledClock, deletion: DeletionTime, list_lag_seconds: float = 0.0
) -> Iterator[tuple[str, DeletionLifecycle]]:
    """moto's server on a free loopback port, with the DeleteJob lifecycle; stopped on exit."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    iot_backends[ACCOUNT][REGION].reset()  # moto's state is per process: start empty
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
    return boto3.client("iot", endpoint_url=endpoint, region_name=REGION, config=config, **CREDENTIALS)


def deploy(plans: list[StackPlan], endpoint: str, lifecycle: DeletionLifecycle) -> None:
    """Create what the stacks would have: groups, things, and the jobs their cleanups name.

    Jobs are created over the wire, then put in the state a fleet leaves them in by teardown
    time: COMPLETED, or IN_PROGRESS where the resource deletes with force (a continuous job).
    """
    iot = iot_client(endpoint)
    for plan in plans:
        things = plan.things or [f"{plan.name}-rehearsal-device"]  # a job needs a target
        for group in plan.thing_groups:
            iot.create_thing_group(thingGroupName=group)
        for thing in things:
            iot.create_thing(thingName=thing)
            for group in plan.thing_groups[:1]:
                iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
        targets = [f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}" for group in plan.thing_groups[:1]]
        targets = targets or [f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{things[0]}"]
        for cleanup in plan.cleanups:
            namespace = cleanup.properties.get("NamespaceId")
            for job_id in cleanup.job_ids:
                iot.create_job(
                    jobId=job_id,
                    targets=targets,
                    document=json.dumps({"operation": "rehearsal"}),
                    **({"namespaceId": namespace} if namespace else {}),
                )
                forced = str(cleanup.properties.get("Force", "false")).lower() == "true"
                lifecycle.set_status(job_id, "IN_PROGRESS" if forced else "COMPLETED")
    iot.create_job(jobId=BYSTANDER_JOB, targets=targets, document=json.dumps({"operation": "keep"}))
    lifecycle.set_status(BYSTANDER_JOB, "COMPLETED")


def destroy_resource(cleanup: CleanupResource, outcome: Outcome, endpoint: str, clock: ScaledClock) -> None:
    """One resource's Delete, as CloudFormation and the Provider framework would run it."""
    on_event_module = load_handler(cleanup.on_event)
    is_complete_module = load_handler(cleanup.is_complete)
    request = {
        "RequestType": "Delete",
        "ServiceToken": "arn:aws:lambda:rehearsal",
        "ResponseURL": "https://rehearsal.invalid/response",
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{cleanup.stack}/{uuid.uuid4()}",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": cleanup.logical_id,
        "PhysicalResourceId": f"iot-job-cleanup:{cleanup.logical_id}",
        "ResourceType": RESOURCE_TYPE,
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:rehearsal", **cleanup.properties},
    }
    timing = is_complete_module.Timing.from_environment(cleanup.is_complete.environment)
    attempts = int(timing.total_timeout // timing.query_interval)
    start = clock.now()
    try:
        outcome.state = "deleting"
        on_event_client = iot_client(endpoint, on_event_module.CLIENT_CONFIG)
        is_complete_client = iot_client(endpoint, is_complete_module.CLIENT_CONFIG)

        def on_event(event: Mapping[str, Any]) -> Mapping[str, Any]:
            outcome.invocations += 1
            return on_event_module.handle_on_event(
                event,
                client=on_event_client,
                timing=on_event_module.Timing.from_environment(cleanup.on_event.environment),
                remaining_lambda_seconds=cleanup.on_event.timeout_seconds,
                clock=clock.now,
                sleep=clock.sleep,
            )

        def is_complete(event: Mapping[str, Any]) -> Mapping[str, Any]:
            outcome.invocations += 1
            return is_complete_module.handle_is_complete(
                event,
                client=is_complete_client,
                timing=timing,
                remaining_lambda_seconds=cleanup.is_complete.timeout_seconds,
                clock=clock.now,
                sleep=clock.sleep,
            )

        replay_delete(
            request,
            on_event,
            is_complete,
            sleep=clock.sleep,
            query_interval=timing.query_interval,
            max_attempts=attempts,
        )
        outcome.state = "complete"
    except Exception as exc:  # the Provider reports any exception as FAILED with its message
        outcome.state, outcome.reason = "failed", str(exc)
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

    def job_state(self, job_id: str) -> str:
        job = self.lifecycle.backend.jobs.get(job_id)
        if job is None:
            self.gone_at.setdefault(job_id, self.elapsed())
            return f"gone after {self.gone_at[job_id]:.0f} s"
        if job.status == "DELETION_IN_PROGRESS":
            return "deleting"
        return "waiting for a slot" if self.outcomes_started() else f"{job.status.lower()}"

    def outcomes_started(self) -> bool:
        return any(outcome.state != "waiting" for outcome in self.outcomes)

    def frame(self) -> list[str]:
        with self.lifecycle._lock:
            self.lifecycle.settle()
            ours = {job for outcome in self.outcomes for job in outcome.resource.job_ids}
            in_use = len(self.lifecycle.deleting)
            ours_in_use = len(ours & set(self.lifecycle.deleting))
            lines = [
                f"destroy: {self.elapsed():5.0f} s simulated   deletion slots in use {in_use:2d}/10 "
                f"(ours {ours_in_use}, other stacks {in_use - ours_in_use})   "
                f"LimitExceededException answered: {self.lifecycle.refusals['LimitExceededException']}"
            ]
            for outcome in self.outcomes:
                states = [self.job_state(job) for job in outcome.resource.job_ids]
                gone = sum(state.startswith("gone") for state in states)
                deleting = states.count("deleting")
                waiting = len(states) - gone - deleting
                lines.append(
                    f"  {outcome.resource.stack}/{outcome.resource.logical_id}: {gone} gone, "
                    f"{deleting} deleting, {waiting} waiting   "
                    f"[{outcome.state}, invocation {outcome.invocations}]"
                )
            shown = [job for outcome in self.outcomes for job in outcome.resource.job_ids][
                : self.max_job_lines
            ]
            lines += [f"    {job:<40} {self.job_state(job)}" for job in shown]
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
    outcomes: list[Outcome]
    jobs_left: list[str]
    bystanders_touched: list[str]
    iot_calls: dict[str, int]
    limit_exceeded: int
    simulated_seconds: float

    @property
    def ok(self) -> bool:
        return (
            all(o.state == "complete" for o in self.outcomes)
            and not self.jobs_left
            and not self.bystanders_touched
        )


def rehearse(
    cdk_out: Path,
    *,
    stacks: list[str] | None = None,
    scenario: str = "calm",
    time_factor: float = 30.0,
    deletion_seconds: float = 60.0,
    seconds_per_target: float = 0.0,
    other_stacks_slots: int | None = None,
    out: TextIO | None = None,
    live: bool | None = None,
    refresh_seconds: float = 0.25,
) -> Report:
    plans = read_assembly(cdk_out, stacks)
    clock = ScaledClock(time_factor)
    out = out or sys.stdout
    live = out.isatty() if live is None else live
    contended = scenario == "contended"
    held = other_stacks_slots if other_stacks_slots is not None else (10 if contended else 0)
    list_lag = 5.0 if contended else 0.0
    out.write(
        f"Rehearsing deploy and destroy of {', '.join(p.name for p in plans)} against an IoT endpoint on "
        f"loopback.\nTime runs x{time_factor:g}: 1 s on screen is {time_factor:g} s simulated. A deletion "
        f"takes {deletion_seconds:g} s + {seconds_per_target:g} s per target. Scenario: {scenario}"
        f"{f', other stacks hold {held} of the 10 slots' if held else ''}"
        f"{f', ListJobs lags {list_lag:g} s behind' if list_lag else ''}.\n"
    )
    deletion = DeletionTime(deletion_seconds, seconds_per_target)
    with iot_endpoint(clock, deletion, list_lag) as (endpoint, lifecycle):
        deploy(plans, endpoint, lifecycle)
        outside: list[str] = []
        if held:
            outside = lifecycle.hold_slots(held, seconds=2 * deletion_seconds)
            if contended:  # more of their cleanups race ours for every freed slot
                outside += lifecycle.queue_outside_deletions(held, deletion_seconds, retry_seconds=1)
        outcomes = [Outcome(cleanup) for plan in plans for cleanup in plan.cleanups]
        everything = set(lifecycle.backend.jobs)
        ours = {job for outcome in outcomes for job in outcome.resource.job_ids}
        out.write(
            f"Deployed: {len(ours)} jobs owned by {len(outcomes)} cleanup resources, "
            f"{len(everything - ours)} others. Destroying:\n"
        )
        view = View(out, clock, lifecycle, outcomes, live)
        # CloudFormation deletes resources that do not depend on each other in parallel.
        workers = [
            threading.Thread(target=destroy_resource, args=(o.resource, o, endpoint, clock), daemon=True)
            for o in outcomes
        ]
        for worker in workers:
            worker.start()
        last_printed = -1.0
        while any(worker.is_alive() for worker in workers):
            if live or view.elapsed() - last_printed >= 30:
                view.draw()
                last_printed = view.elapsed()
            time.sleep(refresh_seconds)
        view.draw()
        with lifecycle._lock:
            lifecycle.settle()
            existing = set(lifecycle.backend.jobs)
            others_deleted = {job for job in everything - ours - set(outside) if job not in existing}
            report = Report(
                outcomes=outcomes,
                jobs_left=sorted(ours & existing),
                bystanders_touched=sorted(others_deleted),
                iot_calls=dict(lifecycle.calls),
                limit_exceeded=lifecycle.refusals["LimitExceededException"],
                simulated_seconds=view.elapsed(),
            )
    print_summary(report, out)
    return report


def print_summary(report: Report, out: TextIO) -> None:
    out.write("\nSummary\n")
    for o in report.outcomes:
        line = f"  {o.resource.stack}/{o.resource.logical_id}: {o.state.upper()} "
        line += f"after {o.elapsed:.0f} s simulated, {len(o.resource.job_ids)} jobs, "
        line += f"{o.invocations} handler invocations"
        out.write(line + (f"\n    reason: {o.reason}" if o.reason else "") + "\n")
    calls = ", ".join(f"{name} {count}" for name, count in sorted(report.iot_calls.items()))
    out.write(f"  IoT calls: {calls}; LimitExceededException answered {report.limit_exceeded} times\n")
    out.write(f"  jobs left: {', '.join(report.jobs_left) or 'none'}\n")
    out.write(f"  jobs outside the resources deleted: {', '.join(report.bystanders_touched) or 'none'}\n")
    out.write(("OK: every job is gone." if report.ok else "FAILED: see above.") + "\n")


def main(argv: list[str] | None = None, *, run: Callable[..., Report] = rehearse) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m iot_job_cleanup.rehearse", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--cdk-out", type=Path, default=Path("cdk.out"), help="the synthesized cloud assembly"
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
