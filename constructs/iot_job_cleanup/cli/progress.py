"""The progress of a run: while its jobs are found (``Finding``), then while they are deleted
(``Progress``): redrawn in place on a terminal, plain lines in a log.

``Progress`` reads the engine's own account of the cleanup (``JobCleanup.progress()``, a
``CleanupProgress`` snapshot), never its internals. The engine tells nothing while it finds
the jobs (``JobCleanup.candidates()`` answers once, at the end), so ``Finding`` reads the wire
instead (``clients.Wire``): the jobs ListJobs listed, the tags ListTagsForResource read, and the
jobs DescribeJob answered that fit the selection (the engine describes a job it found before it
judges it; named jobs too). It is told of every answer, and a timer thread ticks too, so a
line comes on time even while one call waits for its answer.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TextIO

from .clients import Wire
from .errors import counted

__all__ = [
    "DEFAULT_DELETION_SECONDS",
    "FINDING_LINE_SECONDS",
    "LOG_LINE_SECONDS",
    "Finding",
    "Progress",
    "duration",
    "seconds",
]

LOG_LINE_SECONDS = 30.0  # without a terminal, a progress line this often
FINDING_LINE_SECONDS = 10.0  # without a terminal, a line this often while the jobs are found
TICK_SECONDS = 0.5  # the timer thread's tick (a terminal's spinner turns at it)
SPINNER = "|/-\\"
DEFAULT_DELETION_SECONDS = 60.0  # until a deletion of ours has been seen to finish
BAR_WIDTH = 20


def duration(seconds: float) -> str:
    """A time as the output says it: 4m05s, 1h02m."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def seconds(time: float) -> str:
    """A short time as a sentence says it: under a second, 57 s, then 4m05s."""
    if time < 1:
        return "under a second"
    return f"{round(time)} s" if time < 59.5 else duration(time)


def fits(selection: Any, job: Mapping[str, Any]) -> bool:
    """A described job the selection selects, as far as its description tells (the engine's
    guard judges it: this counts for the progress line, it decides nothing)."""
    job_id = str(job.get("jobId", ""))
    if job_id in selection.job_ids:
        return True
    if not selection.id_may_match(job_id) or (job.get("namespaceId") or None) != selection.namespace_id:
        return False
    return not selection.thing_groups or selection.targets_a_group(job.get("targets") or [])


class Finding:
    """While a run finds its jobs: on a terminal a spinner and its counts redrawn in place, in a
    log a line every 10 s; ``took`` is how long it took, once it is over. A context manager:
    the line is taken off the terminal and the thread stopped however it ends."""

    def __init__(
        self,
        out: TextIO,
        live: bool,
        clock: Callable[[], float],
        wire: Wire | None,
        selection: Any,
        label: str = "",
    ) -> None:
        self.out, self.live, self.clock, self.selection = out, live, clock, selection
        self.wire = wire or Wire()
        self.label = label  # "Fleet/RuntimeJobs: " for a stack's cleanup
        self.started = clock()
        self.took = 0.0
        self.selected: set[str] = set()
        self.lines = 0  # log lines written
        self._listed, self._tags = self.wire.listed, self.wire.answered["ListTagsForResource"]
        self._last_line_at = self.started
        self._turn = 0
        self._drawn = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick_until_stopped, name="finding-jobs", daemon=True)

    def __enter__(self) -> Finding:
        self.wire.listeners.append(self._answered)
        if self.live:
            self.tick()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.wire.listeners.remove(self._answered)
        with self._lock:
            self.took = self.clock() - self.started
            if self._drawn:
                self.out.write("\r\x1b[2K")
                self.out.flush()
                self._drawn = False

    @property
    def listed(self) -> int:
        return self.wire.listed - self._listed

    @property
    def tags_read(self) -> int:
        return self.wire.answered["ListTagsForResource"] - self._tags

    def line(self) -> str:
        """``Finding jobs (20 s): 500 jobs listed, 120 tags read, 35 selected so far...``"""
        parts = [f"{counted(self.listed, 'job')} listed"] if self.selection.has_filters else []
        if self.selection.tags:
            parts.append(f"{counted(self.tags_read, 'tag')} read")
        parts.append(f"{len(self.selected)} selected so far")
        finding = "finding jobs" if self.label else "Finding jobs"
        return f"{self.label}{finding} ({seconds(self.clock() - self.started)}): {', '.join(parts)}..."

    def tick(self) -> None:
        """Redraw the spinner, or write the log line when one is due."""
        if not self._lock.acquire(blocking=False):
            return  # the other thread is at it
        try:
            if self.live:
                self._turn += 1
                self.out.write(f"\r\x1b[2K{SPINNER[self._turn % len(SPINNER)]} {self.line()}")
                self._drawn = True
                self.out.flush()
            elif self.clock() - self._last_line_at >= FINDING_LINE_SECONDS:
                self._last_line_at = self.clock()
                self.out.write(self.line() + "\n")
                self.lines += 1
                self.out.flush()
        finally:
            self._lock.release()

    def _answered(self, operation: str, params: Mapping[str, Any], answer: Any) -> None:
        if operation == "DescribeJob" and isinstance(answer, Mapping):
            job = answer.get("job")
            if isinstance(job, Mapping) and fits(self.selection, job):
                self.selected.add(str(job.get("jobId", "")))
        self.tick()

    def _tick_until_stopped(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self.tick()


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
        """One line of a ``CleanupProgress``: the bar, the counts, the slots, the time."""
        gone, draining, waiting = state.gone, state.draining, state.waiting
        deleting = state.deleting + state.finishing  # left the deletion list, not yet seen gone
        total = known = gone + deleting + draining + waiting
        if not (state.discovery_finished and self.planned):  # jobs the engine is yet to come to wait too
            total = max(self.total, known)
            waiting += total - known
        elapsed = self.clock() - self.started
        per_job = state.deletion_seconds or DEFAULT_DELETION_SECONDS
        left = max(per_job if deleting else 0.0, (waiting + deleting) * per_job / self.slots)
        filled = min(BAR_WIDTH, round(BAR_WIDTH * gone / total)) if total else BAR_WIDTH
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        drained = f", {draining} draining" if draining else ""
        others = f" ({state.slots_held_by_others} by others)" if state.slots_held_by_others else ""
        throttled = f" | throttled {state.throttled}" if state.throttled else ""
        return (
            f"[{bar}] {gone}/{total} gone, {deleting} deleting{drained}, {waiting} waiting | "
            f"slots {state.slots_in_use}/{self.slots}{others} | LimitExceeded {state.limit_exceeded}"
            f"{throttled} | {duration(elapsed)} elapsed, ~{duration(left)} left"
        )

    def update(self, cleanup: Any) -> None:
        """At each of the engine's polls: redraw the bar, or a log line when one is due."""
        if self.live:
            self.out.write("\r\x1b[2K" + self.line(cleanup.progress()))
            self.out.flush()
        elif self.clock() - self._last_line_at >= LOG_LINE_SECONDS:
            self._last_line_at = self.clock()
            self.out.write(self.line(cleanup.progress()) + "\n")
            self.out.flush()

    def finish(self, state: Any) -> None:
        """The last line, kept."""
        self.out.write(("\r\x1b[2K" if self.live else "") + self.line(state) + "\n")
