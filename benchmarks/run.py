"""The cleanup benchmark: `make bench`.

Runs the real handler code (lambda/iot_job_cleanup_handler/) through the Provider
contract against the documented IoT DeleteJob lifecycle, in simulated time, beside two
naive contenders, over the scenarios below; then, the handler alone, each selector kind in
an account of 10,000 jobs under IoT's rate limits, and drain (benchmarks/scale.py). Writes
benchmarks/RESULTS.md and benchmarks/makespan_vs_bound.png. Every scenario our handler ran
is run once more with instant calls (latency 0), and each is held to the calls budget
(issue 16: on average at most 2 IoT calls per second per resource over its cleanup, never
more than 10 calls of one operation in any one second over all resources); the lines
printed last say which scenarios break the budget, and the very last the worst
makespan/bound with 50 ms calls and with instant calls.

No cleanup of N jobs can end sooner than ``bound = max(max T_i, sum T_i / slots)``, where
slots is 10 less what outside deletions hold. Our handler runs as deployed: its cleanup gets
``total_timeout`` = the bound plus 10 % in whole hours (``cleanup_total_timeout``), so one
whose bound exceeds CloudFormation's hour is several custom resources, its stages, run one
after another in one destroy (``run_handler``); those scenarios are marked, and a section of
their own says what the hand-overs cost (``losses``), against the same cleanup run as one
resource with the cap lifted.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import random
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from moto.iot.models import IoTBackend

from benchmarks import scale
from benchmarks.simulation import (
    AVERAGE_BUDGET,
    HEADROOM,
    OPERATION_BUDGET,
    STAGE_GAP_SECONDS,
    Losses,
    OperationPeak,
    ResourceRun,
    SimTime,
    budget_problems,
    cleanup_losses,
    cleanup_total_timeout,
    peak_per_operation,
    peak_per_second,
    run_handler,
    run_one_shot,
    run_sequential,
    stage_timeouts,
)
from iot_job_cleanup.cfn import OFFLINE_ACCOUNT, OFFLINE_REGION
from iot_job_cleanup.emulator import DeletionLifecycle, DeletionTime

HERE = Path(__file__).resolve().parent
ONE_HOUR = 3600.0
MIX = (30.0, 120.0, 600.0)
# IoT: deletion "can take time, depending on the number of job executions created for the
# job". Here a job has one execution per 30 s of deletion: 1, 4 or 20 target things.
SECONDS_PER_EXECUTION = 30.0
ACCOUNT, REGION = OFFLINE_ACCOUNT, OFFLINE_REGION
CONTENDERS = ("handler", "sequential", "one-shot")
LATENCY = 0.05  # each IoT call's round trip; the instant-call runs take 0
STAGED_GOAL = 1.05  # a cleanup longer than an hour: one destroy, hand-overs included


@dataclass(frozen=True)
class Scenario:
    name: str
    jobs_per_resource: int
    deletion: float | None  # seconds, or None for a mix of 30 s, 2 min and 10 min
    resources: int = 1
    outside_slots: int = 0  # slots other stacks hold for the whole run

    def deletion_times(self, seed: int) -> dict[str, float]:
        rng = random.Random(seed)
        return {
            job_id: self.deletion if self.deletion is not None else rng.choice(MIX)
            for job_id in self.job_ids()
        }

    def job_ids(self) -> list[str]:
        return [
            f"r{resource}-job-{index:04d}"
            for resource in range(self.resources)
            for index in range(self.jobs_per_resource)
        ]

    def bound(self, times: dict[str, float]) -> float:
        return max(max(times.values()), sum(times.values()) / (10 - self.outside_slots))


def scenarios() -> list[Scenario]:
    table = []
    for deletion, label in ((30.0, "30s"), (120.0, "2min"), (600.0, "10min"), (None, "mix")):
        for count in (1, 10, 100, 500):
            table.append(Scenario(f"N={count} T={label}", count, deletion))
    table.append(Scenario("K=5x40 T=2min", 40, 120.0, resources=5))
    table.append(Scenario("K=5x40 T=mix", 40, None, resources=5))
    table.append(Scenario("N=100 T=2min, 5 slots held", 100, 120.0, outside_slots=5))
    table.append(Scenario("K=5x40 T=30s, 3 slots held", 40, 30.0, resources=5, outside_slots=3))
    return table


@dataclass
class Result:
    scenario: Scenario
    contender: str
    bound: float
    runs: list[ResourceRun]
    jobs_left: int  # jobs still there when the contender reported success
    wall_seconds: float
    # Our jobs' deletions in IoT: job id -> (started at, seconds), for the slots' idle time.
    deletions: dict[str, tuple[float, float]] = field(default_factory=dict)
    total_timeout: float | None = None  # our handler's cleanup; None: one resource, the cap lifted
    latency: float = LATENCY

    @property
    def stages(self) -> int:
        """How many stages the cleanup has (each resource's; 1 for the contenders)."""
        return max((len(run.stages) for run in self.runs), default=1) or 1

    @property
    def hand_overs(self) -> int:
        return sum(run.hand_overs for run in self.runs)

    @property
    def staged(self) -> bool:
        return self.stages > 1

    @property
    def makespan(self) -> float:
        return max((run.finished or 0.0) - run.started for run in self.runs)

    @property
    def ratio(self) -> float:
        return self.makespan / self.bound

    @property
    def jobs(self) -> int:
        return sum(len(run.job_ids) for run in self.runs)

    @property
    def calls(self) -> int:
        return sum(run.log.count() for run in self.runs)

    @property
    def calls_per_second_per_resource(self) -> float:
        return max(run.log.count() / max((run.finished or 0.0) - run.started, 1e-9) for run in self.runs)

    @property
    def operation_peak(self) -> OperationPeak:
        """The most calls of one IoT operation in any one second, over all resources."""
        return peak_per_operation([run.log for run in self.runs])

    @property
    def failures(self) -> int:
        return sum(1 for run in self.runs if run.failure)

    @property
    def finish_times(self) -> list[float]:
        return sorted((run.finished or 0.0) - run.started for run in self.runs)

    @property
    def longest_slot_wait(self) -> float:
        """The longest time any resource went without starting a deletion while it had jobs left."""
        waits = []
        for run in self.runs:
            starts = [run.started, *run.log.deletions_started()]
            waits.append(max((b - a for a, b in itertools.pairwise(starts)), default=0.0))
        return max(waits)


def run_contender(
    scenario: Scenario,
    contender: str,
    handler: object,
    *,
    seed: int = 7,
    latency: float = LATENCY,
    poll_window: float | None = None,
    cap_lifted: bool = False,
) -> Result:
    """One contender on one scenario. Our handler's cleanup runs as deployed, one stage per
    hour of its total timeout (the bound plus HEADROOM, in hours); ``cap_lifted``: as one
    resource with no time cap instead, to see what the stages cost."""
    times = scenario.deletion_times(seed)
    sim = SimTime()
    lifecycle = DeletionLifecycle(
        backend=IoTBackend(REGION, ACCOUNT),
        clock=sim.now,
        deletion_time=DeletionTime(base_seconds=0.0, per_target_seconds=SECONDS_PER_EXECUTION),
    )
    for job_id, seconds in times.items():
        things = round(seconds / SECONDS_PER_EXECUTION)
        lifecycle.create_job(
            job_id, targets=[f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/device-{i}" for i in range(things)]
        )
    if scenario.outside_slots:
        lifecycle.hold_slots(scenario.outside_slots, seconds=1e9)
    ids = scenario.job_ids()
    per = scenario.jobs_per_resource
    runs = [ResourceRun(job_ids=ids[k * per : (k + 1) * per]) for k in range(scenario.resources)]
    # The timing as deployed (the polling window unless studied); each stage's own
    # TotalTimeoutSeconds sets its hour. With the cap lifted: one resource, no time limit.
    total_timeout = None if cap_lifted else cleanup_total_timeout(scenario.bound(times))
    timing = handler.Timing(
        **({"total_timeout": 1e9} if cap_lifted else {}),
        **({} if poll_window is None else {"poll_window": poll_window}),
    )
    lambda_timeout = timing.poll_window + timing.query_interval + 60
    actors: list[Callable[[], None]] = []
    for k, run in enumerate(runs):
        if contender == "handler":
            actor = partial(
                run_handler,
                handler,
                lifecycle,
                sim,
                run,
                timing=timing,
                latency=latency,
                seed=seed + k,
                lambda_timeout=lambda_timeout,
                total_timeout=total_timeout,
                logical_id=f"Cleanup{k}",
            )
        elif contender == "sequential":
            actor = partial(run_sequential, lifecycle, sim, run, poll=timing.query_interval, latency=latency)
        else:
            actor = partial(run_one_shot, lifecycle, sim, run, latency=latency, seed=seed + k)
        actors.append(actor)
    began = time.perf_counter()
    sim.run(actors)
    wall = time.perf_counter() - began
    lifecycle.settle()
    left = sum(1 for job_id in ids if lifecycle.exists(job_id))
    started = lifecycle.deletion_started
    deletions = {job_id: (started[job_id], times[job_id]) for job_id in ids if job_id in started}
    return Result(
        scenario,
        contender,
        scenario.bound(times),
        runs,
        left,
        wall,
        deletions,
        total_timeout if contender == "handler" else None,
        latency,
    )


# --------------------------------------------------------------------------- where the time goes


def losses(result: Result) -> Losses:
    """Where a scheduling scenario's time beyond the bound went (``cleanup_losses``)."""
    return cleanup_losses(
        result.runs, result.deletions, 10 - result.scenario.outside_slots, result.bound, result.makespan
    )


# --------------------------------------------------------------------------- reporting


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _fmt_finishes(result: Result) -> str:
    times = result.finish_times
    if len(times) == 1:
        return "-"
    return f"{_fmt_seconds(times[0])} to {_fmt_seconds(times[-1])}"


def table(results: list[Result]) -> str:
    header = (
        "| scenario | contender | makespan | bound | makespan/bound | IoT calls/job | peak calls/s "
        "| calls/s per resource | peak of one operation in 1 s | invocations | Lambda s per cleanup "
        "| longest slot wait | resources done | stages (hand-overs) | failures |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    rows = []
    for r in results:
        over = " ⏱ >1 h" if r.bound > ONE_HOUR else ""
        stages = f"{r.stages} ({r.hand_overs})" if r.contender == "handler" else "-"
        if r.contender == "one-shot":
            failed = sum(len(run.jobs_failed) for run in r.runs)
            failures = f"{failed} failed, {r.jobs_left} left behind"
        else:
            failures = f"{r.failures} resources failed" if r.failures else "none"
        makespan, ratio = _fmt_seconds(r.makespan), f"{r.ratio:.3f}"
        if r.contender == "one-shot":  # it reports success while the jobs are still there
            makespan, ratio = f"returned after {makespan}", "n/a"
        rows.append(
            f"| {r.scenario.name}{over} | {r.contender} | {makespan} "
            f"| {_fmt_seconds(r.bound)} "
            f"| {ratio} | {r.calls / r.jobs:.1f} | {peak_per_second([run.log for run in r.runs])} "
            f"| {r.calls_per_second_per_resource:.2f} | {r.operation_peak} "
            f"| {sum(run.invocations for run in r.runs)} "
            f"| {sum(run.lambda_seconds for run in r.runs) / len(r.runs):.0f} "
            f"| {_fmt_seconds(r.longest_slot_wait)} | {_fmt_finishes(r)} | {stages} | {failures} |"
        )
    return header + "\n".join(rows) + "\n"


# --------------------------------------------------------------------------- beyond one hour


def _finished_in(run: ResourceRun, last_gone: float) -> int:
    """The stage during which the cleanup's last job was gone."""
    return next((stage.number for stage in run.stages if last_gone <= stage.finished), len(run.stages))


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h"


def _staged_row(
    name: str,
    bound: float,
    makespan: float,
    total_timeout: float,
    runs: list[ResourceRun],
    finished: bool,
    lost: Losses,
    lifted: float | None,
) -> str:
    stages = max(len(run.stages) for run in runs)
    hand_overs = sum(run.hand_overs for run in runs)
    done_in = max(_finished_in(run, lost.last_gone) for run in runs)
    ratio = makespan / bound
    if not finished:
        goal = "**fails**: not finished"
    else:
        goal = "passes" if ratio <= STAGED_GOAL else f"**fails**: {ratio:.3f} > {STAGED_GOAL:.2f}"
    cost = f"{lifted / bound:.3f} ({makespan - lifted:+.0f} s)" if lifted is not None else "-"
    lambda_seconds = sum(run.lambda_seconds for run in runs) / len(runs)
    return (
        f"| {name} | {_fmt_seconds(bound)} | {_hours(total_timeout)} | {stages} | {done_in} | {hand_overs} "
        f"| {_fmt_seconds(makespan)} ({makespan:.0f} s) | {ratio:.3f} | {cost} | {lambda_seconds:.0f} "
        f"| {sum(run.invocations for run in runs)} | {goal} |"
    )


def _loss_row(name: str, lost: Losses) -> str:
    pauses = lost.pauses
    if pauses:
        per = (
            f"{sum(p.pause for p in pauses) / len(pauses):.0f} s / "
            f"{sum(p.next_on_event for p in pauses) / len(pauses):.1f} s / "
            f"{sum(p.idle_slot_seconds for p in pauses) / len(pauses):.1f}"
        )
    else:
        per = "-"
    return (
        f"| {name} | {lost.makespan - lost.bound:.1f} | {lost.start:.1f} | {lost.hand_overs:.1f} "
        f"| {lost.between:.1f} | {lost.last_round:.1f} | {lost.report:.1f} | {per} |"
    )


def stages_markdown(
    staged: list[Result], lifted: dict[str, Result], scaled: list[scale.ScaleResult]
) -> list[str]:
    """The section on cleanups longer than an hour: one destroy, stage after stage."""
    staged_scaled = [r for r in scaled if r.stages > 1]
    rows = [
        _staged_row(
            r.scenario.name,
            r.bound,
            r.makespan,
            r.total_timeout or 0.0,
            r.runs,
            not r.failures and not r.jobs_left,
            losses(r),
            lifted[r.scenario.name].makespan if r.scenario.name in lifted else None,
        )
        for r in staged
    ]
    rows += [
        _staged_row(
            f"{r.name}, in the {scale.ACCOUNT_JOBS:,}-job account",
            r.bound,
            r.makespan,
            r.total_timeout,
            [r.run],
            r.finished,
            r.losses(),
            None,
        )
        for r in staged_scaled
    ]
    loss_rows = [_loss_row(r.scenario.name, losses(r)) for r in staged]
    loss_rows += [
        _loss_row(f"{r.name}, in the {scale.ACCOUNT_JOBS:,}-job account", r.losses()) for r in staged_scaled
    ]
    return [
        "## Beyond one hour: one destroy, stage after stage",
        "",
        _paragraph(
            f"""A cleanup whose total_timeout exceeds an hour is one custom resource per hour, its
            stages, which CloudFormation deletes one after another; each stage's Delete carries the
            cleanup's properties plus Cleanup, Stage, Stages and its own TotalTimeoutSeconds (3600, the
            last the rest), under its own Provider waiter (every 10 s, an hour at most). Every cleanup
            here gets total_timeout = its bound x {HEADROOM:g} rounded up to whole hours (at most 24),
            and its stages run on the same simulated clock, CloudFormation's step from one stage's
            completion to the next stage's Delete taken as {STAGE_GAP_SECONDS:g} s (a constant, not
            measured). A stage that is not the last hands over when its time runs out (30 s before its
            hour: the report margin); the deletions under way go on in IoT and the next stage's
            on_event finds them. The makespan runs from stage 1's Delete to the last stage's
            completion: hand-overs and the stages after the one that finished are in it. Goal: within
            {STAGED_GOAL:.2f} of the bound."""
        ),
        "",
        _paragraph(
            """Columns: stages is how many each resource's cleanup has (each runs: a stage whose
            cleanup is done completes at once); done in is the stage during which the last job was
            gone; hand-overs are counted over all resources (K = 5: each resource hands over once);
            one resource, cap lifted is the same cleanup run as a single resource with no time limit,
            and what the stages cost against it (not run for the 10,000-job account); Lambda s and
            invocations are every stage's."""
        ),
        "",
        "| scenario | bound | total_timeout | stages | done in stage | hand-overs | makespan "
        "| makespan/bound | one resource, cap lifted | Lambda s per cleanup | invocations | goal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "### Where the time goes",
        "",
        _paragraph(
            """makespan - bound, in seconds, split exactly: the IoT slots' idle time (free slot-seconds
            divided by the free slots) before the first deletion (stage 1's on_event: the stack's
            status and one DescribeJob per named job), at hand-overs (from a stage's end to the next
            stage's first DeleteJob: CloudFormation's step, then the next stage's on_event looking at
            every named job again), between (every other moment a job waited while a slot was free: the
            poll grid, the waiter's pauses between invocations), in the last round (the last deletion
            started, nothing left to start), and after the last job was gone (the final look at every
            named job, and every stage after the one that finished: its on_event and final look). Per
            hand-over, averaged: how long after the stage's end the next started a deletion (the slots
            stay busy meanwhile, so most of it costs nothing), the next stage's on_event, and the
            free slot-seconds over that pause."""
        ),
        "",
        "| scenario | makespan - bound | before the first deletion | at hand-overs | between | last round "
        "| after the last job gone | per hand-over: until a deletion / on_event / idle slot-s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *loss_rows,
        "",
    ]


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (ours, both) = plt.subplots(1, 2, figsize=(11, 4.5))
    deletions = ((30.0, "30 s"), (120.0, "2 min"), (600.0, "10 min"), (None, "mix"))

    def series(contender: str, deletion: float | None) -> tuple[list[int], list[float]]:
        points = sorted(
            (r.scenario.jobs_per_resource, r.ratio)
            for r in results
            if r.contender == contender
            and r.scenario.deletion == deletion
            and r.scenario.resources == 1
            and not r.scenario.outside_slots
        )
        return [n for n, _ in points], [ratio for _, ratio in points]

    for deletion, label in deletions:
        ours.plot(*series("handler", deletion), "-o", label=f"T={label}")
        both.plot(*series("handler", deletion), "-o", label=f"handler, T={label}")
        both.plot(*series("sequential", deletion), ":s", label=f"sequential, T={label}")
    for axis in (ours, both):
        axis.axhline(1.10, color="grey", linewidth=0.8, linestyle="--", label="1.10 target")
        axis.set_xscale("log")
        axis.set_xlabel("jobs in one resource (N)")
        axis.set_ylabel("makespan / bound")
    ours.set_ylim(0.98, 1.15)
    ours.set_title("our handler")
    both.set_yscale("log")
    both.set_title("handler against sequential")
    ours.legend(fontsize=8)
    both.legend(fontsize=7, ncol=2)
    figure.suptitle("IoT job cleanup: makespan against the 10-slot lower bound (one resource)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


POLL_WINDOWS = (0.0, 60.0, 300.0)
WINDOW_STUDY = ("N=100 T=30s", "N=100 T=2min", "N=100 T=10min", "K=5x40 T=2min")


def window_study(handler: object) -> str:
    """How long is_complete polls inside one invocation: Lambda seconds against latency."""
    rows = [
        "| poll window | scenario | makespan/bound | Lambda s per cleanup | invocations "
        "| calls/s per resource |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    chosen = {scenario.name: scenario for scenario in scenarios()}
    for window in POLL_WINDOWS:
        for name in WINDOW_STUDY:
            r = run_contender(chosen[name], "handler", handler, poll_window=window)
            lambda_seconds = sum(run.lambda_seconds for run in r.runs) / len(r.runs)
            rows.append(
                f"| {window:.0f} s | {name} | {r.ratio:.3f} | {lambda_seconds:.0f} "
                f"| {sum(run.invocations for run in r.runs)} | {r.calls_per_second_per_resource:.2f} |"
            )
    return "\n".join(rows) + "\n"


def _selected(name: str, only: str | None) -> bool:
    return not only or any(part in name for part in only.split("|"))


# --------------------------------------------------------------------------- instant calls, the calls budget


@dataclass(frozen=True)
class Measured:
    """One scenario our handler ran, as the summary sees it: its ratio and its calls budget."""

    name: str
    kind: str  # "scheduling", "selector" or "drain"
    ratio: float
    finished: bool  # every job gone, every resource reported complete
    average: float  # IoT calls per second over the cleanup, of the resource with the most
    peak: OperationPeak  # the most calls of one IoT operation in any one second, all resources

    @property
    def label(self) -> str:
        return f"selector: {self.name}" if self.kind == "selector" else self.name

    @property
    def problems(self) -> list[str]:
        return budget_problems(self.average, self.peak)


def measured(result: Result | scale.ScaleResult) -> Measured:
    if isinstance(result, Result):
        return Measured(
            result.scenario.name,
            "scheduling",
            result.ratio,
            not result.failures and not result.jobs_left,
            result.calls_per_second_per_resource,
            result.operation_peak,
        )
    return Measured(
        result.name,
        result.kind,
        result.ratio,
        result.finished,
        result.calls_per_second,
        result.operation_peak,
    )


def _calls(latency: float) -> str:
    return f"{latency * 1000:g} ms calls" if latency else "instant calls"


def _budget_verdict(m: Measured) -> str:
    return f"**breaks**: {'; '.join(m.problems)}" if m.problems else "within"


def _peak(m: Measured) -> str:
    return f"{m.peak} at {_fmt_seconds(m.peak.at)}" if m.peak.operation else str(m.peak)


def _ratio(m: Measured) -> str:
    return f"{m.ratio:.3f}" if m.finished else f"{m.ratio:.3f} (not finished)"


def budget_markdown(measures: Sequence[Measured], instant: Sequence[Measured]) -> list[str]:
    """The section on instant calls and the calls budget: every scenario our handler ran."""
    twins = {m.name: m for m in instant}
    rows = []
    for m in measures:
        twin = twins.get(m.name)
        theirs = (
            f"{_ratio(twin)} | {twin.ratio - m.ratio:+.3f} | {twin.average:.2f} | {_peak(twin)} "
            f"| {_budget_verdict(twin)}"
            if twin
            else "not run | - | - | - | -"
        )
        rows.append(
            f"| {m.label} | {_ratio(m)} | {m.average:.2f} | {_peak(m)} | {_budget_verdict(m)} | {theirs} |"
        )
    lines = [
        "## Instant calls and the calls budget",
        "",
        _paragraph(
            f"""Every scenario our handler ran above, run once more with instant calls (latency 0:
            the same jobs, seeds, stages and rate limits), beside the run with {_calls(LATENCY)}: what
            the calls' own time adds to makespan - bound. Each run is held to the calls budget (issue
            16): a resource makes on average at most {AVERAGE_BUDGET:g} IoT calls per second over its
            cleanup (**calls/s per resource**: its calls over its makespan, stages and hand-overs
            included, the resource with the most), and the account never sees more than
            {OPERATION_BUDGET} calls of one IoT operation in any one second, IoT's published rate per
            operation and account (**peak of one operation in 1 s**: the most calls of one operation
            within any sliding 1-second window [t, t + 1 s), over all resources, the operation
            named, and when that second began from the cleanup's start). Every call counts, a throttled
            one too; GetResources, the tagging API's, is left out. The scheduling scenarios have no
            rate limit; the selectors and drains run under IoT's {scale.RATE_LIMIT:g} per second per
            operation, a token bucket a second deep, which can admit up to twice that within one
            sliding second (a full bucket, then its refill) before it answers ThrottlingException
            (their throttled column). With instant calls only the handler's own pauses space its
            calls out. The goal columns of the sections
            above are their own (issue 8's, the drain's); this budget is issue 16's, and [Every
            scenario](#every-scenario) sums it up."""
        ),
        "",
        f"| scenario | makespan/bound, {_calls(LATENCY)} | calls/s per resource "
        "| peak of one operation in 1 s | calls budget | makespan/bound, instant calls | instant - 50 ms "
        "| calls/s per resource, instant "
        "| peak of one operation in 1 s, instant | calls budget, instant |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---|",
        *rows,
        "",
    ]
    return lines


def budget_line(measures: Sequence[Measured], latency: float) -> str:
    """Which scenarios break the calls budget, and by how much at most."""
    breaking = [m for m in measures if m.problems]
    over_average = [m for m in measures if m.average > AVERAGE_BUDGET]
    over_peak = [m for m in measures if m.peak.calls > OPERATION_BUDGET]
    top_average = max(measures, key=lambda m: m.average)
    top_peak = max(measures, key=lambda m: m.peak.calls)
    averages = (
        " and ".join(f"{m.name}: {m.average:.2f}" for m in over_average)
        if 0 < len(over_average) <= 3
        else f"highest {top_average.average:.2f}: {top_average.name}"
    )
    return (
        f"calls budget with {_calls(latency)}: {len(breaking)} of {len(measures)} scenarios break it; "
        f"average over {AVERAGE_BUDGET:g} calls/s per resource: {len(over_average)} ({averages}); "
        f"over {OPERATION_BUDGET} of one operation in 1 s: {len(over_peak)} "
        f"(highest {top_peak.peak}: {top_peak.name})"
    )


def _worst(measures: Sequence[Measured], latency: float, *, complete: bool) -> str:
    worst = max(measures, key=lambda m: m.ratio)
    unfinished = [m.name for m in measures if not m.finished]
    covers = f"all {len(measures)} scenarios" if complete else f"the {len(measures)} scenarios run"
    note = f"{covers}, worst: {worst.name}"
    if unfinished:
        note += (
            f"; {len(unfinished)} did not finish (failed at their total timeout, their "
            f"ratio a lower bound): {', '.join(unfinished)}"
        )
    return f"{worst.ratio:.3f} with {_calls(latency)} ({note})"


def worst_line(measures: Sequence[Measured], instant: Sequence[Measured] = (), *, complete: bool) -> str:
    """The last line: the worst makespan/bound over every scenario the handler ran, with
    50 ms calls and, if they ran, with instant calls."""
    parts = [_worst(measures, LATENCY, complete=complete)]
    if instant:
        parts.append(_worst(instant, 0.0, complete=complete))
    return "worst makespan/bound: " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run only scenarios whose name contains this text (or any of a|b)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md and the plot")
    parser.add_argument(
        "--no-instant",
        action="store_true",
        help="skip the handler's second run of each scenario with instant calls",
    )
    args = parser.parse_args(argv)
    import iot_job_cleanup_handler as handler

    # The handler's retries under throttling log warnings; the tables count them instead.
    logging.getLogger("iot_job_cleanup").addHandler(logging.NullHandler())

    results = []
    for scenario in scenarios():
        if not _selected(scenario.name, args.only):
            continue
        for contender in args.contenders.split(","):
            result = run_contender(scenario, contender, handler)
            results.append(result)
            print(
                f"{scenario.name:<30} {contender:<10} makespan {_fmt_seconds(result.makespan):>9} "
                f"bound {_fmt_seconds(result.bound):>9} ratio {result.ratio:7.3f} "
                f"calls/job {result.calls / result.jobs:5.1f} left {result.jobs_left:3d} "
                + (
                    f"stages {result.stages} hand-overs {result.hand_overs} "
                    if contender == "handler"
                    else ""
                )
                + f"({result.wall_seconds:.1f} s)",
                flush=True,
            )
    lifted: dict[str, Result] = {}
    for result in results:  # what the stages cost: the same cleanup as one resource, no cap
        if result.contender == "handler" and result.staged:
            twin = run_contender(result.scenario, "handler", handler, cap_lifted=True)
            lifted[result.scenario.name] = twin
            print(
                f"{result.scenario.name:<30} {'one resource, cap lifted':<35} ratio {twin.ratio:7.3f}; "
                f"staged {result.ratio:7.3f} ({result.makespan - twin.makespan:+.0f} s) "
                f"({twin.wall_seconds:.1f} s)",
                flush=True,
            )
    scaled: list[scale.ScaleResult] = []
    rerun: dict[str, Callable[..., scale.ScaleResult]] = {}
    if "handler" in args.contenders.split(","):
        runs = [(s.name, partial(scale.run_selector, s, handler)) for s in scale.SELECTORS]
        runs += [(d.name, partial(scale.run_drain, d, handler)) for d in scale.DRAINS]
        for name, run in runs:
            if not _selected(name, args.only):
                continue
            began = time.perf_counter()
            r = run()
            scaled.append(r)
            rerun[name] = run
            print(
                f"{name:<45} makespan {_fmt_seconds(r.makespan):>9} bound {_fmt_seconds(r.bound):>9} "
                f"ratio {r.ratio:7.3f} IoT calls/s {r.calls_per_second:5.2f} throttled {r.throttled:4d} "
                f"discovery {r.discovery_calls:6d} left {r.ours_left:3d} bystanders touched "
                f"{len(r.bystanders_touched)} {'finished' if r.finished else 'NOT FINISHED'} "
                f"stages {r.stages} hand-overs {r.hand_overs} ({time.perf_counter() - began:.1f} s)",
                flush=True,
            )
    ours = [r for r in results if r.contender == "handler"]
    measures = [measured(r) for r in [*ours, *scaled]]
    instant: list[Measured] = []
    if not args.no_instant:  # the handler once more on every scenario it ran, calls taking no time
        for result in ours:
            twin = run_contender(result.scenario, "handler", handler, latency=0.0)
            instant.append(measured(twin))
            _print_instant(instant[-1], result.ratio, twin.wall_seconds)
        for r in scaled:
            began = time.perf_counter()
            instant.append(measured(rerun[r.name](latency=0.0)))
            _print_instant(instant[-1], r.ratio, time.perf_counter() - began)
    complete = not args.only and args.contenders == ",".join(CONTENDERS) and not args.no_instant
    if complete and not args.no_write:  # a partial run never overwrites the full results
        (HERE / "RESULTS.md").write_text(
            results_markdown(results, window_study(handler), scaled, lifted, instant)
        )
        plot(results, HERE / "makespan_vs_bound.png")
    if measures:
        print(budget_line(measures, LATENCY))
        if instant:
            print(budget_line(instant, 0.0))
        print(worst_line(measures, instant, complete=complete))
    return 0


def _print_instant(m: Measured, ratio: float, wall: float) -> None:
    print(
        f"{m.name:<45} instant calls  ratio {m.ratio:7.3f} (with {_calls(LATENCY)} {ratio:.3f}) "
        f"calls/s per resource {m.average:5.2f} peak {m.peak!s:<18} "
        f"{'finished' if m.finished else 'NOT FINISHED'} ({wall:.1f} s)",
        flush=True,
    )


def results_markdown(
    results: list[Result],
    windows: str,
    scaled: list[scale.ScaleResult],
    lifted: dict[str, Result] | None = None,
    instant: Sequence[Measured] = (),
) -> str:
    ours = [r for r in results if r.contender == "handler"]
    measures = [measured(r) for r in [*ours, *scaled]]
    twins = {m.name: m for m in instant}
    worst = max(ours, key=lambda r: r.ratio) if ours else None
    worst_instant = max(
        (twins[r.scenario.name] for r in ours if r.scenario.name in twins),
        key=lambda m: m.ratio,
        default=None,
    )
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (benchmarks/run.py); rerun it to reproduce. Simulated time: each IoT",
        "call takes 50 ms, deletions take T, 10 slots per account and region, the Provider calls",
        "`is_complete` every 10 s. Our handler's cleanup gets total_timeout = its bound plus 10 %, in",
        "whole hours: ⏱ marks scenarios whose bound exceeds CloudFormation's 1-hour cap for a custom",
        "resource, which one `cdk destroy` runs through stages, one resource per hour (stages and",
        "hand-overs in their column; [Beyond one hour](#beyond-one-hour-one-destroy-stage-after-stage)",
        "says what they cost).",
        "",
        "- **handler**: lambda/iot_job_cleanup_handler/, through on_event / is_complete.",
        "- **sequential**: delete a job, poll DescribeJob every 10 s until it is gone, then the next.",
        "- **one-shot**: one DeleteJob per job, all at once, each with botocore's standard retries (3",
        "  attempts), as one AwsCustomResource per job would; it reports success when the calls return.",
        "  Its makespan is when it reported; `left behind` counts jobs still there at that moment.",
        "",
        _paragraph(
            f"""Columns: IoT calls/job over all calls; peak calls/s over all resources, every operation,
            in one second of the clock; calls/s per resource is the highest of any resource over its own
            run (the calls budget allows {AVERAGE_BUDGET:g} on average); peak of one operation in 1 s is
            the most calls of one IoT operation within any sliding 1-second window, over all resources
            (the budget allows {OPERATION_BUDGET}, IoT's published rate per operation); Lambda s per
            cleanup is the handlers' busy time per resource; longest slot wait is the longest time a
            resource started no deletion; resources done gives when the first and the last of several
            resources finished. These scenarios have no API rate limit and no other jobs in the account;
            the two sections after the polling window have both. [Instant calls and the calls
            budget](#instant-calls-and-the-calls-budget) runs each of our handler's scenarios once more
            with calls taking no time, and says which break the budget."""
        ),
        "",
        table(results),
    ]
    if worst:
        also = (
            f"; with instant calls **{worst_instant.ratio:.3f}** ({worst_instant.name})"
            if worst_instant
            else ""
        )
        lines.append(
            f"Worst makespan/bound of the handler here: **{worst.ratio:.3f}** with {_calls(LATENCY)} "
            f"({worst.scenario.name}){also}."
        )
        lines.append("")
    lines.append("![makespan/bound against N](makespan_vs_bound.png)\n")
    staged = [r for r in ours if r.staged]
    if staged or any(r.stages > 1 for r in scaled):
        lines += stages_markdown(staged, lifted or {}, scaled)
    lines += [
        "## The polling window: Lambda seconds against latency",
        "",
        "`is_complete` polls inside one invocation for up to the window (300 s as deployed), so a",
        "freed slot is reused within seconds; with a window of 0 it looks once and returns, and",
        "the waiter calls it again a query interval (10 s) later.",
        "",
        windows,
    ]
    selectors = [r for r in scaled if r.kind == "selector"]
    drains = [r for r in scaled if r.kind == "drain"]
    if selectors:
        lines += selectors_markdown(selectors)
    if drains:
        lines += drains_markdown(drains)
    if measures:
        lines += budget_markdown(measures, instant)
    lines += [
        "## Every scenario",
        "",
        f"`{budget_line(measures, LATENCY)}`",
        "",
        *([f"`{budget_line(instant, 0.0)}`", ""] if instant else []),
        f"`{worst_line(measures, instant, complete=True)}`",
        "",
    ]
    return "\n".join(lines)


def _paragraph(text: str, indent: str = "") -> str:
    return textwrap.fill(" ".join(text.split()), width=96, subsequent_indent=indent)


def selectors_markdown(results: list[scale.ScaleResult]) -> list[str]:
    from iot_job_cleanup_handler import aws

    pace = float(getattr(aws, "DISCOVERY_CALL_INTERVAL", 1 / scale.RATE_LIMIT))  # the handler's own
    ref = scale.reference(results)
    passing = [r.name for r in results if not scale.goal_problems(r, results)]
    failing = [r for r in results if scale.goal_problems(r, results)]
    bound = scale.OURS * scale.DELETION_SECONDS / scale.SLOTS
    total = cleanup_total_timeout(bound)
    verdict = f"**Verdict**: {len(passing)} of {len(results)} meet the goal" + (
        f" ({', '.join(passing)})" if passing else ""
    )
    if failing:
        verdict += "; " + "; ".join(
            f"{r.name}: {'; '.join(scale.goal_problems(r, results))}" for r in failing
        )
    lines = [
        f"## Selectors in a {scale.ACCOUNT_JOBS:,}-job account",
        "",
        _paragraph(
            f"""One cleanup of {scale.OURS} jobs in an account of {scale.ACCOUNT_JOBS:,}, selected each
            way the resource allows (benchmarks/scale.py). Deletions take {scale.DELETION_SECONDS:.0f} s,
            the middle of the mix above: with 10 slots one frees every
            {scale.DELETION_SECONDS / scale.SLOTS:.0f} s on average, which is the time discovery has to
            find each next job. bound = {scale.OURS} x {scale.DELETION_SECONDS:.0f} s / {scale.SLOTS} =
            {bound:,.0f} s. Each cleanup runs as above: total_timeout {_hours(total)} (the bound plus
            10 %, in whole hours), so one destroy through {len(stage_timeouts(total))} stages; one not
            done by then fails in its last stage and is counted as not finished."""
        ),
        "",
        _paragraph(
            f"""- **Rate limits**: every IoT operation admits {scale.RATE_LIMIT:g} requests per second for
            the account and answers ThrottlingException past that (the handler backs off and retries).
            {scale.RATE_LIMIT:g}/s is **the last published figure (IoT's 2020 table); it may be
            outdated**.""",
            "  ",
        ),
        _paragraph(
            f"""- **The account**: the jobs were created a day before the teardown, in a shuffled order,
            so the cleanup's jobs are spread over the listing. Ours: `fleet-ota-NNNN`, tags stack=fleet
            and team=firmware, targeting the thing group `fleet`; {scale.OURS // 25} of them SCHEDULED
            (ListJobs by thing group leaves SCHEDULED jobs out, aws-cli#8924), the rest COMPLETED or
            CANCELED. Bystanders match each filter in part: {scale.OURS} `fleet-canary-NNNN` (the
            `fleet-` prefix, team=qa, group `canary`), {scale.ACCOUNT_JOBS // 5:,} `ota-NNNNN` with
            team=firmware in regional groups, the rest other stacks' tags or none; every 40th bystander
            is SCHEDULED, a tenth IN_PROGRESS (continuous jobs), a tenth CANCELED.""",
            "  ",
        ),
        _paragraph(
            f"""- **Selectors**: named ids (the same {scale.OURS} jobs in JobIds: the baseline); JobTags
            stack=fleet with the Resource Groups Tagging API serving IoT jobs, and answering nothing (as
            moto's does; whether it serves IoT jobs is unconfirmed), when each candidate's tags are read
            with ListTagsForResource; ThingGroupNames fleet; JobIdPrefix `fleet-ota-`; JobTags
            team=firmware AND JobIdPrefix `fleet-`, the tagging API answering nothing ({2 * scale.OURS:,}
            candidates by prefix, {scale.OURS} of them with the tag). Force is "true" for all: the
            SCHEDULED jobs among ours need it.""",
            "  ",
        ),
        _paragraph(
            """- **Columns**: discovery calls are the calls only discovery makes: its ListJobs pages
            (every listing but the DELETION_IN_PROGRESS status poll), ListTagsForResource, GetResources,
            and DescribeJob of jobs that are not ours (a SCHEDULED job's targets); the share is of all
            calls. DescribeJob counts every one, of jobs not ours in brackets. Last job gone is when the
            last deletion of ours ended; the makespan is when the resource reported complete. IoT
            calls/s is over the makespan (GetResources, the tagging API's, left out). Bystanders
            touched counts jobs not ours deleted or no longer in their status (must be 0).""",
            "  ",
        ),
        "",
        _paragraph(
            f"""**Goal** (issue 8): discovery adds at most 5 % to the makespan of the same {scale.OURS}
            jobs named by id, and a resource averages at most {scale.GOAL_CALLS_PER_SECOND:g} IoT calls
            per second over its cleanup. The reference is """
            + (ref[1] + "." if ref else "missing: the named baseline left jobs behind.")
        ),
        "",
        scale.selector_table(results),
        _paragraph(verdict + "."),
        "",
    ]
    fallback = next((r for r in results if r.name == scale.SELECTORS[2].name), None)
    if fallback is not None:
        candidates = scale.ACCOUNT_JOBS
        lines += [
            _paragraph(
                f"""Tags with the tagging API answering nothing need one ListTagsForResource per
                candidate job: {candidates:,} in this account. At the handler's pace (one call every
                {pace:g} s per operation) the first walk takes {candidates * pace:,.0f} s, more than one
                Lambda invocation lasts; deletions start as matches turn up, and the tags read are kept
                while the container stays warm (keyed by job ARN and creation time), so later walks
                read only new jobs' tags. This benchmark's container stays warm for the whole cleanup;
                a cold start reads them again. Measured: {fallback.count(scale.TAGS):,}
                ListTagsForResource calls, {len(fallback.ours) - fallback.ours_left} of
                {len(fallback.ours)} jobs deleted by {fallback.makespan:,.0f} s, on time, but those reads
                alone are {fallback.count(scale.TAGS) / fallback.makespan:.2f} calls per second over
                the cleanup. With a prefix, only the prefix's candidates have their tags read (the tags
                + prefix row); a thing group, a prefix alone, or a tagging API that serves IoT jobs
                read no tags job by job."""
            ),
            "",
        ]
    return lines


def drains_markdown(results: list[scale.ScaleResult]) -> list[str]:
    return [
        "## Drain",
        "",
        _paragraph(
            f"""Named jobs, some IN_PROGRESS whose devices finish at seeded times 1 to 9 minutes after
            the teardown begins, the rest COMPLETED; DrainSeconds 600, Force "false", deletions of
            {scale.DELETION_SECONDS:.0f} s, the same {scale.RATE_LIMIT:g} requests per second per
            operation. The handler cancels the running jobs (CancelJob, without force), waits for their
            devices, then deletes them; terminal jobs should keep the slots busy meanwhile. The bound
            now includes the drain: no cleanup ends before the latest of (devices done + deletion time)
            over the drained jobs (**drain**), nor before, for any moment r, r + the deletion time of
            the jobs ready only at r or later / {scale.SLOTS} slots (**slots**; r = 0 gives the slot
            bound of all the jobs). Goal: within {scale.DRAIN_TARGET:.2f} of the bound (the scheduling
            target), at most {scale.GOAL_CALLS_PER_SECOND:g} IoT calls per second."""
        ),
        "",
        scale.drain_table(results),
    ]


if __name__ == "__main__":
    sys.exit(main())
