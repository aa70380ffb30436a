"""The progress of a run: a bar on a terminal, plain lines every 30 s in a log.

It reads the engine's own account of the cleanup (``JobCleanup.progress()``, a
``CleanupProgress`` snapshot), never its internals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["DEFAULT_DELETION_SECONDS", "LOG_LINE_SECONDS", "Progress", "duration"]

LOG_LINE_SECONDS = 30.0  # without a terminal, a progress line this often
DEFAULT_DELETION_SECONDS = 60.0  # until a deletion of ours has been seen to finish
BAR_WIDTH = 20


def duration(seconds: float) -> str:
    """A time as the output says it: 4m05s, 1h02m."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


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
