"""A cleanup's progress as CloudWatch metrics: Embedded Metric Format (EMF) records, one JSON
line each on standard output, which Lambda's log agent turns into metrics.

- ``NAMESPACE``, ``DIMENSIONS``, ``METRICS``: what the records publish (every unit "Count"),
  under one dimension set, the stack's name and the construct's path;
- ``CleanupMetrics``: one cleanup's recorder. ``due`` says a record is due (``RECORD_EVERY``,
  a minute, after the last); ``record`` writes one; ``on_poll`` is the hook for
  ``JobCleanup.run_until(on_poll=...)`` and records when one is due;
- the steps of a record: the metric values (``_values``, counters as deltas since the last
  record delivered), the EMF document (``_document``), its JSON line (``_line``), and the
  write (``write_stdout``).

JobsDeleted and Throttled count since the previous record delivered (the first: since the
``baseline`` snapshot, or since zero), never below zero: summed over the records, they are
the cleanup's totals. A record whose write fails is dropped and its counts go to the next one.

A record is written with ``sys.stdout.write``, never through ``logging``: Lambda's JSON log
format wraps what ``logging`` emits, not what is written to standard output. Writing never
fails a cleanup: a failed write is ignored. Dimension values are cut to 1024 characters (EMF's
limit for a dimension value); an empty one becomes "-" (CloudWatch takes no empty value).
Every number written is finite: a NaN or an infinity becomes 0.

It imports only the standard library.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .report import CleanupProgress

__all__ = [
    "DIMENSIONS",
    "METRICS",
    "NAMESPACE",
    "RECORD_EVERY",
    "CleanupMetrics",
    "write_stdout",
]

NAMESPACE = "IotJobCleanup"
DIMENSIONS = ("StackName", "Cleanup")
METRICS = ("JobsLeft", "JobsDeleting", "JobsDeleted", "SlotsHeldByOthers", "Throttled", "HandOvers")
UNIT = "Count"
RECORD_EVERY = 60.0  # seconds: at least every minute while a stage runs
MAX_DIMENSION_VALUE = 1024  # characters: EMF's (and CloudWatch's) limit for a dimension value
EMPTY_DIMENSION_VALUE = "-"


class _Progressing(Protocol):
    """What ``on_poll`` needs of a cleanup (``JobCleanup`` is one)."""

    def progress(self) -> CleanupProgress: ...


def write_stdout(line: str) -> None:
    """Standard output, flushed at once: the Lambda log agent reads each line as it comes."""
    sys.stdout.write(line)
    sys.stdout.flush()


class CleanupMetrics:
    """Records one cleanup's progress as EMF lines, at most one per ``every`` seconds on poll."""

    def __init__(
        self,
        *,
        stack_name: str,
        cleanup: str,
        clock: Callable[[], float],
        write: Callable[[str], None] = write_stdout,
        every: float = RECORD_EVERY,
        stage: int = 1,
        stages: int = 1,
        baseline: CleanupProgress | None = None,
    ) -> None:
        self._dimensions = {"StackName": _dimension_value(stack_name), "Cleanup": _dimension_value(cleanup)}
        self._clock = clock
        self._write = write
        self._every = every
        self._stage, self._stages = stage, stages
        self._last_record_at = clock()  # the first record is due ``every`` after construction
        # the counters as of the last record delivered: deltas are taken from these
        self._gone = baseline.gone if baseline else 0
        self._throttled = baseline.throttled if baseline else 0

    def due(self) -> bool:
        """``every`` seconds have passed since the last record (or since construction)."""
        return self._clock() >= self._last_record_at + self._every

    def record(self, progress: CleanupProgress, *, handed_over: bool = False) -> dict[str, object]:
        """Write one EMF record of ``progress`` (one line) and return the object written.

        A write that fails (OSError, ValueError) is ignored; its deltas go to the next record.
        """
        now = self._clock()
        self._last_record_at = now
        document = _document(
            timestamp=_milliseconds(now),
            dimensions=self._dimensions,
            values=_values(
                progress, gone_before=self._gone, throttled_before=self._throttled, handed_over=handed_over
            ),
            properties={
                "Stage": self._stage,
                "Stages": self._stages,
                "DiscoveryFinished": bool(progress.discovery_finished),
            },
        )
        if _delivered(self._write, document):
            self._gone, self._throttled = progress.gone, progress.throttled
        return document

    def on_poll(self, cleanup: _Progressing) -> None:
        """For ``JobCleanup.run_until(on_poll=...)``: a record when one is due."""
        if self.due():
            self.record(cleanup.progress())


# --------------------------------------------------------------------------- the steps of a record


def _dimension_value(value: str) -> str:
    """At most 1024 characters, valid UTF-8 (a lone surrogate becomes "?"), never blank."""
    text = str(value)[:MAX_DIMENSION_VALUE].encode("utf-8", "replace").decode("utf-8")
    return text if text.strip() else EMPTY_DIMENSION_VALUE


def _milliseconds(now: float) -> int:
    """EMF's Timestamp: whole milliseconds since the epoch (the wall clock if ``now`` is not finite)."""
    return int((now if math.isfinite(now) else time.time()) * 1000)


def _count(value: object) -> int | float:
    """A finite number for a metric: anything else (NaN, an infinity, not a number) is 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return 0


def _values(
    progress: CleanupProgress, *, gone_before: int, throttled_before: int, handed_over: bool
) -> dict[str, int | float]:
    """The metrics, in ``METRICS`` order; the counters as deltas, never below zero."""
    return {
        "JobsLeft": _count(progress.left),
        "JobsDeleting": _count(progress.deleting),
        "JobsDeleted": max(0, _count(progress.gone) - _count(gone_before)),
        "SlotsHeldByOthers": _count(progress.slots_held_by_others),
        "Throttled": max(0, _count(progress.throttled) - _count(throttled_before)),
        "HandOvers": 1 if handed_over else 0,
    }


def _document(
    *,
    timestamp: int,
    dimensions: dict[str, str],
    values: dict[str, int | float],
    properties: dict[str, object],
) -> dict[str, object]:
    """The EMF object: ``_aws`` metadata, then the dimensions, metrics and properties as root members."""
    return {
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [list(DIMENSIONS)],
                    "Metrics": [{"Name": name, "Unit": UNIT} for name in METRICS],
                }
            ],
        },
        **dimensions,
        **values,
        **properties,
    }


def _line(document: dict[str, object]) -> str:
    """One line of JSON ending in a newline; json escapes any newline inside a string."""
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"


def _delivered(write: Callable[[str], None], document: dict[str, object]) -> bool:
    """Write the record; False if that failed (a metric never fails a cleanup)."""
    try:
        write(_line(document))
    except (OSError, ValueError):  # UnicodeEncodeError is a ValueError, so is a closed stream
        return False
    return True
