"""iot-job-cleanup: delete AWS IoT jobs from the command line, on the engine the Lambda handler runs.

    iot-job-cleanup delete [--job-id ID ...] [--tag KEY=VALUE ...] [--thing-group NAME ...]
                           [--prefix P] [--namespace-id NS] [--force] [--drain DURATION]
                           [--dry-run] [--yes] [--region R] [--profile P] [--endpoint-url URL]
    iot-job-cleanup resume --stack NAME [--yes] [--dry-run] [--region R] [--profile P]

The selection is the one IotJobCleanup takes: the jobs named with --job-id, plus the jobs
that match every filter given (--tag AND --thing-group AND --prefix). The same engine as the
Lambda handler deletes them (slot scheduling, backoff, discovery, force and drain), with no
time cap. Exit codes: 0 every selected job is gone (or none matched, or a dry run), 1 jobs
are left (the reason is printed: a job that needs --force refused before any deletion, a
refusal by IoT, jobs left alone that matched after the prompt), 2 usage (or a question
nobody could answer), 130 interrupted by Ctrl-C, 143 stopped by SIGTERM (handled as Ctrl-C).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import math
import re
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from .engine import load_engine

__all__ = ["main", "parse_duration"]

EXIT_DONE, EXIT_LEFT, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")
RESOURCE_TYPE = "Custom::IotJobCleanup"  # the construct's (cleanup.py loads aws-cdk-lib)
RESUMABLE_STATUSES = frozenset({"DELETE_IN_PROGRESS", "DELETE_FAILED"})
FINISHED = ("DELETE_COMPLETE", "DELETE_SKIPPED")  # a resource's Delete done, or never to come
RETAINED = ("Retain", "RetainExceptOnCreate")  # DeletionPolicy values that keep it at stack deletion
LOG_LINE_SECONDS = 30.0  # without a terminal, a progress line this often
DEFAULT_DELETION_SECONDS = 60.0  # until a deletion of ours has been seen to finish
LOGGER = "iot_job_cleanup"  # the engine's logger
LISTED_BEFORE_ASKING = 20  # jobs listed per selector above the prompt; --dry-run lists them all


class UsageError(Exception):
    """Bad arguments: the message says which and what to write instead."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, as Ctrl-C's KeyboardInterrupt is."""


class Interrupted(Exception):  # noqa: N818 (what happened, said plainly)
    """Ctrl-C or SIGTERM: what was under way has been said; nothing more starts."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _interruption(exc: KeyboardInterrupt) -> tuple[str, int]:
    """How an interruption is named, and its exit code."""
    if isinstance(exc, Terminated):
        return "Terminated (SIGTERM)", EXIT_TERMINATED
    return "Interrupted", EXIT_INTERRUPTED


@contextmanager
def sigterm_as_interruption() -> Iterator[None]:
    """While the command runs, SIGTERM stops it as Ctrl-C does: what is under way and what is
    left is said. The handler that was there before is put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if not received:  # the first one stops the run; the report is not cut short by more
            received.append(signum)
            raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


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
        try:
            return session.client(service, config=engine.CLIENT_CONFIG, **extra)
        except ValueError as exc:
            if type(exc) is not ValueError:  # botocore's own (a region it cannot use): said as it is
                raise
            raise UsageError(  # boto3's "Invalid endpoint: ..."
                f"{exc}: write --endpoint-url (or AWS_ENDPOINT_URL) as a URL, e.g. http://localhost:5000."
            ) from exc

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

    def needs_force(self, request: Any) -> bool:
        """Running, and the run may neither force its deletion nor cancel it to drain."""
        return self.running and not request.force and request.drain is None

    def note(self, request: Any) -> str:
        if request.drain is not None and (self.running or self.devices_busy):
            return "cancelled first, deleted once its devices finish" + (
                "" if request.force else " (fails if they do not within the drain time)"
            )
        if self.needs_force(request):
            return "needs --force (or --drain)"
        return ""


def preview(engine: Any, iot: Any, request: Any, clock: Callable[[], float]) -> list[Candidate]:
    """Every job the selection covers now, found and judged as the engine does before it acts
    (its guard: every filter, the namespace, a refusal by I3): changes nothing."""
    cleanup = engine.JobCleanup(iot, request, clock=clock, marker="preview")
    return [Candidate.of(engine, look.job, listing) for look, listing in cleanup.candidates()]


