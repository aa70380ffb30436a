"""The benchmark's own machinery: simulated time, the contenders, the bound."""

from __future__ import annotations

import pytest
from moto.iot.models import IoTBackend

import iot_job_cleanup_handler as handler
from benchmarks.run import STAGED_GOAL, Scenario, losses, run_contender
from benchmarks.simulation import (
    STAGE_GAP_SECONDS,
    STATUS_POLL,
    ResourceRun,
    SimTime,
    cleanup_total_timeout,
    idle_slot_seconds,
    run_handler,
    run_one_shot,
    run_sequential,
    stage_timeouts,
)
from iot_job_cleanup.emulator import DeletionLifecycle, DeletionTime


def test_sim_time_interleaves_actors_by_wake_time_and_returns_their_results() -> None:
    sim = SimTime(start=100.0)
    trace: list[tuple[str, float]] = []

    def actor(name: str, pauses: list[float]) -> str:
        for pause in pauses:
            sim.sleep(pause)
            trace.append((name, sim.now()))
        return name

    results = sim.run([lambda: actor("a", [5, 5]), lambda: actor("b", [3, 4, 4])])

    assert results == ["a", "b"]
    assert trace == [("b", 103), ("a", 105), ("b", 107), ("a", 110), ("b", 111)]
    assert sim.now() == 111


def test_sim_time_passes_an_actor_error_to_the_caller() -> None:
    sim = SimTime()

    def broken() -> None:
        sim.sleep(1)
        raise ValueError("actor broke")

    with pytest.raises(ValueError, match="actor broke"):
        sim.run([broken, lambda: sim.sleep(5)])


def lifecycle_for(sim: SimTime, seconds: float, count: int) -> tuple[DeletionLifecycle, list[str]]:
    lifecycle = DeletionLifecycle(
        IoTBackend("us-east-1", "123456789012"), clock=sim.now, deletion_time=DeletionTime(seconds)
    )
    ids = [f"job-{index}" for index in range(count)]
    for job_id in ids:
        lifecycle.create_job(job_id, targets=["arn:aws:iot:us-east-1:123456789012:thing/t"])
    return lifecycle, ids


def test_sequential_deletes_one_job_at_a_time() -> None:
    sim = SimTime()
    lifecycle, ids = lifecycle_for(sim, 30, 2)
    run = ResourceRun(job_ids=ids)

    sim.run([lambda: run_sequential(lifecycle, sim, run, poll=10, latency=0)])

    # job-0: deleted at 0, still there at 0, 10, 20, gone at 30; job-1: 30 to 60.
    assert run.finished == 60
    assert run.log.by_operation() == {"delete_job": 2, "describe_job": 8}


def test_one_shot_fails_past_the_ten_slots_after_botocore_retries_and_leaves_jobs_behind() -> None:
    sim = SimTime()
    lifecycle, ids = lifecycle_for(sim, 120, 12)
    run = ResourceRun(job_ids=ids)

    sim.run([lambda: run_one_shot(lifecycle, sim, run, latency=0, seed=1)])

    assert len(run.jobs_failed) == 2 and set(run.jobs_failed) <= set(ids)
    assert run.log.by_operation()["delete_job"] == 10 + 2 * 3  # botocore standard: 3 attempts
    assert run.finished is not None and run.finished < 20  # retries last seconds, the limit minutes
    lifecycle.settle()
    assert len(lifecycle.job_ids()) == 12  # none gone when it reported


def test_the_bound_counts_only_the_slots_outside_deletions_leave_free() -> None:
    scenario = Scenario("x", jobs_per_resource=20, deletion=60.0, resources=2, outside_slots=5)
    times = scenario.deletion_times(seed=1)

    assert len(times) == 40
    assert scenario.bound(times) == 40 * 60 / 5
    assert Scenario("y", 3, 600.0).bound(Scenario("y", 3, 600.0).deletion_times(1)) == 600


