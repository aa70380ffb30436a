"""What on_event hands to is_complete in the event, read back: a value that is missing or
malformed reads as absent, and is_complete works from IoT alone, never a crash (I4)."""

from __future__ import annotations

from typing import Any

import pytest

import iot_job_cleanup_handler as handler
from iot_job_cleanup_handler import handoff
from support import Handler, Iot, SimClock, event, job_ids


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (handoff.ORDER_KEY, [0.0, 1.0, 2.0]),  # equal to positions, but not indices
        (handoff.ORDER_KEY, [True, False, 2]),
        (handoff.ORDER_KEY, [2, 1]),  # not a plan for these jobs
        (handoff.DRAINED_KEY, "2"),
        (handoff.DRAINED_KEY, 7),  # more than the order holds
        (handoff.DRAINED_KEY, -1),
        (handoff.DRAINED_KEY, [1]),
        (handoff.STARTED_KEY, "yesterday"),
        (handoff.STARTED_KEY, float("nan")),
        (handoff.DEADLINE_KEY, 10**400),
        (handoff.DEADLINE_KEY, None),
        (handoff.TEARDOWN_KEY, "maybe"),
    ],
)
def test_a_malformed_value_handed_on_reads_as_absent(iot: Iot, clock: SimClock, key: str, value: Any) -> None:
    ids = job_ids(3)
    iot.create_jobs(*ids)
    request = event("Delete", ids)
    result = Handler(iot, clock).on_event(request)

    answer = Handler(iot, clock).is_complete({**request, **result, key: value})

    assert answer in ({"IsComplete": True}, {"IsComplete": False})


def test_what_is_read_back_is_what_on_event_wrote(iot: Iot, clock: SimClock) -> None:
    ids = job_ids(12)
    iot.create_jobs(*ids)
    request = event("Delete", ids)
    started = clock()

    result = Handler(iot, clock).on_event(request)
    carried = {**request, **result}

    assert handoff.started_at(carried) == started
    assert (
        handoff.give_up_at(carried)
        == started + handler.Timing().total_timeout - handler.Timing().report_margin
    )
    assert handoff.teardown(carried) is True
    order = handoff.planned_order(carried, tuple(ids))
    assert order is not None and sorted(order) == sorted(ids)
    assert handoff.drained_tail(carried, order) == 0
    assert handoff.recent_calls(carried)["delete_job"][0] == 10
