"""IoT's rate per operation (10 calls a second, per account): the handler never sends more
calls of one operation within any one second, in one invocation or across the boundary from
``on_event`` to the first ``is_complete``, which the Provider starts at once."""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import iot_job_cleanup_handler as handler
from iot_job_cleanup.provider import run_request
from iot_job_cleanup_handler import IotJobs, JobCleanup, Timing, final_look
from iot_job_cleanup_handler.contract import CleanupRequest
from support import Handler, Iot, SimClock, entry_points, event, job_ids, run_delete

RATE = 10


class Recording:
    """An IoT client that notes when each call was sent, by operation."""

    def __init__(self, client: Any, clock: SimClock) -> None:
        self._client, self._clock = client, clock
        self.sent: dict[str, list[float]] = defaultdict(list)

    def _call(self, operation: str, **params: Any) -> Any:
        self.sent[operation].append(self._clock())
        return getattr(self._client, operation)(**params)

    def __getattr__(self, operation: str) -> Any:
        return partial(self._call, operation)


def busiest_second(times: list[float]) -> int:
    """The most calls within any window [t, t + 1 s)."""
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times)), default=0)


def run_recorded(iot: Iot, clock: SimClock, request: dict[str, Any], timing: Timing) -> Recording:
    recording = Recording(iot.client, clock)
    on_event, is_complete = entry_points(iot, clock, timing, client=recording)
    run_request(request, on_event, is_complete, sleep=clock.sleep, query_interval=timing.query_interval)
    return recording


@pytest.mark.parametrize("drain", [None, "600"])
def test_no_operation_goes_past_ten_calls_in_any_second_in_a_whole_cleanup(
    iot: Iot, clock: SimClock, drain: str | None
) -> None:
    """Instant calls: nothing but the handler's own pacing spaces them out. 60 jobs: the
    first 10 deleted at once, 50 looked at for the plan while those run, then polls,
    confirmations and the final look (I2)."""
    ids = job_ids(60)
    iot.create_jobs(*ids)
    properties = {"DrainSeconds": drain} if drain else {}

    recording = run_recorded(iot, clock, event("Delete", ids, **properties), Timing())

    assert not set(ids) & iot.existing()
    assert len(recording.sent["describe_job"]) >= 60  # the looks were made, only paced
    peaks = {operation: busiest_second(times) for operation, times in recording.sent.items()}
    assert max(peaks.values()) == RATE, peaks  # the first batch's 10 DeleteJob, and as many looks


def test_the_first_is_complete_keeps_the_rate_on_event_handed_on(iot: Iot, clock: SimClock) -> None:
    """on_event's looks run to its end; is_complete starts at once and looks again (the
    frontier search, the final look): without what on_event handed on, the two invocations'
    DescribeJob would add up within one second."""
    ids = job_ids(30)
    iot.create_jobs(*ids)
    timing = Timing()
    recording = Recording(iot.client, clock)
    on_event, is_complete = entry_points(iot, clock, timing, client=recording)
    request = event("Delete", ids)

    result = dict(on_event(request))
    on_event_looks = list(recording.sent["describe_job"])
    count, latest = result[handler.RECENT_CALLS_KEY]["describe_job"]
    assert (count, latest) == (RATE, on_event_looks[-1])  # 20 looks, instant: 10, then 10 a second later
    is_complete({**request, **result})

    first_look_after = recording.sent["describe_job"][len(on_event_looks)]
    assert first_look_after >= latest + 1.0  # it waited for on_event's second to pass
    assert busiest_second(recording.sent["describe_job"]) == RATE