@pytest.mark.parametrize(
    "scenario",
    # Instances whose bound is achievable: whole rounds of equal deletions through the free slots.
    [
        Scenario("N=30 T=2min", 30, 120.0),
        Scenario("K=4x10 T=2min", 10, 120.0, resources=4, outside_slots=2),
        Scenario("K=3x20 T=30s", 20, 30.0, resources=3),
    ],
    ids=lambda s: s.name,
)
def test_the_handler_keeps_the_slots_full_in_simulated_time(scenario: Scenario) -> None:
    result = run_contender(scenario, "handler", handler)

    assert result.failures == 0
    assert result.jobs_left == 0
    assert 1.0 <= result.ratio <= 1.10
    assert result.calls_per_second_per_resource <= 2.0
    assert result.finish_times[-1] - result.finish_times[0] <= 0.1 * result.bound  # no resource starved


# --------------------------------------------------------------------------- beyond one hour: stages


def test_a_cleanup_gets_whole_hours_of_headroom_split_as_the_construct_splits_them() -> None:
    assert cleanup_total_timeout(30.0) == 3600  # at least one stage
    assert cleanup_total_timeout(3000.0) == 3600  # 3,300 s with the headroom: one hour
    assert cleanup_total_timeout(3300.0) == 7200  # 3,630 s: two
    assert cleanup_total_timeout(6000.0) == 7200
    assert cleanup_total_timeout(30000.0) == 10 * 3600
    assert cleanup_total_timeout(1e6) == 24 * 3600  # the construct's cap
    assert stage_timeouts(9000) == [3600, 3600, 1800]  # the last stage gets the rest
    assert stage_timeouts(7200) == [3600, 3600]
    assert stage_timeouts(600) == [600]


def test_idle_slot_seconds_count_the_free_slots_over_the_intervals_once() -> None:
    deletions = {"a": (0.0, 10.0), "b": (5.0, 10.0)}
    # Two slots: one free over [0, 5), none over [5, 10), one over [10, 15), two over [15, 20).
    assert idle_slot_seconds(deletions, 2, [(0.0, 20.0)]) == 5 + 0 + 5 + 10
    assert idle_slot_seconds(deletions, 2, [(0.0, 12.0), (8.0, 20.0)]) == 20  # overlaps once
    assert idle_slot_seconds(deletions, 2, [(6.0, 9.0)]) == 0


def test_a_cleanup_needing_two_stages_finishes_in_one_destroy_within_the_goal() -> None:
    scenario = Scenario("N=70 T=10min", 70, 600.0)  # bound 4,200 s: more than a custom resource's hour
    result = run_contender(scenario, "handler", handler)
    run = result.runs[0]

    assert result.total_timeout == 7200 and result.stages == 2
    assert result.failures == 0 and result.jobs_left == 0  # one destroy: no DELETE_FAILED, all gone
    first, second = run.stages
    assert (first.timeout, second.timeout) == (3600, 3600)
    # Stage 1 ran out of time with jobs left and handed over (logged), within its hour and
    # the report margin; stage 2 began after CloudFormation's step and finished the rest.
    assert first.handed_over and not second.handed_over and result.hand_overs == 1
    assert first.jobs_left_at_hand_over and first.jobs_left_at_hand_over > 0
    assert 3600 - 30 - 5 <= first.seconds <= 3600 - 30
    assert second.started - first.finished == STAGE_GAP_SECONDS
    assert second.first_deletion is not None and second.first_deletion > second.started
    assert result.ratio <= STAGED_GOAL
    # Lambda time is the whole cleanup's, both stages' invocations.
    assert run.invocations == first.invocations + second.invocations
    assert run.lambda_seconds == pytest.approx(first.lambda_seconds + second.lambda_seconds)
    assert run.lambda_seconds >= 0.95 * result.makespan

    # Where the time went adds up to the makespan; the hand-over cost next to nothing: the
    # deletions under way went on in IoT, so the same cleanup as one resource is no faster.
    lost = losses(result)
    assert lost.bound + lost.slots_part + lost.report == pytest.approx(result.makespan)
    assert len(lost.pauses) == 1 and lost.hand_overs <= 5
    lifted = run_contender(scenario, "handler", handler, cap_lifted=True)
    assert lifted.stages == 1 and lifted.runs[0].stages[0].timeout is None
    assert abs(result.makespan - lifted.makespan) <= 0.01 * result.bound


