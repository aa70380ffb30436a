"""A cleanup's progress as CloudWatch Embedded Metric Format records: each record valid EMF,
written at least every minute while a cleanup runs, its counters since the previous record,
and never a failure of the cleanup because a record could not be written."""

from __future__ import annotations

import io
import json
import math
from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import iot_job_cleanup_handler as handler
from iot_job_cleanup_handler import CleanupProgress
from iot_job_cleanup_handler.metrics import (
    DIMENSIONS,
    METRICS,
    NAMESPACE,
    RECORD_EVERY,
    CleanupMetrics,
)
from support import Iot, SimClock, fail_calls, job_ids

POLL_INTERVAL = 2.0

NOTHING_YET = CleanupProgress(
    gone=0,
    deleting=0,
    waiting=0,
    draining=0,
    finishing=0,
    slots_in_use=0,
    slots_held_by_others=0,
    limit_exceeded=0,
    throttled=0,
    deletion_seconds=None,
    deleting_ids=(),
    not_started=(),
    cancelled_not_deleted=(),
    held_back=(),
    not_ours=0,
    discovery_finished=False,
)


def snapshot(**changes: Any) -> CleanupProgress:
    return replace(NOTHING_YET, **changes)


class Lines:
    """A writer that keeps what it is given."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def __call__(self, line: str) -> None:
        self.written.append(line)

    def records(self) -> list[dict[str, Any]]:
        return [parsed(line) for line in self.written]


def recorder(clock: SimClock, lines: Lines | None = None, **options: Any) -> CleanupMetrics:
    return CleanupMetrics(
        stack_name="OtaFleet", cleanup="Fleet/Cleanup", clock=clock, write=lines or Lines(), **options
    )


# --------------------------------------------------------------------------- EMF, by the spec


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


def parsed(line: str) -> dict[str, Any]:
    """One line of strict JSON (no NaN, no Infinity), ending in its newline."""
    assert line.endswith("\n") and "\n" not in line[:-1], repr(line)
    document = json.loads(line, parse_constant=_no_constant)
    assert isinstance(document, dict)
    return document


def emf_problems(document: dict[str, Any]) -> list[str]:
    """What keeps ``document`` from being an EMF record (the spec's structure, every rule)."""
    problems: list[str] = []
    aws = document.get("_aws")
    if not isinstance(aws, dict):
        return ["no _aws object at the root"]
    timestamp = aws.get("Timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        problems.append(f"Timestamp {timestamp!r} is not whole milliseconds since the epoch")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*problems, "CloudWatchMetrics is not a list of directives"]
    for directive in directives:
        if not isinstance(directive, dict):
            problems.append(f"directive {directive!r} is not an object")
            continue
        if not isinstance(directive.get("Namespace"), str) or not directive["Namespace"]:
            problems.append("a directive has no Namespace string")
        dimension_sets = directive.get("Dimensions")
        if not isinstance(dimension_sets, list):
            problems.append("Dimensions is not a list")
            dimension_sets = []
        for names in dimension_sets:
            if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
                problems.append(f"dimension set {names!r} is not a list of names")
                continue
            if len(names) > 9:
                problems.append(f"dimension set {names!r} has more than 9 names")
            for name in names:
                if not isinstance(document.get(name), str):
                    problems.append(f"dimension {name} is not a string member of the root")
        metrics = directive.get("Metrics")
        if not isinstance(metrics, list) or len(metrics) > 100:
            problems.append("Metrics is not a list of at most 100 definitions")
            metrics = []
        for metric in metrics:
            name = metric.get("Name") if isinstance(metric, dict) else None
            if not isinstance(name, str):
                problems.append(f"metric definition {metric!r} has no Name")
                continue
            value = document.get(name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                problems.append(f"metric {name} is not a number member of the root: {value!r}")
            if metric.get("Unit") != "Count":
                problems.append(f"metric {name} has unit {metric.get('Unit')!r}, not Count")
    return problems


def test_the_validator_catches_what_breaks_emf(clock: SimClock) -> None:
    good = recorder(clock).record(snapshot(deleting=3))
    assert emf_problems(good) == []
    broken = [
        {key: value for key, value in good.items() if key != "StackName"},
        {**good, "JobsLeft": "3"},
        {**good, "JobsLeft": True},
        {**good, "_aws": {**good["_aws"], "Timestamp": float(good["_aws"]["Timestamp"])}},
        {**good, "_aws": {**good["_aws"], "CloudWatchMetrics": {}}},
        {
            **good,
            "_aws": {
                **good["_aws"],
                "CloudWatchMetrics": [
                    {**good["_aws"]["CloudWatchMetrics"][0], "Dimensions": [list("ABCDEFGHIJ")]}
                ],
            },
        },
    ]
    for document in broken:
        assert emf_problems(document) != [], document


# --------------------------------------------------------------------------- a real cleanup


def test_a_real_cleanup_is_recorded_as_valid_emf_at_least_every_minute(iot: Iot, clock: SimClock) -> None:
    """45 jobs through the 10 slots take over two simulated minutes; IoT throttles a few calls."""
    ids = job_ids(45)
    iot.create_jobs(*ids)
    throttled = fail_calls(iot.client, "DeleteJob", "ThrottlingException", 429, times=4)
    lines = Lines()
    start = clock()
    metrics = recorder(clock, lines, stage=2, stages=3)
    cleanup = handler.JobCleanup(
        handler.IotJobs(iot.client, None, clock=clock, sleep=clock.sleep),
        handler.CleanupRequest(handler.Selection(tuple(ids))),
        clock=clock,
        sleep=clock.sleep,
        planned=False,
    )

    assert cleanup.run_until(start + 3000, POLL_INTERVAL, on_poll=metrics.on_poll)
    metrics.record(cleanup.progress())  # the final record, after completion

    records = lines.records()
    assert iot.existing() == set() and throttled == [4]
    assert [emf_problems(record) for record in records] == [[] for _ in records]
    times = [start * 1000, *(record["_aws"]["Timestamp"] for record in records)]
    gaps = [(later - earlier) / 1000 for earlier, later in pairwise(times)]
    assert len(records) >= 3, gaps  # two while it ran, then the final one
    assert all(gap <= RECORD_EVERY + max(clock.sleeps) for gap in gaps), gaps
    assert all(gap >= RECORD_EVERY for gap in gaps[:-1]), gaps  # on poll: no more often than due
    assert records[-1]["JobsLeft"] == 0 and records[-1]["JobsDeleting"] == 0
    assert records[0]["JobsLeft"] > 0
    assert sum(record["JobsDeleted"] for record in records) == len(ids)
    assert sum(record["Throttled"] for record in records) == cleanup.iot.throttled == 4
    assert {(r["StackName"], r["Cleanup"], r["Stage"], r["Stages"]) for r in records} == {
        ("OtaFleet", "Fleet/Cleanup", 2, 3)
    }
    assert records[-1]["DiscoveryFinished"] is True
    assert all(record["HandOvers"] == 0 for record in records)


# --------------------------------------------------------------------------- what a record holds


def test_a_record_names_its_namespace_dimensions_metrics_and_time(clock: SimClock) -> None:
    clock.now = 1_767_225_600.0625
    lines = Lines()
    progress = snapshot(
        gone=4, deleting=3, waiting=2, draining=1, finishing=1, held_back=("x",), slots_held_by_others=5
    )

    document = recorder(clock, lines).record(progress)

    assert lines.records() == [document]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE == "IotJobCleanup"
    assert directive["Dimensions"] == [list(DIMENSIONS)] == [["StackName", "Cleanup"]]
    assert [metric["Name"] for metric in directive["Metrics"]] == list(METRICS)
    assert document["_aws"]["Timestamp"] == 1_767_225_600_062
    assert {name: document[name] for name in METRICS} == {
        "JobsLeft": 8,
        "JobsDeleting": 3,
        "JobsDeleted": 4,
        "SlotsHeldByOthers": 5,
        "Throttled": 0,
        "HandOvers": 0,
    }
    assert (document["Stage"], document["Stages"], document["DiscoveryFinished"]) == (1, 1, False)


def test_a_long_or_odd_dimension_value_still_makes_one_valid_line(clock: SimClock) -> None:
    lines = Lines()
    path = "Fleet/\u00e9t\u00e9\n" + "x" * 2000 + "\ud800"
    metrics = CleanupMetrics(stack_name="", cleanup=path, clock=clock, write=lines)

    metrics.record(snapshot(slots_held_by_others=math.nan))  # type: ignore[arg-type]

    (record,) = lines.records()
    assert emf_problems(record) == []
    assert record["Cleanup"] == path[:1024] and len(record["Cleanup"]) == 1024
    assert record["StackName"] == "-"  # CloudWatch takes no empty dimension value
    assert record["SlotsHeldByOthers"] == 0  # NaN is not a number JSON or CloudWatch takes
    lines.written[0].encode("utf-8")  # a lone surrogate would make the line unwritable


def test_hand_overs_is_one_only_for_the_record_of_a_hand_over(clock: SimClock) -> None:
    metrics = recorder(clock)

    assert metrics.record(snapshot(waiting=5))["HandOvers"] == 0
    assert metrics.record(snapshot(waiting=5), handed_over=True)["HandOvers"] == 1
    assert metrics.record(snapshot(waiting=5), handed_over=False)["HandOvers"] == 0


# --------------------------------------------------------------------------- counters since the last record

counters = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), min_size=1, max_size=12)


@given(counters, st.none() | st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)))
def test_deleted_and_throttled_count_since_the_previous_record(
    steps: list[tuple[int, int]], baseline: tuple[int, int] | None
) -> None:
    """Each record's JobsDeleted and Throttled are what the counters grew by since the record
    before (the first: since the baseline, or zero), and never below zero."""
    clock = SimClock()
    start = (0, 0) if baseline is None else baseline
    metrics = recorder(
        clock, baseline=None if baseline is None else snapshot(gone=start[0], throttled=start[1])
    )
    growing = sorted(steps)  # the counters of one cleanup only grow
    previous = start
    for gone, throttled in [*growing, *steps]:  # then arbitrary ones: a counter may even fall
        record = metrics.record(snapshot(gone=gone, throttled=throttled))
        assert record["JobsDeleted"] == max(0, gone - previous[0])
        assert record["Throttled"] == max(0, throttled - previous[1])
        previous = (gone, throttled)


