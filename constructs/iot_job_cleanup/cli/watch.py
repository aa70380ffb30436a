"""``watch``: follow a stack's deletion, each cleanup's stage and its progress, read-only.

A cleanup is the set of ``Custom::IotJobCleanup`` resources of one construct: its stages.
They are grouped by their ``Cleanup`` property (the construct's path below the stack; by
logical id in an older template without it) and ordered by ``Stage`` (a single-stage cleanup
may lack ``Stage`` and ``Stages``: stage 1 of 1). CloudFormation deletes the stages one after
another, so the stage running is the one ``DELETE_IN_PROGRESS``, else the next not deleted.
Statuses come from ListStackResources, properties from the template as ``resume`` reads them.

Progress comes from IoT. The jobs a cleanup selects are found once, at the start, by the
engine's read-only preview (``candidates.preview``); each refresh then pages ListJobs (every
status; in the cleanup's namespace when it has one) to tell which of them are left and which
are being deleted, and how many jobs of the account and region hold one of the deletion
slots. The rate is the decrease of the jobs left since it began; the time left, the jobs left
at that rate.

Nothing here deletes, cancels or changes anything: the calls are DescribeStacks,
ListStackResources, GetTemplate (and the waiter's ListExecutions and DescribeExecution, as
``resume`` reads them), DescribeJob, ListJobs and ListTagsForResource.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..cfn import RESOURCE_TYPE, UnresolvableError
from ..engine import Engine
from .candidates import preview
from .clients import Clients, endpoint_problem, pages
from .errors import (
    EXIT_DONE,
    EXIT_LEFT,
    EXIT_USAGE,
    aws_error,
    configuration_errors,
    counted,
    interruption,
    one_line,
)
from .progress import duration
from .resume import (
    FINISHED,
    RESUMABLE_STATUSES,
    StackRead,
    cleanup_properties,
    describe,
    no_such_stack,
    read_stack,
)
from .run import Console

__all__ = ["DEFAULT_INTERVAL", "Watched", "watch_stack"]

DEFAULT_INTERVAL = 10.0  # seconds between refreshes
MIN_INTERVAL = 1.0  # ListJobs pages every refresh: no faster than this
REFRESH_FAILURES = 3  # refreshes in a row AWS refuses before the watch gives up
LIST_PAGE = 250  # ListJobs' largest page
DELETING = "DELETION_IN_PROGRESS"  # a job's status while IoT deletes it
IN_PROGRESS, FAILED, COMPLETE = "DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETE_COMPLETE"
GONE = "gone (no longer exists)"  # the stack's status once DescribeStacks no longer finds it


def jobs(count: int) -> str:
    """A count of jobs, its noun agreeing: 1 job, 2 jobs."""
    return counted(count, "job")


def per_minute(per_second: float) -> str:
    """A rate as the output says it: 12 jobs, 1 job, 0.5 jobs (a minute)."""
    value = per_second * 60
    text = f"{value:.0f}" if value >= 10 else f"{value:.1f}".removesuffix(".0")
    return f"{text} {'job' if text == '1' else 'jobs'}"


@dataclass
class Stage:
    """One resource of a cleanup, as ListStackResources tells it."""

    logical_id: str
    number: int
    status: str = ""
    reason: str = ""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass
class Watched:
    """One cleanup: its stages, the jobs it selected at the start, what IoT shows of them."""

    name: str  # its Cleanup path, or the logical id of a resource without one
    stages: list[Stage]
    count: int  # its Stages (at least the resources found)
    kept: bool = False  # DeletionPolicy Retain: CloudFormation sends it no Delete
    namespace_id: str | None = None
    selected: frozenset[str] | None = None  # None: not known (``unknown`` says why) or not needed
    unknown: str = ""
    left: int = 0
    deleting: int = 0
    start_left: int | None = None  # the jobs left when the rate began to count
    since: float = 0.0  # the last time the jobs left stood at ``start_left``

    @property
    def finished(self) -> bool:
        return all(stage.finished for stage in self.stages)

    @property
    def failed(self) -> Stage | None:
        return next((stage for stage in self.stages if stage.status == FAILED), None)

    @property
    def current(self) -> Stage:
        """The stage CloudFormation is deleting, else the next one it will, else the last."""
        running = [stage for stage in self.stages if stage.status == IN_PROGRESS]
        waiting = [stage for stage in self.stages if not stage.finished]
        return (running or waiting or self.stages[-1:])[0]

    def stage_words(self) -> str:
        if self.kept:
            return "kept (DeletionPolicy Retain): its jobs stay"
        failed = self.failed
        if failed is not None:
            reason = f": {one_line(failed.reason)}" if failed.reason else ""
            return f"stage {failed.number} of {self.count} FAILED{reason}"
        if self.finished:
            return "finished" if self.count == 1 else f"finished, all {self.count} stages deleted"
        stage = self.current
        if stage.status == IN_PROGRESS:
            return f"stage {stage.number} of {self.count} running"
        return f"waiting for CloudFormation to start stage {stage.number} of {self.count}"

    def observe(self, listed: Mapping[str, str], now: float) -> None:
        """What one ListJobs walk shows of the selected jobs (job id -> status)."""
        if self.selected is None:
            return
        self.left = sum(1 for job_id in self.selected if job_id in listed)
        self.deleting = sum(1 for job_id in self.selected if listed.get(job_id) == DELETING)
        if self.start_left is None or self.left >= self.start_left:  # no decrease yet (or a job came back)
            self.start_left, self.since = self.left, now

    def rate(self, now: float) -> float | None:
        """Jobs deleted a second since the decrease began; None until one was seen."""
        if self.start_left is None or self.left >= self.start_left or now <= self.since:
            return None
        return (self.start_left - self.left) / (now - self.since)

    def progress_words(self, now: float) -> str:
        if self.kept or self.selected is None:
            return f"jobs unknown: {self.unknown}" if self.unknown else ""
        total = len(self.selected)
        if not total:
            return "no job left (none found when the watch began)"
        words = f"{self.left} of {jobs(total)} left, {self.deleting} deleting"
        if not self.left:
            return words
        rate = self.rate(now)
        if rate is None:
            return f"{words}; deleted per minute not known yet, time left unknown"
        return f"{words}; {per_minute(rate)} deleted per minute, about {duration(self.left / rate)} left"

    def line(self, now: float) -> str:
        progress = self.progress_words(now)
        return f"{self.name}: {self.stage_words()}" + (f"; {progress}" if progress else "")


def watch_stack(engine: Engine, clients: Clients, args: argparse.Namespace, console: Console) -> int:
    """``watch --stack NAME``: refresh every ``--interval`` until every cleanup finished (0), one
    failed (1), or Ctrl-C (130); 2 when the stack cannot be watched."""
    from botocore.exceptions import BotoCoreError, ClientError  # the engine has loaded botocore
    from botocore.parsers import ResponseParserError  # an endpoint that is not AWS's

    local_set_up = configuration_errors()
    region = clients.cloudformation.meta.region_name
    view = View(console, args.stack, engine.DELETION_SLOTS)
    try:
        try:
            description = describe(clients.cloudformation, args.stack)
            if description is None:
                return refuse(f"{no_such_stack(args.stack, region)}.")
            status = description["StackStatus"]
            if status not in RESUMABLE_STATUSES:
                return refuse(
                    f"Stack {args.stack} is {status}: watch follows a stack being deleted "
                    "(DELETE_IN_PROGRESS) or whose deletion failed (DELETE_FAILED). Start its deletion "
                    f"(cdk destroy), then run iot-job-cleanup watch --stack {args.stack}."
                )
            stack_id = description["StackId"]
            read = read_stack(clients, stack_id)
            cleanups = cleanups_of(read)
            if not cleanups:
                return refuse(
                    f"Stack {args.stack} has no IotJobCleanup resource ({RESOURCE_TYPE}): nothing to "
                    "watch. Check --stack (a nested stack's cleanups are watched by its own name)."
                )
            for cleanup in cleanups:
                select(engine, clients, read, cleanup, console)
        except local_set_up:
            raise  # the command's own message and exit code
        except (ClientError, BotoCoreError, ResponseParserError) as exc:
            problem = endpoint_problem(exc, clients.wire, getattr(args, "endpoint_url", None))
            if problem is not None:  # the stack cannot be watched from here
                return refuse(f"{problem}; nothing is watched.")
            print(f"iot-job-cleanup: {aws_error(exc)} Nothing is watched.", file=sys.stderr)
            return EXIT_LEFT
        namespaces = {cleanup.namespace_id for cleanup in cleanups if cleanup.namespace_id}
        first = True  # the first refresh has the stack as just read
        reason = read.description.get("StackStatusReason", "")
        failures = 0
        while True:
            try:
                if not first:
                    status, reason, resources = stack_now(clients.cloudformation, stack_id)
                    update_stages(cleanups, resources)
                first = False
                listed, slots_in_use = jobs_now(clients.iot, namespaces)
                failures = 0
            except local_set_up:
                raise
            except (ClientError, BotoCoreError, ResponseParserError) as exc:
                failures += 1
                problem = endpoint_problem(exc, clients.wire, getattr(args, "endpoint_url", None))
                said = f"{problem}." if problem is not None else aws_error(exc)
                if failures >= REFRESH_FAILURES:
                    view.keep()
                    print(
                        f"iot-job-cleanup: {said} The watch stopped after {failures} refreshes "
                        "in a row failed; it changed nothing. Run it again.",
                        file=sys.stderr,
                    )
                    return EXIT_LEFT
                view.note(f"refresh failed: {said} Trying again in {args.interval:g} s.")
                console.sleep(args.interval)
                continue
            now = console.clock()
            for cleanup in cleanups:
                cleanup.observe(listed.get(cleanup.namespace_id, {}), now)
            view.draw(status, cleanups, slots_in_use)
            code = verdict(view, status, reason, cleanups)
            if code is not None:
                return code
            console.sleep(args.interval)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (sigterm_as_interruption)
        name, code = interruption(exc)
        view.keep(last_seen=True)
        console.out.write(
            f"{name}: the watch stopped; it changed nothing, and CloudFormation goes on with "
            f"{args.stack}. Run iot-job-cleanup watch --stack {args.stack} to follow it again.\n"
        )
        return code


def refuse(message: str) -> int:
    """A stack that cannot be watched: one line, exit 2."""
    print(f"iot-job-cleanup: {message}", file=sys.stderr)
    return EXIT_USAGE


def stack_now(cloudformation: Any, stack_id: str) -> tuple[str, str, list[Any] | None]:
    """The stack's status, its reason, and its resources; None for a stack deleted (or gone):
    every resource of it was deleted."""
    description = describe(cloudformation, stack_id)
    if description is None:
        return GONE, "", None
    if description["StackStatus"] == COMPLETE:
        return COMPLETE, "", None
    resources = list(
        pages(cloudformation, "list_stack_resources", "StackResourceSummaries", StackName=stack_id)
    )
    return description["StackStatus"], description.get("StackStatusReason", ""), resources


def update_stages(cleanups: Iterable[Watched], resources: list[Any] | None) -> None:
    """Each stage's status from ListStackResources; None (the stack deleted): all deleted."""
    by_id = {resource["LogicalResourceId"]: resource for resource in resources or []}
    for cleanup in cleanups:
        for stage in cleanup.stages:
            resource = by_id.get(stage.logical_id)
            if resources is None:
                stage.status, stage.reason = COMPLETE, ""
            elif resource is not None:
                stage.status = resource["ResourceStatus"]
                stage.reason = resource.get("ResourceStatusReason", "") or ""