def test_a_stage_after_the_one_that_finished_completes_at_once_and_deletes_nothing() -> None:
    sim = SimTime()
    lifecycle, ids = lifecycle_for(sim, 600, 70)  # 70 deletions of 10 min: 4,200 s
    run = ResourceRun(job_ids=ids)
    timing = handler.Timing()

    sim.run(
        [
            lambda: run_handler(
                handler, lifecycle, sim, run, timing=timing, latency=0.05, seed=1,
                lambda_timeout=370, total_timeout=3 * 3600,
            )
        ]
    )  # fmt: skip

    assert not run.failure and lifecycle.job_ids() == []
    assert [stage.handed_over for stage in run.stages] == [True, False, False]
    third = run.stages[2]
    assert third.seconds < 60 and third.first_deletion is None
    assert run.finished is not None and run.finished - run.started < 4200 * 1.05


def test_the_last_stage_fails_the_destroy_and_names_what_is_left() -> None:
    sim = SimTime()
    lifecycle, ids = lifecycle_for(sim, 120, 5)
    lifecycle.hold_slots(10, seconds=1e9)  # other stacks hold every slot for good
    run = ResourceRun(job_ids=ids)

    sim.run(
        [
            lambda: run_handler(
                handler, lifecycle, sim, run, timing=handler.Timing(), latency=0.05, seed=1,
                lambda_timeout=370, total_timeout=2 * 3600,
            )
        ]
    )  # fmt: skip

    assert [stage.handed_over for stage in run.stages] == [True, False]
    assert run.failure.startswith("CleanupTimeoutError: Stage 2 of 2, the last, timed out after"), run.failure
    assert "with 5 of 5 jobs not deleted" in run.failure
    assert run.finished is not None and 7200 - 60 <= run.finished <= 7200