def print_preview(candidates: list[Candidate], request: Any, out: TextIO, limit: int | None = None) -> None:
    """The candidates by selector; past ``limit`` a selector's jobs are counted, not listed."""
    by_selector: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        by_selector.setdefault(candidate.selector, []).append(candidate)
    filters = request.selection.describe()
    for selector, members in by_selector.items():
        title = "named with --job-id" if selector == "named" else f"found in {selector}, matching {filters}"
        out.write(f"{len(members)} job(s) {title}:\n")
        listed = members if limit is None else members[:limit]
        for candidate in listed:
            note = candidate.note(request)
            out.write(f"  {candidate.job_id:<40} {candidate.status:<22} {note}\n".rstrip() + "\n")
        if len(members) > len(listed):
            out.write(f"  ... and {len(members) - len(listed)} more (--dry-run lists every one)\n")


# --------------------------------------------------------------------------- progress


@dataclass
class Progress:
    """A progress bar on a terminal; plain lines every 30 s in a log. It reads the engine's
    own account of the cleanup (``JobCleanup.progress()``), never its internals."""

    out: TextIO
    total: int  # the jobs the preview found: more may be found while deleting
    live: bool
    clock: Callable[[], float]
    slots: int  # IoT's deletion slots, as the engine counts them
    planned: bool = False  # the engine has looked at the named jobs: it holds them all
    started: float = field(init=False)
    _last_line_at: float = field(init=False, default=-math.inf)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def line(self, state: Any) -> str:
        gone, draining, waiting = state.gone, state.draining, state.waiting
        deleting = state.deleting + state.finishing  # left the deletion list, not yet seen gone
        total = known = gone + deleting + draining + waiting
        if not (state.discovery_finished and self.planned):  # jobs the engine is yet to come to wait too
            total = max(self.total, known)
            waiting += total - known
        elapsed = self.clock() - self.started
        per_job = state.deletion_seconds or DEFAULT_DELETION_SECONDS
        left = max(per_job if deleting else 0.0, (waiting + deleting) * per_job / self.slots)
        width = 20
        filled = min(width, round(width * gone / total)) if total else width
        bar = "#" * filled + "-" * (width - filled)
        drained = f", {draining} draining" if draining else ""
        others = f" ({state.slots_held_by_others} by others)" if state.slots_held_by_others else ""
        throttled = f" | throttled {state.throttled}" if state.throttled else ""
        return (
            f"[{bar}] {gone}/{total} gone, {deleting} deleting{drained}, {waiting} waiting | "
            f"slots {state.slots_in_use}/{self.slots}{others} | LimitExceeded {state.limit_exceeded}"
            f"{throttled} | {_clock(elapsed)} elapsed, ~{_clock(left)} left"
        )

    def update(self, cleanup: Any) -> None:
        if self.live:
            self.out.write("\r\x1b[2K" + self.line(cleanup.progress()))
            self.out.flush()
        elif self.clock() - self._last_line_at >= LOG_LINE_SECONDS:
            self._last_line_at = self.clock()
            self.out.write(self.line(cleanup.progress()) + "\n")
            self.out.flush()

    def finish(self, state: Any) -> None:
        self.out.write(("\r\x1b[2K" if self.live else "") + self.line(state) + "\n")


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _one_line(text: object) -> str:
    """A message on one line, ending as a sentence."""
    line = " ".join(str(text).split())
    return line if line.endswith((".", "!", "?")) else line + "."


