"""Selectors at scale, and drain (`make bench`, after the scheduling scenarios).

**Selectors**: one cleanup of 500 jobs in an account of 10,000; the other 9,500 are
bystanders that must stay as they are. The same 500 jobs are selected each way the
resource allows: named by id (the baseline), by tags (with the Resource Groups Tagging
API serving IoT jobs, and answering nothing, so that each candidate's tags are read with
ListTagsForResource), by thing group (some of them SCHEDULED, which IoT's
ListJobs(thingGroupName) leaves out), by id prefix, and by tags AND prefix. Every IoT
operation admits 10 requests per second for the account (IoT's last published figure, its
2020 table, may be outdated) and answers ThrottlingException past that.

**Drain**: named jobs, some IN_PROGRESS whose devices finish over the first minutes, the
rest terminal; DrainSeconds 600 without force: running jobs are cancelled, waited for, then
deleted. The bound adds the drain: no cleanup ends before any drained job's devices finish
plus its deletion time, nor before the work released after any moment fits through the
slots after that moment.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moto.iot.models import IoTBackend

from benchmarks.simulation import (
    STATUS_POLL,
    Losses,
    OperationPeak,
    ResourceRun,
    SimTime,
    cleanup_losses,
    cleanup_total_timeout,
    counting_tagging,
    peak_per_operation,
    run_handler,
)
from iot_job_cleanup.cfn import OFFLINE_ACCOUNT, OFFLINE_REGION
from iot_job_cleanup.emulator import DeletionLifecycle, DeletionTime

ACCOUNT, REGION = OFFLINE_ACCOUNT, OFFLINE_REGION
ACCOUNT_JOBS = 10_000
OURS = 500
SLOTS = 10
# Two minutes per deletion: the middle of the mix the scheduling scenarios use (a job with
# four executions at 30 s each). With 10 slots a slot frees every 12 s on average, so
# discovery has 12 s to find each next job; 500 jobs give a bound of 500 x 120 / 10 = 6,000 s.
DELETION_SECONDS = 120.0
RATE_LIMIT = 10.0  # requests per second per operation and account: IoT's 2020 table
CREATED_BEFORE = 86_400.0  # the account's jobs were created a day before the teardown
# Each cleanup gets the total timeout the scheduling scenarios' do (simulation.HEADROOM): its
# bound plus 10 %, in whole hours, one stage per hour. A selector not done by then fails there
# (its last stage), and a selector that slow fails the goal whatever the exact figure.
LATENCY = 0.05  # each call's round trip; 0 for the instant-call runs
GOAL_OVER_NAMED = 1.05  # discovery adds at most 5 % to the named baseline's makespan
GOAL_CALLS_PER_SECOND = 2.0
DRAIN_TARGET = 1.10  # makespan/bound: the scheduling target (the plot's dashed line)

# The operations discovery makes, by the CallLog's names.
LISTINGS = "list_jobs"
TAGS = "list_tags_for_resource"
TAGGING = "get_resources"


def _group(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{name}"


def _thing(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"


# --------------------------------------------------------------------------- the account


@dataclass
class Account:
    """A populated IoT account: the cleanup's jobs and everyone else's."""

    lifecycle: DeletionLifecycle
    ours: list[str]  # in creation order of their ids (the order JobIds names them)
    bystanders: dict[str, str]  # job id -> status before the cleanup
    running_finish_at: dict[str, float] = field(default_factory=dict)  # ours: devices done at

    def ours_left(self) -> int:
        self.lifecycle.settle()
        return sum(1 for job_id in self.ours if self.lifecycle.exists(job_id))

    def bystanders_touched(self) -> list[str]:
        """Bystanders deleted, being deleted, or no longer in the status they had."""
        jobs = self.lifecycle.snapshot()
        return sorted(
            job_id
            for job_id, status in self.bystanders.items()
            if job_id not in jobs or jobs[job_id].status != status
        )


def _bystander_status(index: int) -> str:
    if index % 40 == 0:
        return "SCHEDULED"
    if index % 10 == 1:
        return "IN_PROGRESS"  # a continuous job, devices at work for good
    if index % 10 == 2:
        return "CANCELED"
    return "COMPLETED"


def populate(
    sim: SimTime, *, jobs: int = ACCOUNT_JOBS, ours: int = OURS, seed: int = 11, rate_limit: float | None
) -> Account:
    """An account of ``jobs`` jobs in a shuffled creation order, ``ours`` of them the cleanup's.

    Ours: ``fleet-ota-NNNN``, tags stack=fleet and team=firmware, targeting the thing group
    ``fleet``; every 25th SCHEDULED, every 7th CANCELED, the rest COMPLETED. Bystanders, so
    that each filter alone also matches jobs that are not ours:
    as many ``fleet-canary-NNNN`` (the prefix ``fleet-``; stack=canary, team=qa; group
    ``canary``), a fifth ``ota-NNNNN`` (team=firmware too; regional groups), the rest
    ``job-NNNNN`` (other stacks' tags or none; regional groups or single things). Every 40th
    bystander is SCHEDULED, a tenth IN_PROGRESS, a tenth CANCELED.
    """
    lifecycle = DeletionLifecycle(
        backend=IoTBackend(REGION, ACCOUNT),
        clock=sim.now,
        deletion_time=DeletionTime(base_seconds=DELETION_SECONDS),
        rate_limit=rate_limit,
    )
    specs: list[tuple[str, list[str], dict[str, str], str]] = []
    for i in range(ours):
        status = "SCHEDULED" if i % 25 == 0 else "CANCELED" if i % 7 == 0 else "COMPLETED"
        specs.append(
            (f"fleet-ota-{i:04d}", [_group("fleet")], {"stack": "fleet", "team": "firmware"}, status)
        )
    canaries, otas = ours, jobs // 5
    others = jobs - ours - canaries - otas
    bystanders: list[tuple[str, list[str], dict[str, str]]] = []
    bystanders += [
        (f"fleet-canary-{i:04d}", [_group("canary")], {"stack": "canary", "team": "qa"})
        for i in range(canaries)
    ]
    bystanders += [
        (f"ota-{i:05d}", [_group(f"region-{i % 12}")], {"stack": f"ota-{i % 40}", "team": "firmware"})
        for i in range(otas)
    ]
    bystanders += [
        (
            f"job-{i:05d}",
            [_group(f"region-{i % 12}")] if i % 2 else [_thing(f"device-{i}")],
            {"stack": f"app-{i % 90}"} if i % 3 else {},
        )
        for i in range(others)
    ]
    specs += [
        (job_id, targets, tags, _bystander_status(n)) for n, (job_id, targets, tags) in enumerate(bystanders)
    ]
    random.Random(seed).shuffle(specs)
    lifecycle.clock = lambda: sim.now() - CREATED_BEFORE  # created a day ago
    try:
        for job_id, targets, tags, status in specs:
            lifecycle.create_job(job_id, targets=targets, tags=tags, status=status)
    finally:
        lifecycle.clock = sim.now
    return Account(
        lifecycle,
        ours=sorted(job_id for job_id, *_ in specs if job_id.startswith("fleet-ota-")),
        bystanders={job_id: status for job_id, _, _, status in specs if not job_id.startswith("fleet-ota-")},
    )


# --------------------------------------------------------------------------- results


@dataclass
class ScaleResult:
    """One cleanup resource in a populated account: what it cost and how long it took."""

    name: str
    kind: str  # "selector" or "drain"
    bound: float
    run: ResourceRun
    ours: list[str]
    ours_left: int
    bystanders_touched: list[str]
    wall_seconds: float
    all_gone_at: float  # when the last of its jobs was gone, from the start (inf if some are left)
    bound_parts: dict[str, float] = field(default_factory=dict)
    total_timeout: float = 0.0  # the cleanup's: one stage per hour
    deletions: dict[str, tuple[float, float]] = field(default_factory=dict)  # ours: started, seconds
    latency: float = LATENCY

    @property
    def stages(self) -> int:
        return len(self.run.stages)

    @property
    def hand_overs(self) -> int:
        return self.run.hand_overs

    def losses(self) -> Losses:
        """Where its time beyond the bound went (the slot bound; drain's release times aside)."""
        return cleanup_losses([self.run], self.deletions, SLOTS, self.bound, self.makespan)

    @property
    def makespan(self) -> float:
        return (self.run.finished or 0.0) - self.run.started

    @property
    def ratio(self) -> float:
        return self.makespan / self.bound

    @property
    def finished(self) -> bool:
        return not self.run.failure and self.ours_left == 0

    def count(self, operation: str, *, listing: str | None = None, ours: bool | None = None) -> int:
        ids = set(self.ours)
        return sum(
            1
            for call in self.run.log.calls
            if call.operation == operation
            and (listing is None or (call.detail == STATUS_POLL) == (listing == STATUS_POLL))
            and (ours is None or (call.detail in ids) == ours)
        )

    @property
    def listing_pages(self) -> int:
        """Discovery's ListJobs pages: every listing but the status poll."""
        return self.count(LISTINGS, listing="discovery")

    @property
    def discovery_calls(self) -> int:
        """Calls only discovery makes: listing pages, tag reads, the tagging API, and
        DescribeJob of jobs that are not ours (SCHEDULED jobs' targets, deletions found)."""
        return (
            self.listing_pages
            + self.count(TAGS)
            + self.count(TAGGING)
            + self.count("describe_job", ours=False)
        )

    @property
    def calls(self) -> int:
        return self.run.log.count()

    @property
    def iot_calls(self) -> int:
        return self.calls - self.count(TAGGING)

    @property
    def calls_per_second(self) -> float:
        """IoT calls per second over the cleanup (GetResources is the tagging API's)."""
        return self.iot_calls / max(self.makespan, 1e-9)

    @property
    def throttled(self) -> int:
        return self.run.log.answered("ThrottlingException")

    @property
    def operation_peak(self) -> OperationPeak:
        """The most calls of one IoT operation in any one second (GetResources left out)."""
        return peak_per_operation([self.run.log], exclude=(TAGGING,))


def run_resource(
    account: Account,
    sim: SimTime,
    handler: Any,
    *,
    name: str,
    kind: str,
    properties: Mapping[str, Any],
    bound: float,
    tagging_serves_iot_jobs: bool | None,
    bound_parts: Mapping[str, float] | None = None,
    seed: int = 7,
    latency: float = LATENCY,
    deletion_seconds: float = DELETION_SECONDS,
) -> ScaleResult:
    """Run one cleanup resource through the Provider contract against the account."""
    run = ResourceRun(job_ids=list(account.ours))
    tagging = (
        None
        if tagging_serves_iot_jobs is None
        else counting_tagging(
            account.lifecycle, sim, run.log, latency, serves_iot_jobs=tagging_serves_iot_jobs
        )
    )
    timing = handler.Timing()  # as deployed; each stage's TotalTimeoutSeconds sets its hour
    total_timeout = cleanup_total_timeout(bound)
    began = time.perf_counter()
    sim.run(
        [
            lambda: run_handler(
                handler,
                account.lifecycle,
                sim,
                run,
                timing=timing,
                latency=latency,
                seed=seed,
                lambda_timeout=timing.poll_window + timing.query_interval + 60,
                total_timeout=total_timeout,
                properties=properties,
                tagging=tagging,
            )
        ]
    )
    wall = time.perf_counter() - began
    left = account.ours_left()
    started = account.lifecycle.deletion_started
    gone_at = max(started[job_id] + deletion_seconds for job_id in account.ours) if not left else float("inf")
    return ScaleResult(
        name,
        kind,
        bound,
        run,
        list(account.ours),
        left,
        account.bystanders_touched(),
        wall,
        gone_at - run.started,
        dict(bound_parts or {}),
        total_timeout,
        {job_id: (started[job_id], deletion_seconds) for job_id in account.ours if job_id in started},
        latency,
    )


# --------------------------------------------------------------------------- selectors


@dataclass(frozen=True)
class Selector:
    name: str
    filters: Mapping[str, Any]  # resource properties; none: the jobs named by id
    tagging_serves_iot_jobs: bool = False


SELECTORS = (
    Selector("named ids (baseline)", {}),
    Selector("tags, tagging API serves IoT jobs", {"JobTags": [{"Key": "stack", "Value": "fleet"}]}, True),
    Selector("tags, tagging API answers nothing", {"JobTags": [{"Key": "stack", "Value": "fleet"}]}),
    Selector("thing group", {"ThingGroupNames": ["fleet"]}),
    Selector("prefix", {"JobIdPrefix": "fleet-ota-"}),
    Selector(
        "tags + prefix, tagging API answers nothing",
        {"JobTags": [{"Key": "team", "Value": "firmware"}], "JobIdPrefix": "fleet-"},
    ),
)


def slot_bound(times: Sequence[float], slots: int = SLOTS) -> float:
    return max(max(times), sum(times) / slots)


def run_selector(
    selector: Selector,
    handler: Any,
    *,
    jobs: int = ACCOUNT_JOBS,
    ours: int = OURS,
    rate_limit: float | None = RATE_LIMIT,
    latency: float = LATENCY,
) -> ScaleResult:
    """The selector's cleanup in a freshly populated account. Force is on: the SCHEDULED
    jobs among ours can only be deleted with it (the same for every selector)."""
    sim = SimTime()
    account = populate(sim, jobs=jobs, ours=ours, rate_limit=rate_limit)
    properties = {**(selector.filters or {"JobIds": account.ours}), "Force": "true"}
    return run_resource(
        account,
        sim,
        handler,
        name=selector.name,
        kind="selector",
        properties=properties,
        bound=slot_bound([DELETION_SECONDS] * len(account.ours)),
        tagging_serves_iot_jobs=selector.tagging_serves_iot_jobs,
        latency=latency,
    )


# --------------------------------------------------------------------------- drain


@dataclass(frozen=True)
class Drain:
    name: str
    terminal: int
    running: int
    finish_within: tuple[float, float] = (60.0, 540.0)  # devices finish in this span, seconds
    drain_seconds: float = 600.0
    running_first: bool = True  # JobIds names the running jobs before the terminal ones
    by_prefix: bool = False  # selected by JobIdPrefix, not named: every job found by a walk
    slots_held: int = 0  # deletion slots other stacks hold for the whole run
    deletion_seconds: float = DELETION_SECONDS


DRAINS = (
    Drain("drain: 30 running listed first, 70 terminal", terminal=70, running=30),
    Drain("drain: 70 terminal, 30 running listed last", terminal=70, running=30, running_first=False),
    Drain("drain: 20 running listed first, 10 terminal", terminal=10, running=20),
    Drain(
        "drain: 40 running by prefix, 8 slots held, T=30s",
        terminal=0,
        running=40,
        finish_within=(60.0, 240.0),
        deletion_seconds=30.0,
        drain_seconds=300.0,
        by_prefix=True,
        slots_held=8,
    ),
)


def drain_bound(
    times: Mapping[str, float], ready_at: Mapping[str, float], slots: int = SLOTS
) -> dict[str, float]:
    """The lower bound with release times: a job's deletion starts once its devices are done.

    ``drain``: no drained job is gone before its devices finish plus its deletion time.
    ``slots``: for every moment r, the deletions of the jobs ready at r or later need
    r + their total time / slots (r = 0 is the slot bound of all the jobs).
    """
    releases = sorted({ready_at.get(job_id, 0.0) for job_id in times})
    return {
        "drain": max(ready_at.get(job_id, 0.0) + seconds for job_id, seconds in times.items()),
        "slots": max(
            r + sum(seconds for job_id, seconds in times.items() if ready_at.get(job_id, 0.0) >= r) / slots
            for r in releases
        ),
    }


def populate_drain(sim: SimTime, drain: Drain, *, seed: int = 13) -> Account:
    lifecycle = DeletionLifecycle(
        backend=IoTBackend(REGION, ACCOUNT),
        clock=sim.now,
        deletion_time=DeletionTime(base_seconds=drain.deletion_seconds),
        rate_limit=RATE_LIMIT,
    )
    rng = random.Random(seed)
    running = [f"rollout-running-{i:03d}" for i in range(drain.running)]
    terminal = [f"rollout-done-{i:03d}" for i in range(drain.terminal)]
    finish_at = {job_id: round(rng.uniform(*drain.finish_within)) for job_id in running}
    lifecycle.clock = lambda: sim.now() - CREATED_BEFORE
    try:
        for job_id in terminal:
            lifecycle.create_job(job_id, targets=[_group("fleet")], status="COMPLETED")
        for job_id in running:
            lifecycle.create_job(job_id, targets=[_group("fleet")], status="IN_PROGRESS")
    finally:
        lifecycle.clock = sim.now
    for job_id in running:  # devices at work now, done at their time
        lifecycle.set_status(job_id, "IN_PROGRESS", executions_finish_in=finish_at[job_id])
    if drain.slots_held:
        lifecycle.hold_slots(drain.slots_held, seconds=1e9)
    ours = [*running, *terminal] if drain.running_first else [*terminal, *running]
    return Account(lifecycle, ours=ours, bystanders={}, running_finish_at=finish_at)


def run_drain(drain: Drain, handler: Any, *, latency: float = LATENCY) -> ScaleResult:
    sim = SimTime()
    account = populate_drain(sim, drain)
    parts = drain_bound(
        {job_id: drain.deletion_seconds for job_id in account.ours},
        account.running_finish_at,
        slots=SLOTS - drain.slots_held,
    )
    selection = {"JobIdPrefix": "rollout-"} if drain.by_prefix else {"JobIds": account.ours}
    return run_resource(
        account,
        sim,
        handler,
        name=drain.name,
        kind="drain",
        properties={**selection, "Force": "false", "DrainSeconds": f"{drain.drain_seconds:g}"},
        bound=max(parts.values()),
        tagging_serves_iot_jobs=None,
        bound_parts=parts,
        latency=latency,
        deletion_seconds=drain.deletion_seconds,
    )


# --------------------------------------------------------------------------- reporting


def fmt_seconds(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def reference(results: Sequence[ScaleResult]) -> tuple[float, str] | None:
    """What discovery is held against: the named baseline's makespan; if the baseline did
    not finish, when its last job was gone (earlier, so a stricter reference)."""
    named = next((r for r in results if r.name == SELECTORS[0].name), None)
    if named is None or named.ours_left:
        return None
    if named.finished:
        return named.makespan, f"the named baseline's makespan, {named.makespan:.0f} s"
    return (
        named.all_gone_at,
        f"when the named baseline's last job was gone, {named.all_gone_at:.0f} s (it did not report "
        "complete, so its own makespan is no reference)",
    )


def goal_problems(result: ScaleResult, results: Sequence[ScaleResult]) -> list[str]:
    """Why a result misses its goal (none: it meets it). Every cleanup must finish and average
    at most 2 IoT calls per second; a selector at most 5 % over the reference, a drain within
    1.10 of its bound."""
    problems = []
    if result.ours_left:
        problems.append(f"did not finish ({result.ours_left} of {len(result.ours)} jobs left)")
    elif not result.finished:
        problems.append(f"never reported complete (its jobs all gone by {result.all_gone_at:.0f} s)")
    ref = reference(results)
    is_discovery = result.kind == "selector" and result.name != SELECTORS[0].name
    if is_discovery and ref is not None and result.finished and result.makespan > GOAL_OVER_NAMED * ref[0]:
        problems.append(f"{result.makespan / ref[0] - 1:+.1%} over the reference")
    if result.kind == "drain" and result.finished and result.ratio > DRAIN_TARGET:
        problems.append(f"makespan/bound {result.ratio:.3f} > {DRAIN_TARGET:.2f}")
    if result.calls_per_second > GOAL_CALLS_PER_SECOND:
        problems.append(f"{result.calls_per_second:.2f} IoT calls/s")
    return problems


def verdict(result: ScaleResult, results: Sequence[ScaleResult]) -> str:
    problems = goal_problems(result, results)
    return f"**fails**: {'; '.join(problems)}" if problems else "passes"


def _makespan(r: ScaleResult) -> str:
    if r.finished:
        return f"{fmt_seconds(r.makespan)} ({r.makespan:.0f} s)"
    return f"stopped at {fmt_seconds(r.makespan)} ({r.makespan:.0f} s), not complete"


def selector_table(results: Sequence[ScaleResult]) -> str:
    ref = reference(results)
    rows = [
        "| selector | makespan (simulated) | makespan/bound | last job gone | vs reference "
        "| discovery calls (share) | ListJobs pages | ListTagsForResource | GetResources "
        "| DescribeJob (not ours) | status polls | IoT calls/s | peak of one operation in 1 s | throttled "
        "| invocations | stages (hand-overs) | bystanders touched | goal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        named = r.name == SELECTORS[0].name
        versus = f"{r.makespan / ref[0] - 1:+.1%}" if ref and r.finished and not named else "-"
        gone = fmt_seconds(r.all_gone_at) if not r.ours_left else f"{r.ours_left} left"
        rows.append(
            f"| {r.name} | {_makespan(r)} | {r.ratio:.3f} | {gone} | {versus} "
            f"| {r.discovery_calls} ({r.discovery_calls / r.calls:.0%}) | {r.listing_pages} "
            f"| {r.count(TAGS)} | {r.count(TAGGING)} "
            f"| {r.count('describe_job')} ({r.count('describe_job', ours=False)}) "
            f"| {r.count(LISTINGS, listing=STATUS_POLL)} | {r.calls_per_second:.2f} | {r.operation_peak} "
            f"| {r.throttled} "
            f"| {r.run.invocations} | {r.stages} ({r.hand_overs}) | {len(r.bystanders_touched)} "
            f"| {verdict(r, results)} |"
        )
    return "\n".join(rows) + "\n"


def drain_table(results: Sequence[ScaleResult]) -> str:
    rows = [
        "| scenario | makespan | bound (drain / slots) | makespan/bound | last job gone | CancelJob "
        "| DescribeJob | IoT calls/s | peak of one operation in 1 s | throttled | invocations | goal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        parts = " / ".join(fmt_seconds(r.bound_parts[key]) for key in ("drain", "slots"))
        gone = fmt_seconds(r.all_gone_at) if not r.ours_left else f"{r.ours_left} left"
        rows.append(
            f"| {r.name} | {_makespan(r)} | {fmt_seconds(r.bound)} ({parts}) | {r.ratio:.3f} | {gone} "
            f"| {r.count('cancel_job')} | {r.count('describe_job')} | {r.calls_per_second:.2f} "
            f"| {r.operation_peak} | {r.throttled} | {r.run.invocations} | {verdict(r, results)} |"
        )
    return "\n".join(rows) + "\n"
