"""iot-job-cleanup: delete AWS IoT jobs from the command line, on the engine the Lambda handler runs.

    iot-job-cleanup delete [--job-id ID ...] [--tag KEY=VALUE ...] [--thing-group NAME ...]
                           [--prefix P] [--namespace-id NS] [--force] [--drain DURATION]
                           [--dry-run] [--yes] [--region R] [--profile P] [--endpoint-url URL]
    iot-job-cleanup resume --stack NAME [--yes] [--dry-run] [--region R] [--profile P]

The selection is the one IotJobCleanup takes: the jobs named with --job-id, plus the jobs
that match every filter given (--tag AND --thing-group AND --prefix). The same engine as the
Lambda handler deletes them (slot scheduling, backoff, discovery, force and drain), with no
time cap. Exit codes: 0 every selected job is gone (or none matched, or a dry run), 1 jobs
are left, 2 usage (or a question nobody could answer), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from .engine import load_engine

__all__ = ["main", "parse_duration"]

EXIT_DONE, EXIT_LEFT, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")
RESOURCE_TYPE = "Custom::IotJobCleanup"  # the construct's (cleanup.py loads aws-cdk-lib)
RESUMABLE_STATUSES = frozenset({"DELETE_IN_PROGRESS", "DELETE_FAILED"})
FINISHED = ("DELETE_COMPLETE", "DELETE_SKIPPED")  # a resource's Delete done, or never to come
RETAINED = ("Retain", "RetainExceptOnCreate")  # DeletionPolicy values that keep it at stack deletion
LOG_LINE_SECONDS = 30.0  # without a terminal, a progress line this often
DEFAULT_DELETION_SECONDS = 60.0  # until a deletion of ours has been seen to finish


class UsageError(Exception):
    """Bad arguments: the message says which and what to write instead."""


class Interrupted(Exception):  # noqa: N818 (what happened, said plainly)
    """Ctrl-C: what was under way has been said; nothing more starts."""


def parse_duration(text: str) -> float:
    """Seconds in ``text``: 90, 90s, 10m, 1h, 1h30m."""
    match = DURATION.fullmatch(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise UsageError(f"--drain {text!r}: write a duration such as 600, 90s, 10m or 1h30m.")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _tag(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise UsageError(f"--tag {text!r}: write KEY=VALUE, e.g. --tag fleet=demo-ota.")
    return key, value


# --------------------------------------------------------------------------- the clients


@dataclass
class Clients:
    iot: Any
    tagging: Any
    cloudformation: Any
    states: Any = None


def make_clients(engine: Any, args: argparse.Namespace) -> Clients:
    import boto3  # only now: `--help` and usage errors need no AWS SDK

    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    extra = {"endpoint_url": args.endpoint_url} if args.endpoint_url else {}

    def client(service: str) -> Any:
        return session.client(service, config=engine.CLIENT_CONFIG, **extra)

    return Clients(
        client("iot"), client("resourcegroupstaggingapi"), client("cloudformation"), client("stepfunctions")
    )


# --------------------------------------------------------------------------- what would be deleted


@dataclass(frozen=True)
class Candidate:
    job_id: str
    status: str
    selector: str  # "named" or the listing that found it
    running: bool  # IoT deletes it only with force
    devices_busy: int

    @classmethod
    def of(cls, engine: Any, job: Mapping[str, Any], selector: str) -> Candidate:
        status = job["status"]
        return cls(
            job["jobId"], status, selector, status in engine.RUNNING_STATUSES, engine.devices_busy(job)
        )

    def note(self, request: Any) -> str:
        if request.drain is not None and (self.running or self.devices_busy):
            return "cancelled first, deleted once its devices finish" + (
                "" if request.force else " (fails if they do not within the drain time)"
            )
        if self.running and not request.force:
            return "needs --force (or --drain)"
        return ""


def preview(engine: Any, iot: Any, request: Any, clock: Callable[[], float]) -> list[Candidate]:
    """Every job the selection covers now, as the engine would find it: changes nothing."""
    found: list[Candidate] = []
    for job_id in request.job_ids:
        job = iot.describe(job_id)
        if job is not None:
            found.append(Candidate.of(engine, job, "named"))
    if request.selection.has_filters:
        walk = engine.Discovery(iot, request.selection, clock=clock)
        while (match := walk.next_match()) is not None:
            job = iot.describe(match.job_id)
            if job is not None and walk.in_namespace(job):
                found.append(Candidate.of(engine, job, match.listing))
    return found


def print_preview(candidates: list[Candidate], request: Any, out: TextIO) -> None:
    by_selector: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        by_selector.setdefault(candidate.selector, []).append(candidate)
    filters = request.selection.describe()
    for selector, members in by_selector.items():
        title = "named with --job-id" if selector == "named" else f"found in {selector}, matching {filters}"
        out.write(f"{len(members)} job(s) {title}:\n")
        for candidate in members:
            note = candidate.note(request)
            out.write(f"  {candidate.job_id:<40} {candidate.status:<22} {note}\n".rstrip() + "\n")


# --------------------------------------------------------------------------- progress


@dataclass
class Progress:
    """A progress bar on a terminal; plain lines every 30 s in a log."""

    out: TextIO
    total: int
    live: bool
    clock: Callable[[], float]
    slots: int  # IoT's deletion slots, as the engine counts them
    started: float = field(init=False)
    _last_line_at: float = field(init=False, default=-math.inf)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def counts(self, cleanup: Any) -> tuple[int, int, int, int]:
        deleting = len(cleanup.ours_deleting)
        draining = len(cleanup.draining)
        gone = min(self.total, len(cleanup.seen_gone))
        waiting = max(0, self.total - gone - deleting - draining)
        return gone, deleting, draining, waiting

    def line(self, cleanup: Any) -> str:
        gone, deleting, draining, waiting = self.counts(cleanup)
        in_use = len(cleanup.deleting_anywhere | cleanup.ours_deleting)
        elapsed = self.clock() - self.started
        per_job = cleanup.duration[1] if cleanup.duration else DEFAULT_DELETION_SECONDS
        left = max(per_job if deleting else 0.0, (waiting + deleting) * per_job / self.slots)
        width = 20
        filled = round(width * gone / self.total) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        drained = f", {draining} draining" if draining else ""
        return (
            f"[{bar}] {gone}/{self.total} gone, {deleting} deleting{drained}, {waiting} waiting | "
            f"slots {in_use}/{self.slots} | LimitExceeded {cleanup.limit_exceeded} | "
            f"{_clock(elapsed)} elapsed, ~{_clock(left)} left"
        )

    def update(self, cleanup: Any) -> None:
        if self.live:
            self.out.write("\r\x1b[2K" + self.line(cleanup))
            self.out.flush()
        elif self.clock() - self._last_line_at >= LOG_LINE_SECONDS:
            self._last_line_at = self.clock()
            self.out.write(self.line(cleanup) + "\n")
            self.out.flush()

    def finish(self, cleanup: Any) -> None:
        self.out.write(("\r\x1b[2K" if self.live else "") + self.line(cleanup) + "\n")


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


# --------------------------------------------------------------------------- running a cleanup


@dataclass
class Run:
    """One selection to delete, as the engine sees it."""

    request: Any
    title: str
    cancel_comment: str


def run_cleanup(
    engine: Any,
    clients: Clients,
    run: Run,
    *,
    out: TextIO,
    ask: Callable[[str], bool | None],
    dry_run: bool,
    yes: bool,
    live: bool,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> int:
    iot = engine.IotJobs(
        clients.iot, run.request.namespace_id, tagging=clients.tagging, clock=clock, sleep=sleep
    )
    candidates = preview(engine, iot, run.request, clock)
    if not candidates:
        out.write(f"{run.title}: no job matches, nothing to delete.\n")
        return EXIT_DONE
    if dry_run:
        print_preview(candidates, run.request, out)
        out.write(f"Dry run: {len(candidates)} job(s) would be deleted; nothing was changed.\n")
        return EXIT_DONE
    if not yes:
        answer = ask(f"{run.title}: delete {len(candidates)} job(s)? [y/N] ")
        if answer is None:
            out.write(
                f"{run.title}: {len(candidates)} job(s) would be deleted, and there is no terminal to ask "
                "on. Pass --yes to delete them, or --dry-run to list them.\n"
            )
            return EXIT_USAGE
        if not answer:
            out.write("Nothing was deleted.\n")
            return EXIT_LEFT
    return _delete(engine, iot, run, len(candidates), out=out, live=live, clock=clock, sleep=sleep)


def _delete(
    engine: Any,
    iot: Any,
    run: Run,
    total: int,
    *,
    out: TextIO,
    live: bool,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> int:
    cleanup = engine.JobCleanup(
        iot, run.request, clock=clock, sleep=sleep, hard_stop=math.inf, cancel_comment=run.cancel_comment
    )
    progress = Progress(out, total, live, clock, engine.DELETION_SLOTS)
    poll = run.request.query_interval or engine.Timing().poll_interval
    try:
        cleanup.plan()
        done = cleanup.run_until(math.inf, poll, on_poll=progress.update)
    except KeyboardInterrupt:
        progress.finish(cleanup)
        under_way = sorted(cleanup.ours_deleting)
        out.write(
            f"Interrupted: no more deletions start. {len(under_way)} deletion(s) under way go on in IoT"
        )
        out.write(
            " by themselves, no further action needed" + (f": {', '.join(under_way)}" if under_way else "")
        )
        out.write(".\n")
        if cleanup.draining:
            out.write(
                f"{len(cleanup.draining)} job(s) were cancelled to drain and are not deleted: "
                f"{', '.join(sorted(cleanup.draining))}. Run the same command again to finish them.\n"
            )
        raise Interrupted from None
    except engine.CleanupError as exc:
        progress.finish(cleanup)
        out.write(f"{run.title}: {exc}\n")
        return EXIT_LEFT
    progress.finish(cleanup)
    elapsed = clock() - progress.started
    left = [job_id for job_id, _ in cleanup.remaining()]
    outcome = "every selected job is gone" if done and not left else f"{len(left)} job(s) left"
    out.write(
        f"{run.title}: {outcome} after {_clock(elapsed)}; {iot.calls} IoT calls, "
        f"LimitExceededException {cleanup.limit_exceeded} times.\n"
    )
    return EXIT_DONE if done and not left else EXIT_LEFT


# --------------------------------------------------------------------------- resume: a stack's cleanups


class UnresolvableError(Exception):
    """A property depends on something the stack does not tell (e.g. Fn::GetAtt)."""


@dataclass
class StackFacts:
    name: str
    stack_id: str
    region: str
    parameters: dict[str, str | list[str]]
    physical_ids: dict[str, str]

    def pseudo(self, name: str) -> str | None:
        """A pseudo parameter's value: the region asked, and the rest from the stack id."""
        arn = self.stack_id.split(":")
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": arn[4] if len(arn) > 4 else "",
            "AWS::Partition": arn[1] if len(arn) > 1 else "aws",
            "AWS::StackName": self.name,
            "AWS::StackId": self.stack_id,
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def resolve(self, value: Any) -> Any:
        """Just enough of CloudFormation's intrinsic functions for a cleanup's properties."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                for answer in (
                    self.pseudo(argument),
                    self.parameters.get(argument),
                    self.physical_ids.get(argument),
                ):
                    if answer is not None:
                        return answer
                raise UnresolvableError(f"Ref {argument}")
            if function == "Fn::Join":
                separator, parts = argument
                resolved = self.resolve(parts)
                return separator.join(
                    str(part) for part in (resolved if isinstance(resolved, list) else [resolved])
                )
            if function == "Fn::Split":
                separator, text = argument
                return str(self.resolve(text)).split(separator)
            if function == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if function.startswith("Fn::") or function == "Condition":
                raise UnresolvableError(f"{function} {json.dumps(argument)[:80]}")
        return {key: self.resolve(item) for key, item in value.items()}


def _parameter_value(value: str, parameter_type: str) -> str | list[str]:
    """A list parameter (CommaDelimitedList, List<...>) is a list to Ref; DescribeStacks
    gives it comma-separated."""
    listed = parameter_type == "CommaDelimitedList" or "List<" in parameter_type
    return value.split(",") if listed else value


def _pages(client: Any, operation: str, key: str, **params: Any) -> Iterator[Any]:
    token = None
    while True:
        page = getattr(client, operation)(**params, **({"NextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return


def stack_cleanups(clients: Clients, stack: str, out: TextIO) -> list[tuple[str, dict[str, Any]]]:
    """The stack's cleanup resources not deleted yet, with their properties resolved."""
    (description,) = clients.cloudformation.describe_stacks(StackName=stack)["Stacks"]
    resources = list(
        _pages(clients.cloudformation, "list_stack_resources", "StackResourceSummaries", StackName=stack)
    )
    body = clients.cloudformation.get_template(StackName=stack, TemplateStage="Processed")["TemplateBody"]
    template = json.loads(body) if isinstance(body, str) else body
    facts = StackFacts(
        name=description["StackName"],
        stack_id=description["StackId"],
        region=clients.cloudformation.meta.region_name,
        parameters={
            p["ParameterKey"]: _parameter_value(
                p.get("ResolvedValue") or p.get("ParameterValue", ""),
                template.get("Parameters", {}).get(p["ParameterKey"], {}).get("Type", "String"),
            )
            for p in description.get("Parameters", [])
        },
        physical_ids={r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources},
    )
    found = []
    for resource in resources:
        logical_id = resource["LogicalResourceId"]
        if resource["ResourceType"] != RESOURCE_TYPE or resource["ResourceStatus"] in FINISHED:
            continue
        if template["Resources"][logical_id].get("DeletionPolicy") in RETAINED:
            out.write(f"{stack}/{logical_id}: DeletionPolicy Retain: its jobs stay, as at cdk destroy.\n")
            continue
        raw = {
            k: v
            for k, v in template["Resources"][logical_id].get("Properties", {}).items()
            if k != "ServiceToken"
        }
        try:
            properties = facts.resolve(raw)
        except UnresolvableError as exc:
            properties = _properties_from_the_waiter(clients, resources, logical_id)
            if properties is None:
                out.write(
                    f"{stack}/{logical_id}: its properties depend on {exc}, which CloudFormation does not "
                    "tell, and the provider's waiter has no Delete of it on record. Delete its jobs with "
                    "`iot-job-cleanup delete --job-id ...`.\n"
                )
                continue
        found.append((logical_id, properties))
    return found