@given(st.lists(st.integers(0, 500), min_size=1, max_size=12).map(sorted), st.integers(0, 500))
def test_deleted_summed_over_the_records_is_the_jobs_deleted_since_the_baseline(
    gone: list[int], before: int
) -> None:
    clock, lines = SimClock(), Lines()
    metrics = recorder(clock, lines, baseline=snapshot(gone=before))
    for count in gone:
        metrics.record(snapshot(gone=before + count))

    assert sum(record["JobsDeleted"] for record in lines.records()) == gone[-1]


# --------------------------------------------------------------------------- when a record is due


class Polled:
    """A cleanup as on_poll sees it: it counts how often its progress is read."""

    def __init__(self) -> None:
        self.reads = 0

    def progress(self) -> CleanupProgress:
        self.reads += 1
        return snapshot(waiting=1)


def test_nothing_is_due_before_every_seconds_then_one_record(clock: SimClock) -> None:
    lines, cleanup = Lines(), Polled()
    metrics = recorder(clock, lines, every=60.0)

    for _ in range(59):
        clock.sleep(1.0)
        metrics.on_poll(cleanup)
    assert not metrics.due() and lines.written == [] and cleanup.reads == 0

    clock.sleep(1.0)
    assert metrics.due()
    metrics.on_poll(cleanup)
    metrics.on_poll(cleanup)  # the same moment: the record just made is not due again
    assert len(lines.written) == 1 and cleanup.reads == 1 and not metrics.due()

    clock.sleep(59.5)
    metrics.on_poll(cleanup)
    assert len(lines.written) == 1
    clock.sleep(0.5)
    metrics.on_poll(cleanup)
    assert len(lines.written) == 2