def test_the_benchmark_gives_the_same_numbers_in_every_process() -> None:
    """Set order must not leak into the schedule: Python salts string hashes per process."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    outputs = []
    for seed in ("0", "1"):  # two salts under which set order did differ (a bug this pins)
        env = {
            **os.environ,
            "PYTHONHASHSEED": seed,
            "PYTHONPATH": os.pathsep.join(str(root / part) for part in ("constructs", "lambda", ".")),
        }
        # a scheduling scenario, one of two stages (and its twin, cap lifted), a rate-limited drain
        only = "N=100 T=30s|N=100 T=10min|drain: 20 running"
        command = [sys.executable, "-m", "benchmarks.run", "--only", only, "--contenders", "handler"]
        result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        outputs.append(re.sub(r"\(\d+\.\d+ s\)", "", result.stdout))  # less the wall time

    assert outputs[0] == outputs[1]
    assert "drain: 20 running" in outputs[0]
    assert "stages 2 hand-overs 1" in outputs[0] and "one resource, cap lifted" in outputs[0]
    assert "worst makespan/bound" in outputs[0] and "(the 3 scenarios run, worst:" in outputs[0]
    assert "with 50 ms calls (the 3 scenarios run" in outputs[0]
    assert "with instant calls (the 3 scenarios run" in outputs[0]
    assert "calls budget with 50 ms calls:" in outputs[0] and "calls budget with instant calls:" in outputs[0]


# --------------------------------------------------------------------------- selectors at scale, drain


def test_the_account_gives_every_selector_exactly_our_jobs_and_each_filter_alone_more() -> None:
    from benchmarks import scale

    account = scale.populate(SimTime(), jobs=300, ours=30, rate_limit=None)
    lifecycle = account.lifecycle
    jobs = lifecycle.snapshot()

    def selected(properties: dict[str, object]) -> set[str]:
        selection = handler.CleanupRequest.from_properties(properties).selection
        return {
            job_id
            for job_id, job in jobs.items()
            if selection.id_may_match(job_id)
            and (not selection.thing_groups or selection.targets_a_group(job.targets))
            and selection.carries_tags(job.tags)
        }

    assert len(jobs) == 300 and len(account.ours) == 30 and len(account.bystanders) == 270
    for selector in scale.SELECTORS[1:]:
        assert selected(dict(selector.filters)) == set(account.ours), selector.name
    # The AND matters: the tag alone and the prefix alone each select bystanders too.
    assert len(selected({"JobTags": [{"Key": "team", "Value": "firmware"}]})) > 30
    assert len(selected({"JobIdPrefix": "fleet-"})) == 60
    # Some of ours are SCHEDULED (ListJobs by thing group leaves them out), bystanders too.
    assert sum(jobs[job_id].status == "SCHEDULED" for job_id in account.ours) == 2
    assert "SCHEDULED" in account.bystanders.values()
    # Created a day before the teardown, as an account's jobs would be.
    assert all(job.created_at == -scale.CREATED_BEFORE for job in jobs.values())


@pytest.mark.parametrize("index", range(6), ids=lambda i: f"selector{i}")
def test_a_selector_cleanup_deletes_the_matches_and_leaves_the_bystanders(index: int) -> None:
    """300 jobs of which 30 match, rate limited as in the benchmark; its counts add up."""
    from benchmarks import scale

    selector = scale.SELECTORS[index]
    result = scale.run_selector(selector, handler, jobs=300, ours=30)

    assert result.finished, (selector.name, result.run.failure)
    assert result.ours_left == 0 and result.bystanders_touched == []
    assert result.all_gone_at <= result.makespan
    assert result.count("delete_job") >= 30
    if selector.filters:
        assert result.listing_pages >= 2  # a walk, and the one that finds nothing left
        assert result.discovery_calls / result.calls > 0
    else:  # no walk: only the final look's two listings of the running jobs (force: the plan lists none)
        listings = {call.detail for call in result.run.log.calls if call.operation == "list_jobs"}
        running = listings - {STATUS_POLL}
        assert running == {"status=SCHEDULED", "status=IN_PROGRESS"}
        assert result.discovery_calls == result.listing_pages == 2
    if "answers nothing" in selector.name:
        assert result.count(scale.TAGS) >= 30  # one per candidate examined
    if selector.name.startswith("thing group"):
        assert result.count(scale.LISTINGS, listing="discovery") >= 2
        assert result.count("describe_job", ours=False) > 0  # SCHEDULED jobs' targets read


def test_touched_bystanders_are_counted() -> None:
    from benchmarks import scale

    account = scale.populate(SimTime(), jobs=60, ours=6, rate_limit=None)
    deleted, cancelled = sorted(
        job_id for job_id, status in account.bystanders.items() if status == "IN_PROGRESS"
    )[:2]
    account.lifecycle.delete_job(deleted, force=True, namespace_id=None)
    account.lifecycle.cancel_job(cancelled)

    assert account.bystanders_touched() == sorted([deleted, cancelled])
    assert account.ours_left() == 6


def test_the_drain_bound_counts_devices_finishing_and_work_released_late() -> None:
    from benchmarks.scale import drain_bound

    times = {f"t{i}": 120.0 for i in range(10)} | {"late": 120.0}
    # 11 jobs of 120 s through 10 slots: 132 s; one ready at 500 s: 620 s.
    assert drain_bound(times, {"late": 500.0}) == {"drain": 620.0, "slots": 500.0 + 120.0 / 10}
    # 20 jobs ready at 300 s: 300 + 2 rounds, more than any single job.
    many = {f"d{i}": 120.0 for i in range(20)}
    assert drain_bound(many, dict.fromkeys(many, 300.0)) == {"drain": 420.0, "slots": 540.0}


def test_the_counting_client_logs_the_listing_and_throttling() -> None:
    from benchmarks.simulation import STATUS_POLL, CallLog, CountingClient
    from iot_job_cleanup.emulator import LifecycleClient

    sim = SimTime()
    lifecycle = DeletionLifecycle(IoTBackend("us-east-1", "123456789012"), clock=sim.now, rate_limit=2)
    lifecycle.create_job("a", targets=["arn:aws:iot:us-east-1:123456789012:thinggroup/g"])
    log = CallLog()
    client = CountingClient(LifecycleClient(lifecycle), sim, log, latency=0)

    def calls() -> None:
        client.list_jobs(status="DELETION_IN_PROGRESS")
        client.list_jobs(thingGroupName="g")
        with pytest.raises(Exception, match="Throttling"):
            client.list_jobs()
        client.describe_job(jobId="a")

    sim.run([calls])

    assert [(c.operation, c.code, c.detail) for c in log.calls] == [
        ("list_jobs", "", STATUS_POLL),
        ("list_jobs", "", "thingGroupName=g"),
        ("list_jobs", "ThrottlingException", "all jobs"),
        ("describe_job", "", "a"),
    ]
    assert log.answered("ThrottlingException") == 1


# --------------------------------------------------------------------------- instant calls, the calls budget


def _brute_force_peak(calls: list[tuple[float, str]]) -> dict[str, int]:
    """The most calls of each operation in any [t, t + 1 s), trying every call as t (to the µs)."""
    peaks: dict[str, int] = {}
    for start, operation in calls:
        inside = sum(
            1
            for at, op in calls
            if op == operation and round(start * 1e6) <= round(at * 1e6) < round(start * 1e6) + 10**6
        )
        peaks[operation] = max(peaks.get(operation, 0), inside)
    return peaks


def test_the_peak_of_one_operation_slides_its_second_over_every_resource() -> None:
    from benchmarks.simulation import Call, CallLog, OperationPeak, peak_per_operation, peak_per_second

    # A 20-job run's calls, two resources: 20 DeleteJob 50 ms apart from 10.6 s, 12 in the
    # clock's second 11 and 8 in second 10, so fixed windows would see 12; the sliding window
    # sees all 20. One more DeleteJob exactly 1 s after the first is not in its window (half-open).
    first = CallLog([Call(10.6 + 0.05 * k, "delete_job", "") for k in range(10)])
    second = CallLog([Call(11.1 + 0.05 * k, "delete_job", "") for k in range(10)])
    second.calls.append(Call(11.6, "delete_job", ""))
    # 11 DescribeJob within 0.91 s (one throttled: it counts), 30 GetResources at one instant
    # (another service's: left out when asked), and ListJobs once a second.
    first.calls += [
        Call(30.0 + 0.09 * k, "describe_job", "ThrottlingException" if k == 3 else "") for k in range(11)
    ]
    first.calls += [Call(40.0, "get_resources", "")] * 30
    second.calls += [Call(float(s), "list_jobs", "") for s in range(60)]

    peak = peak_per_operation([first, second], exclude=("get_resources",))
    assert peak == OperationPeak(20, "delete_job", pytest.approx(10.6))
    assert str(peak) == "20 DeleteJob"
    assert peak_per_operation([first, second]) == OperationPeak(30, "get_resources", 40.0)
    # first alone: 10 DeleteJob, 11 DescribeJob
    assert peak_per_operation([first], exclude=("get_resources",)) == OperationPeak(
        11, "describe_job", pytest.approx(30.0)
    )
    assert peak_per_operation([CallLog([Call(0.0, "list_jobs", "")] * 10)]).calls == 10
    assert peak_per_operation([]) == OperationPeak(0, "", 0.0) and str(peak_per_operation([])) == "0"
    assert peak_per_second([first, second]) == 31  # fixed windows, all operations: second 40
    everything = [
        (c.at, c.operation) for log in (first, second) for c in log.calls if c.operation != "get_resources"
    ]
    assert _brute_force_peak(everything) == {"delete_job": 20, "describe_job": 11, "list_jobs": 1}


def test_calls_fifty_ms_apart_peak_at_twenty_a_second_not_twenty_one() -> None:
    """The simulated clock adds 25 ms twice per call: its float sums must not squeeze a 21st
    call into a second."""
    from benchmarks.simulation import CallLog, CountingClient, peak_per_operation
    from iot_job_cleanup.emulator import LifecycleClient

    sim = SimTime(start=0.3)
    lifecycle, ids = lifecycle_for(sim, 30, 1)
    log = CallLog()
    client = CountingClient(LifecycleClient(lifecycle), sim, log, latency=0.05)
    sim.run([lambda: [client.describe_job(jobId=ids[0]) for _ in range(200)]])

    assert peak_per_operation([log]).calls == 20


def test_the_calls_budget_allows_two_a_second_on_average_and_ten_of_one_operation() -> None:
    from benchmarks.simulation import OperationPeak, budget_problems

    assert budget_problems(2.0, OperationPeak(10, "describe_job", 0.0)) == []
    assert budget_problems(2.13, OperationPeak(10, "describe_job", 0.0)) == ["2.13 calls/s per resource > 2"]
    assert budget_problems(0.5, OperationPeak(11, "list_tags_for_resource", 5.0)) == [
        "11 ListTagsForResource in 1 s > 10"
    ]


def test_a_small_run_with_instant_calls_meets_its_bound_and_reports_its_calls() -> None:
    from benchmarks.run import measured

    scenario = Scenario("N=20 T=30s", 20, 30.0)  # two whole rounds: the bound is achievable
    slow = run_contender(scenario, "handler", handler)
    instant = run_contender(scenario, "handler", handler, latency=0.0)

    assert (slow.latency, instant.latency) == (0.05, 0.0)
    for result in (slow, instant):
        assert result.failures == 0 and result.jobs_left == 0
        calls = [(c.at, c.operation) for run in result.runs for c in run.log.calls]
        peaks = _brute_force_peak(calls)
        top = max(peaks.values())
        assert result.operation_peak.calls == top
        assert peaks[result.operation_peak.operation] == top
    assert 1.0 <= instant.ratio <= 1.01
    assert instant.ratio <= slow.ratio
    # No operation goes past IoT's 10 calls a second: the plan's looks at the 10 jobs in line,
    # a confirmation beside them and the final look wait their turn (the first batch's 10
    # DeleteJob, or as many looks, are the peak); the budget holds.
    for result in (slow, instant):
        assert result.operation_peak.calls == 10
        assert measured(result).problems == []


def test_the_summary_lines_give_both_worsts_and_the_scenarios_over_budget() -> None:
    from benchmarks.run import Measured, budget_line, worst_line
    from benchmarks.simulation import OperationPeak

    def m(name: str, ratio: float, average: float, peak: int, finished: bool = True) -> Measured:
        return Measured(
            name, "scheduling", ratio, finished, average, OperationPeak(peak, "describe_job", 0.0)
        )

    fifty = [m("a", 1.072, 1.96, 20), m("b", 1.01, 0.5, 4)]
    instant = [m("a", 1.0, 2.13, 20), m("b", 1.004, 0.6, 4, finished=False)]

    assert worst_line(fifty, instant, complete=True) == (
        "worst makespan/bound: 1.072 with 50 ms calls (all 2 scenarios, worst: a), 1.004 with instant "
        "calls (all 2 scenarios, worst: b; 1 did not finish (failed at their total timeout, their ratio "
        "a lower bound): b)"
    )
    assert worst_line(fifty, complete=False).endswith("with 50 ms calls (the 2 scenarios run, worst: a)")
    assert budget_line(fifty, 0.05) == (
        "calls budget with 50 ms calls: 1 of 2 scenarios break it; average over 2 calls/s per resource: "
        "0 (highest 1.96: a); over 10 of one operation in 1 s: 1 (highest 20 DescribeJob: a)"
    )
    assert "average over 2 calls/s per resource: 1 (a: 2.13)" in budget_line(instant, 0.0)