def _properties_from_the_waiter(
    clients: Clients, resources: list[Any], logical_id: str
) -> dict[str, Any] | None:
    """The resolved properties CloudFormation sent with the resource's last Delete: the
    Provider's waiter state machine got them as its execution input."""
    machines = [
        r["PhysicalResourceId"]
        for r in resources
        if r["ResourceType"] == "AWS::StepFunctions::StateMachine" and r.get("PhysicalResourceId")
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


# --------------------------------------------------------------------------- the command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iot-job-cleanup",
        description="Delete AWS IoT jobs through IoT's 10 deletion slots, waiting until each is gone.",
        epilog="Exit codes: 0 all selected jobs gone (or none matched, or a dry run), 1 jobs left, 2 usage, "
        "130 interrupted.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dry-run", action="store_true", help="list what would be deleted; change nothing")
    common.add_argument("--yes", action="store_true", help="do not ask before deleting")
    common.add_argument("--region", help="AWS region (default: the profile's or AWS_REGION)")
    common.add_argument("--profile", help="AWS profile")
    common.add_argument(
        "--endpoint-url", help="IoT/CloudFormation endpoint (default: AWS_ENDPOINT_URL or AWS's)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    delete = commands.add_parser("delete", parents=[common], help="delete the jobs a selection covers")
    delete.add_argument(
        "--job-id", action="append", default=[], metavar="ID", help="a job to delete (repeatable)"
    )
    delete.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="jobs carrying this tag (repeatable: all)",
    )
    delete.add_argument(
        "--thing-group", action="append", default=[], metavar="NAME", help="jobs targeting this group (any)"
    )
    delete.add_argument("--prefix", help="jobs whose id starts with this")
    delete.add_argument("--namespace-id", help="the jobs' customer-managed namespace")
    delete.add_argument("--force", action="store_true", help="also delete jobs that are still running")
    delete.add_argument(
        "--drain", metavar="DURATION", help="cancel running jobs and give their devices this long (e.g. 10m)"
    )
    resume = commands.add_parser(
        "resume", parents=[common], help="finish a stack's cleanups (stack being deleted or DELETE_FAILED)"
    )
    resume.add_argument("--stack", required=True, help="the stack's name or id")
    return parser