def test_a_record_made_directly_restarts_the_minute(clock: SimClock) -> None:
    metrics = recorder(clock)
    clock.sleep(50.0)
    metrics.record(snapshot())

    clock.sleep(50.0)
    assert not metrics.due()
    clock.sleep(10.0)
    assert metrics.due()


# --------------------------------------------------------------------------- writing never fails a cleanup


@pytest.mark.parametrize(
    "failure",
    [
        BrokenPipeError(32, "Broken pipe"),
        OSError(28, "No space left on device"),
        ValueError("I/O operation on closed file."),
        UnicodeEncodeError("ascii", "\u00e9", 0, 1, "ordinal not in range(128)"),
    ],
    ids=lambda failure: type(failure).__name__,
)
def test_a_failing_write_does_not_raise_and_its_counts_go_to_the_next_record(
    clock: SimClock, failure: Exception
) -> None:
    delivered = Lines()
    failing = True

    def write(line: str) -> None:
        if failing:
            raise failure
        delivered(line)

    metrics = CleanupMetrics(stack_name="OtaFleet", cleanup="Cleanup", clock=clock, write=write)

    document = metrics.record(snapshot(gone=3, throttled=2))
    assert document["JobsDeleted"] == 3  # what it tried to write

    failing = False
    metrics.record(snapshot(gone=5, throttled=2))
    (record,) = delivered.records()
    assert (record["JobsDeleted"], record["Throttled"]) == (5, 2)


def test_records_go_to_standard_output_not_to_logging(
    clock: SimClock, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    metrics = CleanupMetrics(stack_name="OtaFleet", cleanup="Cleanup", clock=clock)

    with caplog.at_level("DEBUG"):
        document = metrics.record(snapshot(deleting=2))

    out = capsys.readouterr().out
    assert parsed(out) == document
    assert caplog.records == []


def test_a_closed_standard_output_does_not_fail_the_cleanup(
    clock: SimClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr("sys.stdout", closed)
    metrics = CleanupMetrics(stack_name="OtaFleet", cleanup="Cleanup", clock=clock)

    assert metrics.record(snapshot(gone=1))["JobsDeleted"] == 1