def _aws_error(exc: Exception) -> str:
    """A botocore error on one line, in words: the call, the code and IoT's message."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return _one_line(exc)
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "")) or "an error"
    hint = (
        " Check that the credentials used allow it, and for a service control policy or a permissions "
        "boundary that denies it."
        if "AccessDenied" in code or code == "UnauthorizedOperation"
        else ""
    )
    return _one_line(f"AWS refused {exc.operation_name}: {code}: {error.get('Message', '')}") + hint


def _ids(job_ids: Iterable[str]) -> str:
    return ", ".join(job_ids)


# --------------------------------------------------------------------------- running a cleanup

# The engine's messages name the construct's options; the delete command's are flags.
_FLAG_WORDS = (
    (re.compile(r'set force=True \(Force: "true"\)'), "pass --force"),
    (re.compile(r"set force=True"), "pass --force"),
    (re.compile(r"set a drain time"), "pass --drain DURATION"),
    (re.compile(r"\(drain\)"), "(--drain)"),
)


@dataclass
class Run:
    """One selection to delete, as the engine sees it."""

    request: Any
    title: str
    cancel_comment: str
    resumed: bool = False  # a stack's cleanup: its force and drain are the stack's, not flags

    def force_fix(self) -> str:
        """What to do about a job that needs force, in this command's words."""
        if self.resumed:
            return (
                "resume takes the cleanup's force and drain from the stack: delete such a job with "
                "`iot-job-cleanup delete --job-id ID --drain DURATION` (cancelled, then deleted once its "
                "devices finish) or `--force` (deleted while it runs), then run resume again."
            )
        return (
            "Pass --drain DURATION to have running jobs cancelled, then deleted once their devices "
            "finish, or --force to delete them while they run; or leave them out of the selection."
        )

    def in_own_words(self, message: object) -> str:
        """An engine message on one line, the construct's option names made this command's flags."""
        line = _one_line(message)
        if not self.resumed:
            for construct, flag in _FLAG_WORDS:
                line = construct.sub(flag, line)
        return line