def _ask_on_terminal(stdin: TextIO, out: TextIO) -> Callable[[str], bool | None]:
    def ask(question: str) -> bool | None:
        if not stdin.isatty():
            return None
        out.write(question)
        out.flush()
        return stdin.readline().strip().lower() in ("y", "yes")

    return ask


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    stdin: TextIO | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    clients: Clients | None = None,
) -> int:
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        engine = load_engine()
    except ModuleNotFoundError as exc:  # the engine talks to AWS with boto3
        print(
            f"iot-job-cleanup: {exc.name} is not installed: pip install 'iot-job-cleanup[cli]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    ask = _ask_on_terminal(stdin or sys.stdin, out)
    live = out.isatty()
    from botocore.exceptions import (  # the engine has loaded botocore
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        runs = _delete_runs(engine, args) if args.command == "delete" else None
        clients = clients or make_clients(engine, args)
        if runs is None:
            runs = _resume_runs(engine, clients, args, out)
            if isinstance(runs, int):
                return runs
        codes = [
            run_cleanup(
                engine,
                clients,
                run,
                out=out,
                ask=ask,
                dry_run=args.dry_run,
                yes=args.yes,
                live=live,
                clock=clock,
                sleep=sleep,
            )
            for run in runs
        ]
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"iot-job-cleanup: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Interrupted:
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # while looking or asking: nothing was started
        print("\niot-job-cleanup: interrupted; this run deleted nothing.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (NoRegionError, NoCredentialsError) as exc:  # before anything was changed
        print(f"iot-job-cleanup: {exc} Pass --region/--profile, or set AWS_DEFAULT_REGION.", file=sys.stderr)
        return EXIT_USAGE
    except (ClientError, BotoCoreError, engine.CleanupError, engine.TransientError) as exc:
        print(f"iot-job-cleanup: {exc}. Jobs may be left: run the same command again.", file=sys.stderr)
        return EXIT_LEFT
    return max(codes, default=EXIT_DONE)


def _delete_runs(engine: Any, args: argparse.Namespace) -> list[Run]:
    if not (args.job_id or args.tag or args.thing_group or args.prefix):
        raise UsageError("select jobs with --job-id, --tag, --thing-group or --prefix (any mix).")
    selection = engine.Selection(
        job_ids=tuple(args.job_id),
        tags=tuple(sorted(_tag(text) for text in args.tag)),
        thing_groups=tuple(args.thing_group),
        prefix=args.prefix,
        namespace_id=args.namespace_id,
    )
    try:
        selection.check()
    except engine.InvalidPropertiesError as exc:
        raise UsageError(str(exc)) from exc
    drain = parse_duration(args.drain) if args.drain is not None else None
    request = engine.CleanupRequest(selection=selection, force=args.force, drain=drain)
    comment = (
        "Cancelled by iot-job-cleanup (command line); deleted once its devices finish "
        f"(drain {drain or 0:.0f} s)."
    )
    return [Run(request, "iot-job-cleanup", comment)]


def _resume_runs(engine: Any, clients: Clients, args: argparse.Namespace, out: TextIO) -> list[Run] | int:
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
        runs.append(Run(request, f"{args.stack}/{logical_id}", comment))
    if not runs:
        out.write(f"Stack {args.stack} has no cleanup left to finish.\n")
    return runs


if __name__ == "__main__":
    sys.exit(main())
