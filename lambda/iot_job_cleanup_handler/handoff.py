"""What ``on_event`` hands to ``is_complete`` in the event, and reading it back.

The Provider merges ``on_event``'s result into the event every ``is_complete`` gets, and
``is_complete`` can hand nothing on, so this is all the state a cleanup carries between
invocations; the rest is read from IoT each time. Each value is checked as it is read: one
that is missing or malformed reads as absent, and ``is_complete`` works from IoT alone
(the order of the named jobs, say, becomes list order), never a crash.

- ``STARTED_KEY``, ``DEADLINE_KEY``: when the cleanup began and when it gives up (epoch s).
- ``TEARDOWN_KEY``: "true" or "false", once the stack's status is known.
- ``ORDER_KEY``, ``DRAINED_KEY``: the planned order of the named jobs, as positions in
  JobIds (small whatever the ids' length), and how many at its end were cancelled to drain.
- ``RECENT_CALLS_KEY``: each operation's calls in ``on_event``'s last second, as a count and
  the latest's time: the first ``is_complete`` starts at once and keeps IoT's rate with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "DEADLINE_KEY",
    "DRAINED_KEY",
    "ORDER_KEY",
    "RECENT_CALLS_KEY",
    "STARTED_KEY",
    "TEARDOWN_KEY",
    "drained_tail",
    "epoch_seconds",
    "give_up_at",
    "planned_order",
    "recent_calls",
    "started_at",
    "teardown",
]

DEADLINE_KEY = "IotJobCleanupGiveUpAt"
STARTED_KEY = "IotJobCleanupStartedAt"
ORDER_KEY = "IotJobCleanupOrder"
DRAINED_KEY = "IotJobCleanupDrained"
TEARDOWN_KEY = "IotJobCleanupTeardown"
RECENT_CALLS_KEY = "IotJobCleanupCalls"


def epoch_seconds(value: Any) -> float | None:
    """A number of seconds, finite and a float can hold (JSON allows integers of any size)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


def started_at(event: Mapping[str, Any]) -> float | None:
    return epoch_seconds(event.get(STARTED_KEY))


def give_up_at(event: Mapping[str, Any]) -> float | None:
    return epoch_seconds(event.get(DEADLINE_KEY))


def teardown(event: Mapping[str, Any]) -> bool | None:
    """Whether on_event found the stack torn down; None when it could not tell."""
    return {"true": True, "false": False}.get(str(event.get(TEARDOWN_KEY)))


def planned_order(event: Mapping[str, Any], job_ids: tuple[str, ...]) -> tuple[str, ...] | None:
    """The order on_event planned, if the event carries one for exactly these jobs."""
    order = event.get(ORDER_KEY)
    if (
        not isinstance(order, list)
        or not all(type(position) is int for position in order)
        or sorted(order) != list(range(len(job_ids)))
    ):
        return None
    return tuple(job_ids[position] for position in order)


def drained_tail(event: Mapping[str, Any], order: tuple[str, ...] | None) -> int:
    """How many jobs at the end of ``order`` were cancelled to drain (0 without an order)."""
    tail = event.get(DRAINED_KEY)
    if order is None or type(tail) is not int or not 0 <= tail <= len(order):
        return 0
    return tail


def recent_calls(event: Mapping[str, Any]) -> dict[str, tuple[int, float]]:
    """The calls on_event handed on, those well formed (count, epoch seconds)."""
    recent = event.get(RECENT_CALLS_KEY)
    if not isinstance(recent, Mapping):
        return {}
    calls: dict[str, tuple[int, float]] = {}
    for operation, pair in recent.items():
        if not (isinstance(operation, str) and isinstance(pair, (list, tuple)) and len(pair) == 2):
            continue
        count, latest = pair
        if type(count) is int and count > 0 and (at := epoch_seconds(latest)) is not None:
            calls[operation] = (count, at)
    return calls
