"""A run: one selection deleted through the engine, from the preview to the report.

``run_cleanup`` previews (saying what it is doing while it finds the jobs: ``progress.Finding``),
refuses jobs that need force before the first deletion, asks (or takes ``--yes``), then
deletes with the engine's ``JobCleanup`` and no time cap, drawing the progress. Ctrl-C, and
SIGTERM while ``sigterm_as_interruption`` holds, stop it: what is under way and what is left
is said, and ``Interrupted`` carries the exit code out.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from ..engine import Engine
from .candidates import LISTED_BEFORE_ASKING, preview, print_preview
from .clients import Clients
from .errors import (
    EXIT_DONE,
    EXIT_LEFT,
    EXIT_USAGE,
    Interrupted,
    Terminated,
    agreeing,
    aws_error,
    counted,
    interruption,
    one_line,
)
from .progress import Finding, Progress, duration, seconds
from .report import failed, left_undone, report_interruption, report_left

__all__ = ["Console", "Run", "run_cleanup", "sigterm_as_interruption"]

# The engine's messages name the construct's options; the delete command's are flags.
FLAG_WORDS = (
    (re.compile(r'set force=True \(Force: "true"\)'), "pass --force"),
    (re.compile(r"set force=True"), "pass --force"),
    (re.compile(r"set a drain time"), "pass --drain DURATION"),
    (re.compile(r"\(drain\)"), "(--drain)"),
)


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


@dataclass(frozen=True)
class Console:
    """What a run works with besides AWS: where it writes, how it asks, and its time."""

    out: TextIO
    ask: Callable[[str, str], bool | None]  # the answer, or None with no terminal to ask on
    live: bool  # ``out`` is a terminal: the bar is redrawn in place
    clock: Callable[[], float]
    sleep: Callable[[float], None]


@dataclass
class Run:
    """One selection to delete, as the engine sees it."""

    request: Any  # the engine's CleanupRequest
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

    @property
    def label(self) -> str:
        """What its lines begin with: nothing for ``delete``'s one run, a stack's cleanup its name."""
        return f"{self.title}: " if self.resumed else ""

    def narrower(self) -> str:
        """How a selection by tags alone is found faster, in this command's words."""
        if self.resumed:
            return "a job_id_prefix or thing_groups on the cleanup narrows the listing and makes it faster"
        return "--prefix or --thing-group narrows the listing and makes it faster"

    def in_own_words(self, message: object) -> str:
        """An engine message on one line, the construct's option names made this command's flags."""
        line = one_line(message)
        if not self.resumed:
            for construct, flag in FLAG_WORDS:
                line = construct.sub(flag, line)
        return line


def run_cleanup(
    engine: Engine,
    clients: Clients,
    run: Run,
    console: Console,
    *,
    dry_run: bool,
    yes: bool,
) -> int:
    """Preview, confirm and delete one selection; its exit code."""
    out = console.out
    iot = engine.IotJobs(
        clients.iot,
        run.request.namespace_id,
        tagging=clients.tagging,
        clock=console.clock,
        sleep=console.sleep,
    )
    selection = run.request.selection
    with Finding(out, console.live, console.clock, clients.wire, selection, run.label) as finding:
        candidates = preview(engine, iot, run.request, console.clock)
    if not candidates:
        out.write(f"{run.title}: no job matches, nothing to delete.\n")
        if dry_run:
            out.write(discovery_took(finding, run))
        return EXIT_DONE
    if dry_run:
        print_preview(candidates, run.request, out)
        out.write(f"Dry run: {counted(len(candidates), 'job')} would be deleted; nothing was changed.\n")
        out.write(discovery_took(finding, run))
        return EXIT_DONE
    running = [candidate for candidate in candidates if candidate.needs_force(run.request)]
    if running:  # the engine would fail on them after deleting the rest: refuse before the first
        named = ", ".join(f"{candidate.job_id!r} is {candidate.status}" for candidate in running)
        out.write(
            f"{run.title}: nothing was deleted: {counted(len(running), 'selected job')} still running, and "
            f"IoT deletes a running job only with force ({named}). {run.force_fix()}\n"
        )
        return EXIT_LEFT
    confine_to = None  # with --yes, every job the selection covers, found now or while deleting
    if not yes:
        listing = io.StringIO()
        print_preview(candidates, run.request, listing, limit=LISTED_BEFORE_ASKING)
        count = len(candidates)
        answer = console.ask(f"{run.title}: delete {counted(count, 'job')}? [y/N] ", listing.getvalue())
        if answer is None:
            them = agreeing(count, "it", "them")
            out.write(
                f"{run.title}: {counted(count, 'job')} would be deleted, and there is no terminal to ask "
                f"on. Pass --yes to delete {them}, or --dry-run to list {them}.\n"
            )
            return EXIT_USAGE
        if not answer:
            out.write("Nothing was deleted.\n")
            return EXIT_LEFT
        confine_to = frozenset(candidate.job_id for candidate in candidates)  # what the answer covers
    listed = [candidate.job_id for candidate in candidates]
    return delete(engine, iot, run, listed, console, confine_to=confine_to)