def cleanups_of(read: StackRead) -> list[Watched]:
    """The stack's cleanups: its cleanup resources grouped by ``Cleanup``, ordered by ``Stage``."""
    groups: dict[str, list[tuple[Stage, int, bool]]] = {}
    for resource in read.resources:
        if resource["ResourceType"] != RESOURCE_TYPE:
            continue
        logical_id = resource["LogicalResourceId"]
        declared = read.template.get("Resources", {}).get(logical_id)
        properties = (declared or {}).get("Properties", {})
        path = value_of(read, properties.get("Cleanup")) or logical_id
        number = whole(value_of(read, properties.get("Stage"))) or 1
        count = whole(value_of(read, properties.get("Stages"))) or 1
        stage = Stage(
            logical_id, number, resource["ResourceStatus"], resource.get("ResourceStatusReason", "")
        )
        groups.setdefault(path, []).append((stage, count, declared is not None and read.retained(logical_id)))
    cleanups = []
    for path, members in sorted(groups.items()):
        stages = sorted(
            (stage for stage, _, _ in members), key=lambda stage: (stage.number, stage.logical_id)
        )
        count = max(len(stages), *(count for _, count, _ in members))
        kept = all(retained for _, _, retained in members)
        cleanups.append(Watched(path, stages, count, kept=kept))
    return cleanups