def test_calls_handed_on_are_taken_as_made_at_the_latest_and_never_in_the_future(clock: SimClock) -> None:
    class Answering:
        def describe_job(self, jobId: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
            return {"job": {"jobId": jobId, "status": "COMPLETED"}}

    start = clock()
    iot = IotJobs(
        Answering(), None, clock=clock, sleep=clock.sleep, recent_calls={"describe_job": (10, start - 0.25)}
    )
    iot.describe("a")
    assert clock() == pytest.approx(start + 0.75, abs=0.01)  # the second of those 10 ended first

    ahead = IotJobs(
        Answering(), None, clock=clock, sleep=clock.sleep, recent_calls={"describe_job": (4, clock() + 3600)}
    )
    began = clock()
    for job_id in "abcdef":  # 4 taken as made now, then 6 more fit in this second
        ahead.describe(job_id)
    assert clock() == began
    ahead.describe("g")
    assert clock() == pytest.approx(began + 1.0, abs=0.01)


@pytest.mark.parametrize(
    "handed_on",
    [
        "many",
        ["describe_job", 10],
        {"describe_job": "10 at noon"},
        {"describe_job": [True, 1.0]},
        {"describe_job": [10, float("nan")]},
        {"describe_job": [-3, 1.0]},
        {"describe_job": [10, 1.0, 2.0]},
        {7: [10, 1.0]},
        {"describe_job": [10, 10**400]},  # JSON's integers have any size; a float does not
        {"describe_job": [10, -(10**400)]},
    ],
)
def test_a_bad_hand_on_is_ignored_not_a_crash(iot: Iot, clock: SimClock, handed_on: Any) -> None:
    ids = job_ids(3)
    iot.create_jobs(*ids)
    request = event("Delete", ids)
    result = Handler(iot, clock).on_event(request)

    answer = Handler(iot, clock).is_complete({**request, **result, handler.RECENT_CALLS_KEY: handed_on})

    assert answer in ({"IsComplete": True}, {"IsComplete": False})


class Answering:
    """IoT that answers every DescribeJob: the job is there, COMPLETED."""

    def describe_job(self, jobId: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        return {"job": {"jobId": jobId, "status": "COMPLETED"}}


class HiccupClock(SimClock):
    """A clock that jumps 50 ms when read for the ``hiccup_at``-th time (a process descheduled:
    a Lambda's CPU share, a garbage collection)."""

    reads: int = 0
    hiccup_at: int | None = None

    def __call__(self) -> float:
        self.reads += 1
        if self.reads == self.hiccup_at:
            self.now += 0.05
        return self.now


@pytest.mark.parametrize("hiccup", [1, 2, 3])
def test_a_clock_that_jumps_while_a_call_waits_its_turn_never_makes_a_negative_pause(hiccup: int) -> None:
    clock = HiccupClock()
    iot = IotJobs(Answering(), None, clock=clock, sleep=clock.sleep)  # SimClock refuses a negative pause
    for n in range(RATE):
        iot.describe(f"job-{n}")
    clock.now += 0.98  # 20 ms before the window has room again
    clock.hiccup_at = clock.reads + hiccup

    iot.describe("one-more")

    assert clock.now >= 1_000_000.0 + 1.0  # it went out once the window had room


def test_the_final_look_in_a_pause_never_waits_for_its_turn_past_the_pause(iot: Iot, clock: SimClock) -> None:
    """40 named jobs due for the final look, the window already full of the last pause's looks:
    it looks only while a look can go out within the pause, and the pause ends on time."""
    ids = job_ids(40)  # none exists any more: every one is due
    now = clock()
    looks = IotJobs(
        iot.client, None, clock=clock, sleep=clock.sleep, recent_calls={"describe_job": (RATE, now - 0.3)}
    )
    request = CleanupRequest.from_properties({"JobIds": ids})
    cleanup = JobCleanup(looks, request, clock=clock, sleep=clock.sleep)

    final_look.in_idle(cleanup, now + 1.0)

    # The window has room 0.7 s on, within the pause: 10 looks then; the next turn, 1.7 s on,
    # is past the pause (less its room), so none waits for it.
    assert looks.calls == RATE
    assert clock() <= now + 1.0 - final_look.FINAL_LOOK_ROOM

    final_look.in_idle(cleanup, now + 3.5)  # a longer pause: 10 more at 1.7 s, 10 at 2.7 s, not 3.7
    assert looks.calls == 3 * RATE
    assert clock() <= now + 3.5 - final_look.FINAL_LOOK_ROOM


def test_the_last_invocation_reports_before_cloudformation_gives_up_whatever_the_final_look_has_left(
    iot: Iot, clock: SimClock
) -> None:
    """800 named jobs of 30 s: the last finish comes at about 2,400 s, 10 s before the handler
    gives up (2,440 s less the 30 s report margin), with some 500 jobs still due for the final
    look at 10 a second. It stops looking when it gives up and reports within the margin."""
    ids = job_ids(800)
    iot.create_jobs(*ids)
    timing = Timing(total_timeout=2440, report_margin=30)

    outcome = run_delete(iot, clock, event("Delete", ids), timing)

    assert outcome.elapsed < 2440  # CloudFormation's own timeout comes later: the report is read
    assert not outcome.complete  # not every named job was seen gone after the last DeleteJob
    # Those it had no time to look at again are likely gone: the message does not say otherwise.
    message = str(outcome.error)
    assert " of 800 jobs not known to be deleted (" in message
    assert " of them not looked at again in time: they may be gone)" in message


class Everything:
    """IoT that answers any call at once, with nothing."""

    def __getattr__(self, operation: str) -> Any:
        return lambda **params: {"job": {"jobId": "j", "status": "COMPLETED"}, "jobs": []}


CALLS = {
    "describe_job": lambda iot: iot.describe("j"),
    "delete_job": lambda iot: iot.delete("j", False),
    "list_jobs": lambda iot: iot.job_ids_with_status("COMPLETED"),
}
OPERATIONS = list(CALLS)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    handed_on=st.dictionaries(
        st.sampled_from(OPERATIONS),
        st.tuples(st.integers(1, 30), st.floats(-3.0, 3.0)),
        max_size=3,
    ),
    steps=st.lists(
        st.tuples(st.sampled_from(OPERATIONS), st.sampled_from([0.0, 0.0, 0.001, 0.05, 0.3, 1.0, 2.5])),
        min_size=1,
        max_size=80,
    ),
)
def test_the_rate_holds_and_a_call_waits_only_for_a_full_window(
    handed_on: dict[str, tuple[int, float]], steps: list[tuple[str, float]]
) -> None:
    """Any run of calls, with any time between them and any calls handed on (their times up to
    3 s either side of now): no operation sends more than 10 within any second, and a call is
    held back only while its second already holds 10 (handed-on calls taken as made at the
    latest, and no later than now)."""
    clock = SimClock()
    start = clock()
    seeded = {op: (count, start + offset) for op, (count, offset) in handed_on.items()}
    iot = IotJobs(Everything(), None, clock=clock, sleep=clock.sleep, recent_calls=seeded)
    sent: dict[str, list[float]] = {
        op: [min(at, start)] * min(count, RATE) for op, (count, at) in seeded.items()
    }
    for operation, gap in steps:
        clock.now += gap
        before = clock()
        full = sum(1 for at in sent.get(operation, []) if at > before - 1.0 - 0.001) >= RATE
        CALLS[operation](iot)
        at = clock()
        sent.setdefault(operation, []).append(at)
        assert (at > before) == full  # waited exactly when its second was full
    for times in sent.values():
        assert busiest_second(times) <= RATE