def delete(
    engine: Engine,
    iot: Any,
    run: Run,
    listed: list[str],
    console: Console,
    *,
    confine_to: frozenset[str] | None,
) -> int:
    """Delete the run's jobs (``listed`` by the preview), to the end; its exit code."""
    from botocore.exceptions import BotoCoreError, ClientError  # the engine has loaded botocore

    out, clock = console.out, console.clock

    cleanup = engine.JobCleanup(
        iot,
        run.request,
        clock=clock,
        sleep=console.sleep,
        hard_stop=math.inf,
        cancel_comment=run.cancel_comment,
        confine_to=confine_to,
    )
    progress = Progress(out, len(listed), console.live, clock, engine.DELETION_SLOTS)
    poll = run.request.query_interval or engine.Timing().poll_interval

    def account() -> Any:
        return accounted(cleanup.progress(), listed, progress.planned)

    try:
        cleanup.plan()
        progress.planned = True
        done = cleanup.run_until(math.inf, poll, on_poll=progress.update)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (sigterm_as_interruption)
        name, code = interruption(exc)
        state = account()
        progress.finish(state)
        report_interruption(name, state, run.request.selection.has_filters, out)
        raise Interrupted(code) from None
    except engine.ForceRequiredError as exc:  # a job that was not running when the preview looked
        reason = (
            f"job {exc.job_id!r} is {exc.status}, and IoT deletes a running job only with force, so it was "
            f"left as it is (it was not running, or not there, when the jobs were listed). {run.force_fix()}"
        )
        return failed(reason, account(), progress, run.title, out)
    except engine.CleanupError as exc:  # a refusal, a drain time over: the engine's message
        return failed(run.in_own_words(exc), account(), progress, run.title, out)
    except (ClientError, BotoCoreError) as exc:  # a call failed for a reason no retry cures
        return failed(aws_error(exc), account(), progress, run.title, out)
    state = cleanup.progress()
    progress.finish(state)
    elapsed = clock() - progress.started
    left = left_undone(state)
    if done and not left and not state.held_back:
        outcome = "every selected job is gone"
    elif done and not left:
        confirmed = len(confine_to or ())
        outcome = agreeing(
            confirmed, "the job you confirmed is gone", f"the {confirmed} jobs you confirmed are gone"
        )
    else:
        outcome = f"{counted(len(left), 'job')} left"
    out.write(
        f"{run.title}: {outcome} after {duration(elapsed)}; {counted(iot.calls, 'IoT call')}, "
        f"LimitExceededException {counted(state.limit_exceeded, 'time')}.\n"
    )
    report_left(state, out)
    return EXIT_DONE if done and not left and not state.held_back else EXIT_LEFT


def discovery_took(finding: Finding, run: Run) -> str:
    """A dry run's last line: how long finding the jobs took, and for a selection by tags alone
    whose jobs' tags were read one by one, how to make it faster."""
    selection = run.request.selection
    tags_alone = selection.tags and not (selection.job_ids or selection.prefix or selection.thing_groups)
    if tags_alone and finding.tags_read:
        return f"Discovery took {seconds(finding.took)}, reading each job's tags; {run.narrower()}.\n"
    return f"Discovery took {seconds(finding.took)}.\n"


def accounted(state: Any, listed: list[str], planned: bool) -> Any:
    """The engine's account of the run. Until its plan (the first look at the named jobs) is
    made, it does not hold every job yet: the listed ones it does not account for were not
    started either."""
    if planned:
        return state
    known = {*state.deleting_ids, *state.cancelled_not_deleted, *state.not_started, *state.held_back}
    missing = tuple(job_id for job_id in listed if job_id not in known)
    return dataclasses.replace(state, not_started=(*state.not_started, *missing))