def value_of(read: StackRead, value: Any) -> str | None:
    """A property's value as a string, None when it is absent or has no value here."""
    if value is None:
        return None
    try:
        rendered = read.intrinsics.render(value)
    except UnresolvableError:
        return None
    return rendered if isinstance(rendered, str) and rendered else None


def whole(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and int(text) > 0 else None


def select(engine: Engine, clients: Clients, read: StackRead, cleanup: Watched, console: Console) -> None:
    """The jobs ``cleanup`` selects now, by the engine's read-only preview (once, at the start)."""
    from botocore.exceptions import BotoCoreError, ClientError

    stage = next((stage for stage in cleanup.stages if not stage.finished), None)
    if cleanup.kept or stage is None:
        return  # its jobs stay, or its stages were all deleted before the watch began
    try:
        properties = cleanup_properties(clients, read, stage.logical_id)
        request = engine.CleanupRequest.from_properties(properties)
        iot = engine.IotJobs(
            clients.iot,
            request.namespace_id,
            tagging=clients.tagging,
            clock=console.clock,
            sleep=console.sleep,
        )
        candidates = preview(engine, iot, request, console.clock)
    except UnresolvableError as exc:
        cleanup.unknown = (
            f"its properties depend on {exc}, which CloudFormation does not tell, and the provider's "
            "waiter has no Delete of it on record"
        )
        return
    except configuration_errors():
        raise
    except (ClientError, BotoCoreError) as exc:
        cleanup.unknown = endpoint_problem(exc, clients.wire) or aws_error(exc)
        return
    except (engine.CleanupError, engine.TransientError, engine.InvalidPropertiesError) as exc:
        cleanup.unknown = endpoint_problem(exc, clients.wire) or one_line(exc)
        return
    cleanup.namespace_id = request.namespace_id
    cleanup.selected = frozenset(candidate.job_id for candidate in candidates)


def jobs_now(iot: Any, namespaces: Iterable[str]) -> tuple[dict[str | None, dict[str, str]], int]:
    """Every job ListJobs shows (job id -> status), per namespace (None: the default listing),
    and how many of them, in all, are being deleted: the deletion slots in use."""
    listed: dict[str | None, dict[str, str]] = {}
    deleting: set[str] = set()
    for namespace in [None, *sorted(set(namespaces))]:
        statuses: dict[str, str] = {}
        token = None
        while True:
            page = iot.list_jobs(
                maxResults=LIST_PAGE,
                **({"namespaceId": namespace} if namespace else {}),
                **({"nextToken": token} if token else {}),
            )
            for job in page.get("jobs", []):
                statuses[job["jobId"]] = job["status"]
                if job["status"] == DELETING:
                    deleting.add(job.get("jobArn") or job["jobId"])
            token = page.get("nextToken")
            if not token:
                break
        listed[namespace] = statuses
    return listed, len(deleting)


def verdict(view: View, status: str, reason: str, cleanups: list[Watched]) -> int | None:
    """The exit code once the watch is over (and its last words), None while it goes on."""
    stack, out = view.stack, view.console.out
    failed = [cleanup for cleanup in cleanups if cleanup.failed is not None]
    if failed:
        view.keep()
        for cleanup in failed:
            stage = cleanup.failed
            assert stage is not None
            left = f" {cleanup.left} of {jobs(len(cleanup.selected))} left." if cleanup.selected else ""
            why = f": {one_line(stage.reason)}" if stage.reason else "."
            out.write(
                f"{cleanup.name} failed: stage {stage.number} of {cleanup.count} is {FAILED}{why}{left} "
                f"Run iot-job-cleanup resume --stack {stack} to finish its jobs, then delete the stack "
                "again (cdk destroy).\n"
            )
        return EXIT_LEFT
    if all(cleanup.finished for cleanup in cleanups):
        view.keep()
        after = {
            COMPLETE: "the stack is deleted",
            GONE: "the stack no longer exists",
            IN_PROGRESS: "CloudFormation goes on deleting the stack's other resources",
        }.get(status, f"the stack is {status}" + (f": {one_line(reason)}" if reason else ""))
        out.write(f"Stack {stack}: every cleanup finished; {after}. Watched for {view.elapsed()}.\n")
        return EXIT_DONE
    if status == FAILED:
        view.keep()
        unfinished = ", ".join(cleanup.name for cleanup in cleanups if not cleanup.finished)
        why = f" ({one_line(reason).removesuffix('.')})" if reason else ""
        out.write(
            f"Stack {stack} is {FAILED}{why}: its deletion stopped before {unfinished} finished. Run "
            f"iot-job-cleanup resume --stack {stack} to finish them, then delete the stack again "
            "(cdk destroy).\n"
        )
        return EXIT_LEFT
    if status != IN_PROGRESS:
        view.keep()
        out.write(
            f"Stack {stack} is {status}: it is no longer being deleted, so its cleanups do not run now. "
            "The watch stopped.\n"
        )
        return EXIT_LEFT
    return None


@dataclass
class View:
    """On a terminal one block redrawn in place; in a log one line per cleanup per refresh (and
    the stack's status when it changes)."""

    console: Console
    stack: str
    slots: int  # IoT's deletion slots, as the engine counts them
    started: float = field(init=False)
    lines: list[str] = field(default_factory=list)  # the last refresh, as a log says it
    seen_at: float | None = None
    status: str = ""
    drawn: int = 0  # lines of the block on the terminal now

    def __post_init__(self) -> None:
        self.started = self.console.clock()

    def elapsed(self, at: float | None = None) -> str:
        return duration((self.console.clock() if at is None else at) - self.started)

    def draw(self, status: str, cleanups: list[Watched], slots_in_use: int) -> None:
        now = self.console.clock()
        slots = f"deletion slots in use {slots_in_use} of {self.slots}"
        header = (
            f"Stack {self.stack}: {status}; {slots} (the account and region); watched for {self.elapsed()}"
        )
        out = self.console.out
        lines = [cleanup.line(now) for cleanup in cleanups]
        self.lines = [header, *(f"  {line}" for line in lines)]
        self.seen_at = now
        if self.console.live:
            width = max(20, shutil.get_terminal_size().columns - 1)
            self.clear()
            out.write("".join(line[:width] + "\n" for line in self.lines))
            self.drawn = len(self.lines)
        else:
            if status != self.status:
                out.write(f"Stack {self.stack}: {status}\n")
            out.writelines(f"[{self.elapsed()}] {line}; {slots}\n" for line in lines)
        self.status = status
        out.flush()

    def clear(self) -> None:
        """Take the block off the terminal (the cursor goes back to where it began)."""
        if self.console.live and self.drawn:
            self.console.out.write(f"\x1b[{self.drawn}F\x1b[J")
        self.drawn = 0

    def note(self, text: str) -> None:
        """A line between refreshes (a refresh that failed)."""
        self.clear()
        self.console.out.write(f"[{self.elapsed()}] {text}\n")
        self.console.out.flush()

    def keep(self, last_seen: bool = False) -> None:
        """The last refresh kept, in full: on a terminal the block becomes plain lines; with
        ``last_seen`` (an interruption) it is said again, with when it was seen."""
        out = self.console.out
        live = self.console.live and self.drawn
        self.clear()
        if last_seen:
            if self.seen_at is None:
                out.write("Nothing was seen yet: the watch had not made its first look.\n")
            else:
                out.write(f"Last seen, {self.elapsed(self.seen_at)} into the watch:\n")
                out.writelines(line + "\n" for line in self.lines)
        elif live:
            out.writelines(line + "\n" for line in self.lines)
        out.flush()