def run_cleanup(
    engine: Any,
    clients: Clients,
    run: Run,
    *,
    out: TextIO,
    ask: Callable[[str, str], bool | None],
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
    running = [candidate for candidate in candidates if candidate.needs_force(run.request)]
    if running:  # the engine would fail on them after deleting the rest: refuse before the first
        named = ", ".join(f"{candidate.job_id!r} is {candidate.status}" for candidate in running)
        out.write(
            f"{run.title}: nothing was deleted: {len(running)} selected job(s) still running, and IoT "
            f"deletes a running job only with force ({named}). {run.force_fix()}\n"
        )
        return EXIT_LEFT
    confine_to = None  # with --yes, every job the selection covers, found now or while deleting
    if not yes:
        listing = io.StringIO()
        print_preview(candidates, run.request, listing, limit=LISTED_BEFORE_ASKING)
        answer = ask(f"{run.title}: delete {len(candidates)} job(s)? [y/N] ", listing.getvalue())
        if answer is None:
            out.write(
                f"{run.title}: {len(candidates)} job(s) would be deleted, and there is no terminal to ask "
                "on. Pass --yes to delete them, or --dry-run to list them.\n"
            )
            return EXIT_USAGE
        if not answer:
            out.write("Nothing was deleted.\n")
            return EXIT_LEFT
        confine_to = frozenset(candidate.job_id for candidate in candidates)  # what the answer covers
    return _delete(
        engine,
        iot,
        run,
        [candidate.job_id for candidate in candidates],
        confine_to=confine_to,
        out=out,
        live=live,
        clock=clock,
        sleep=sleep,
    )


def _delete(
    engine: Any,
    iot: Any,
    run: Run,
    listed: list[str],
    *,
    confine_to: frozenset[str] | None,
    out: TextIO,
    live: bool,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> int:
    from botocore.exceptions import BotoCoreError, ClientError  # the engine has loaded botocore

    cleanup = engine.JobCleanup(
        iot,
        run.request,
        clock=clock,
        sleep=sleep,
        hard_stop=math.inf,
        cancel_comment=run.cancel_comment,
        confine_to=confine_to,
    )
    progress = Progress(out, len(listed), live, clock, engine.DELETION_SLOTS)
    poll = run.request.query_interval or engine.Timing().poll_interval

    def account() -> Any:
        return _accounted(cleanup.progress(), listed, progress.planned)

    try:
        cleanup.plan()
        progress.planned = True
        done = cleanup.run_until(math.inf, poll, on_poll=progress.update)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (sigterm_as_interruption)
        name, code = _interruption(exc)
        state = account()
        progress.finish(state)
        _report_interruption(name, state, run, out)
        raise Interrupted(code) from None
    except engine.ForceRequiredError as exc:  # a job that was not running when the preview looked
        reason = (
            f"job {exc.job_id!r} is {exc.status}, and IoT deletes a running job only with force, so it was "
            f"left as it is (it was not running, or not there, when the jobs were listed). {run.force_fix()}"
        )
        return _failed(reason, account(), progress, run, out)
    except engine.CleanupError as exc:  # a refusal, a drain time over: the engine's message
        return _failed(run.in_own_words(exc), account(), progress, run, out)
    except (ClientError, BotoCoreError) as exc:  # a call failed for a reason no retry cures
        return _failed(_aws_error(exc), account(), progress, run, out)
    state = cleanup.progress()
    progress.finish(state)
    elapsed = clock() - progress.started
    left = _left(state)
    if done and not left:
        outcome = "every selected job is gone" if not state.held_back else "the job(s) you confirmed are gone"
    else:
        outcome = f"{len(left)} job(s) left"
    out.write(
        f"{run.title}: {outcome} after {_clock(elapsed)}; {iot.calls} IoT calls, "
        f"LimitExceededException {state.limit_exceeded} times.\n"
    )
    _report_left(state, out)
    return EXIT_DONE if done and not left and not state.held_back else EXIT_LEFT


def _accounted(state: Any, listed: list[str], planned: bool) -> Any:
    """The engine's account of the run. Until its plan (the first look at the named jobs) is
    made, it does not hold every job yet: the listed ones it does not account for were not
    started either."""
    if planned:
        return state
    known = {*state.deleting_ids, *state.cancelled_not_deleted, *state.not_started, *state.held_back}
    missing = tuple(job_id for job_id in listed if job_id not in known)
    return dataclasses.replace(state, not_started=(*state.not_started, *missing))


def _left(state: Any) -> list[str]:
    """Every selected job this run knows is not gone (held-back ones apart)."""
    return sorted({*state.deleting_ids, *state.cancelled_not_deleted, *state.not_started})


def _failed(reason: str, state: Any, progress: Progress, run: Run, out: TextIO) -> int:
    progress.finish(state)
    out.write(f"{run.title}: {reason}\n")
    if state.deleting_ids:
        out.write(
            f"{len(state.deleting_ids)} deletion(s) under way go on in IoT by themselves: "
            f"{_ids(state.deleting_ids)}.\n"
        )
    _report_left(state, out, again="Once the cause above is dealt with, run the same command again")
    return EXIT_LEFT


def _report_left(state: Any, out: TextIO, again: str = "Run the same command again") -> None:
    """Name every job this run left undone: cancelled and not deleted, not started, held back."""
    cancelled = state.cancelled_not_deleted
    not_started = [job_id for job_id in state.not_started if job_id not in cancelled]
    if cancelled:
        out.write(
            f"{len(cancelled)} job(s) this run cancelled are not deleted: {_ids(cancelled)}. "
            f"{again} to delete them.\n"
        )
    if not_started:
        out.write(
            f"{len(not_started)} selected job(s) not deleted, their deletion not started: "
            f"{_ids(not_started)}. {again} to delete them.\n"
        )
    if state.held_back:
        out.write(
            f"{len(state.held_back)} job(s) matched after you confirmed and were left alone: "
            f"{_ids(state.held_back)}; run the command again to delete them.\n"
        )


def _report_interruption(name: str, state: Any, run: Run, out: TextIO) -> None:
    """What goes on without us, and what is left undone. "No further action needed" only
    when nothing is: no job cancelled and not deleted, none not started, none held back, and
    no filter whose look for jobs (a whole walk that finds none left) is still to make."""
    under_way = state.deleting_ids
    undone = bool(state.cancelled_not_deleted or state.not_started or state.held_back)
    filtered = run.request.selection.has_filters
    if under_way:
        out.write(
            f"{name}: no more deletions start. {len(under_way)} deletion(s) under way go on in IoT by "
            f"themselves: {_ids(under_way)}"
        )
    else:
        out.write(f"{name}: no more deletions start; none is under way")
    out.write("; no further action needed.\n" if not (undone or filtered) else ".\n")
    _report_left(state, out)
    if filtered and not state.discovery_finished:
        out.write(
            "The filters' listing had not finished: more jobs may match. Run the same command again "
            "to delete them.\n"
        )
    elif filtered and not undone:
        out.write(
            "The last look for jobs the filters select (it finds jobs created meanwhile) was not made: "
            "run the same command again once these deletions finish to make sure none is left.\n"
        )


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
        "130 interrupted (Ctrl-C), 143 stopped by SIGTERM.",
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


def _ask_on_terminal(stdin: TextIO, out: TextIO) -> Callable[[str, str], bool | None]:
    def ask(question: str, listing: str = "") -> bool | None:
        """The answer, or None with no terminal to ask on; ``listing`` is shown first."""
        if not stdin.isatty():
            return None
        out.write(listing + question)
        out.flush()
        return stdin.readline().strip().lower() in ("y", "yes")

    return ask


def _traceback_file() -> str:
    """Where the traceback of the exception being handled was written, for a bug report."""
    try:
        with tempfile.NamedTemporaryFile("w", prefix="iot-job-cleanup-", suffix=".txt", delete=False) as file:
            traceback.print_exc(file=file)
    except OSError as exc:
        return f"its traceback could not be written: {exc}"
    return f"the traceback is in {file.name}"


def _configuration_errors() -> tuple[type[Exception], ...]:
    """botocore's errors about the local AWS set-up: raised before any call reaches AWS."""
    from botocore import exceptions

    names = (
        "NoRegionError",
        "NoCredentialsError",
        "PartialCredentialsError",
        "ProfileNotFound",
        "ConfigParseError",
        "ConfigNotFound",
        "InvalidConfigError",
        "InvalidRegionError",
        "InvalidEndpointConfigurationError",
        "UnknownCredentialError",
        "CredentialRetrievalError",
        "SSOTokenLoadError",
        "TokenRetrievalError",
        "UnauthorizedSSOTokenError",
    )
    return tuple(getattr(exceptions, name) for name in names if hasattr(exceptions, name))


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
    quiet = logging.getLogger(LOGGER)  # the engine's log lines are the Lambda's; here the output says it
    if not any(isinstance(handler, logging.NullHandler) for handler in quiet.handlers):
        quiet.addHandler(logging.NullHandler())
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

    codes: list[int] = []  # one per cleanup run to its end
    try:
        with sigterm_as_interruption():
            runs = _delete_runs(engine, args) if args.command == "delete" else None
            clients = clients or make_clients(engine, args)
            if runs is None:
                runs = _resume_runs(engine, clients, args, out)
                if isinstance(runs, int):
                    return runs
            for run in runs:
                codes.append(
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
                )
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"iot-job-cleanup: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Interrupted as exc:
        return exc.code
    except KeyboardInterrupt as exc:  # while looking or asking: this cleanup had started nothing
        name, code = _interruption(exc)
        nothing = "nothing more was deleted after the cleanups above" if codes else "this run deleted nothing"
        print(f"\niot-job-cleanup: {name[0].lower() + name[1:]}; {nothing}.", file=sys.stderr)
        return code
    except _configuration_errors() as exc:  # the local set-up, before any call reached AWS
        hint = (
            "Pass --region/--profile, or set AWS_DEFAULT_REGION."
            if isinstance(exc, (NoRegionError, NoCredentialsError))
            else "Check --profile, --region and the AWS configuration (aws configure list)."
        )
        print(f"iot-job-cleanup: {_one_line(exc)} {hint}", file=sys.stderr)
        return EXIT_LEFT if codes else EXIT_USAGE
    except engine.CleanupError as exc:  # e.g. a refusal while looking: the engine says what to check
        print(f"iot-job-cleanup: {_one_line(exc)}", file=sys.stderr)
        return EXIT_LEFT
    except (ClientError, BotoCoreError, engine.TransientError) as exc:
        print(
            f"iot-job-cleanup: {_aws_error(exc)} Jobs may be left: run the same command again.",
            file=sys.stderr,
        )
        return EXIT_LEFT
    except Exception as exc:  # a bug: one line here, the traceback in a file to report
        print(
            f"iot-job-cleanup: unexpected {type(exc).__name__}: {_one_line(exc)} This is a bug in "
            f"iot-job-cleanup ({_traceback_file()}); jobs may be left: --dry-run lists them.",
            file=sys.stderr,
        )
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
        runs.append(Run(request, f"{args.stack}/{logical_id}", comment, resumed=True))
    if not runs:
        out.write(f"Stack {args.stack} has no cleanup left to finish.\n")
    return runs


if __name__ == "__main__":
    sys.exit(main())
