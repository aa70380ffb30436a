"""The destroy: every cleanup resource whose ``DeletionPolicy`` is not ``Retain`` gets its
Delete in CloudFormation's order (``teardown``: after the resources that depend on it, the
independent ones in parallel; each stack after the stacks that depend on it), while the view
shows each region's slots; then the jobs are judged against what the oracle expected of them."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .assembly import CleanupResource, StackPlan
from .base import KEPT, counted
from .endpoint import Endpoint
from .fleet import RuntimeActor, RuntimeJob
from .handlers import Outcome
from .long import LongDeletions
from .oracle import JobFacts, JobKey, all_job_facts, in_region, selected_jobs
from .order import DeletionOrder
from .report import Report
from .stacks import Stacks
from .teardown import Teardown
from .view import View

__all__ = ["Contention", "Expected", "destroy"]


@dataclass(frozen=True)
class Contention:
    """Other stacks' cleanups: the slots they hold at the start, for two deletion times, and
    whether they race ours for every freed slot (the contended scenario), in every region."""

    held: int = 0
    deletion_seconds: float = 60.0
    racing: bool = False


@dataclass
class Expected:
    """Which jobs should go, decided before the destroy from what IoT holds."""

    before: dict[JobKey, JobFacts]
    outside: set[JobKey]  # other stacks' jobs
    ours: set[JobKey]  # named or selected by a resource that gets its Delete
    retained: set[JobKey]  # named or selected only by DeletionPolicy Retain resources
    owned_before: set[JobKey]  # any cleanup's before the update

    def of(self, key: JobKey) -> str:
        """What should become of a job: "deleted", "kept" (DeletionPolicy Retain) or "left alone"."""
        return "deleted" if key in self.ours else "kept" if key in self.retained else "left alone"


def expect(
    outcomes: list[Outcome],
    plans: list[StackPlan],
    old_plans: list[StackPlan],
    before: dict[JobKey, JobFacts],
    outside: set[JobKey],
) -> Expected:
    def selected(cleanup: CleanupResource) -> list[str]:
        excluded = {job_id for region, job_id in outside if region == cleanup.region}
        return selected_jobs(cleanup, in_region(before, cleanup.region), excluded)

    for outcome in outcomes:  # which jobs should go is decided here, from what IoT holds
        outcome.selected = selected(outcome.resource)

    def keys_of(cleanup: CleanupResource) -> list[JobKey]:
        return [(cleanup.region, job_id) for job_id in [*cleanup.job_ids, *selected(cleanup)]]

    current = {(c.stack, c.logical_id) for plan in plans for c in plan.cleanups}
    removed = [c for plan in old_plans for c in plan.cleanups if (c.stack, c.logical_id) not in current]
    retained = {key for o in outcomes if o.state == "retained" for key in o.keys}
    return Expected(
        before,
        outside,
        ours={key for o in outcomes if o.state != "retained" for key in o.keys},
        retained=retained | {key for c in removed if c.retained for key in keys_of(c)},  # kept by the update
        owned_before={key for plan in old_plans for c in plan.cleanups for key in keys_of(c)},
    )


def _first_of_each_cleanup(outcomes: list[Outcome]) -> list[Outcome]:
    """One outcome per cleanup: a cleanup's stages share its jobs (and its runtime jobs)."""
    seen: dict[str, Outcome] = {}
    for outcome in outcomes:
        seen.setdefault(outcome.resource.cleanup, outcome)
    return list(seen.values())


def destroy(
    stacks: Stacks,
    actor: RuntimeActor,
    plans: list[StackPlan],
    old_plans: list[StackPlan],
    contention: Contention,
    *,
    live: bool,
    refresh_seconds: float,
    slow: LongDeletions | None = None,
) -> Report:
    """``slow``: the long scenario's deletion time, told here which jobs take long (once the
    oracle has decided which jobs each cleanup selects)."""
    endpoint = stacks.endpoint
    order = DeletionOrder.of(plans)
    outcomes = [
        Outcome(cleanup, state="retained", reason=KEPT)
        if cleanup.retained
        else Outcome(cleanup, stack_status="DELETE_IN_PROGRESS")
        for plan in plans
        for cleanup in plan.cleanups
    ]
    names = {(o.resource.stack, o.resource.logical_id): o.resource.name for o in outcomes}
    for outcome in outcomes:
        key = (outcome.resource.stack, outcome.resource.logical_id)
        outcome.waited_for = [names[k] for k in order.nearest(key) if k in names]
    requests = {
        (o.resource.stack, o.resource.logical_id): stacks.prepare(o)
        for o in outcomes
        if o.state != "retained"
    }
    outside: set[JobKey] = set()
    for region, lifecycle in endpoint.lifecycles.items() if contention.held else ():
        held = lifecycle.hold_slots(contention.held, seconds=2 * contention.deletion_seconds)
        if contention.racing:  # more of their cleanups race ours for every freed slot
            held += lifecycle.queue_outside_deletions(
                contention.held, contention.deletion_seconds, retry_seconds=1
            )
        outside |= {(region, job_id) for job_id in held}
    expected = expect(outcomes, plans, old_plans, all_job_facts(endpoint.lifecycles), outside)
    firsts = _first_of_each_cleanup(outcomes)
    runtime = [job for o in firsts for job in actor.jobs_for(o.resource)]
    actor.observe_listings([o.resource for o in firsts], runtime)
    for job in runtime:
        job.expected = expected.of((job.region, job.job_id))
    _announce(stacks, plans, outcomes, expected)
    if slow is not None:
        stacks.say(slow.assign(outcomes))
    view = View(stacks.out, stacks.clock, endpoint, outcomes, live)
    teardown = Teardown(stacks, plans, outcomes, requests, order, view.origin)
    _play(teardown, view, live, refresh_seconds)
    return _judged(endpoint, outcomes, expected, runtime, view.elapsed(), teardown)


def _announce(stacks: Stacks, plans: list[StackPlan], outcomes: list[Outcome], expected: Expected) -> None:
    ours, retained = expected.ours, expected.retained
    named = {(o.resource.region, job) for o in outcomes for job in o.resource.job_ids}
    naming = sum(bool(o.resource.job_ids) for o in outcomes)  # the resources that name them
    selected = (ours | retained) - named
    kept_note = f" ({len(retained - ours)} {KEPT})" if retained - ours else ""
    tops = [plan for plan in plans if plan.parent is None]
    first = [plan.name for plan in tops if not any(plan.name in other.dependencies for other in tops)]
    later = ", ".join(plan.name for plan in tops if plan.name not in first)
    others = len(set(expected.before) - ours - retained)
    if named:
        jobs = f"{counted(len(named), 'job')} named by {counted(naming, 'cleanup resource')}"
        jobs += f", {len(selected)} more their filters select" if selected else ""
    else:
        jobs = f"{counted(len(selected), 'job')} their filters select" if selected else "no job to delete"
    stacks.out.write(
        f"destroy: {', '.join(first)}: DELETE_IN_PROGRESS"
        f"{f' ({later} once the stacks that depend on them are gone)' if later else ''}; "
        f"{jobs}{kept_note}, {counted(others, 'other')}\n"
    )


def _play(teardown: Teardown, view: View, live: bool, refresh_seconds: float) -> None:
    """Run the teardown while the view shows it (every 30 s simulated in a log)."""
    teardown.begin()
    last_printed = -1.0
    while not teardown.over():
        for line in teardown.take_events():
            view.note(line)
        if live or view.elapsed() - last_printed >= 30:
            view.draw()
            last_printed = view.elapsed()
        time.sleep(refresh_seconds)
    for line in teardown.take_events():
        view.note(line)
    view.draw()


def _judged(
    endpoint: Endpoint,
    outcomes: list[Outcome],
    expected: Expected,
    runtime: list[RuntimeJob],
    elapsed: float,
    teardown: Teardown,
) -> Report:
    before, ours, retained = expected.before, expected.ours, expected.retained
    after = all_job_facts(endpoint.lifecycles)
    for job in runtime:
        key = (job.region, job.job_id)
        job.after = after[key].status if key in after else "gone"

    def labels(keys: set[JobKey]) -> list[str]:
        return sorted(endpoint.label(key) for key in keys)

    calls_by_region = {}
    for region, lifecycle in endpoint.lifecycles.items():
        with lifecycle.locked():
            calls_by_region[region] = dict(lifecycle.calls)
    return Report(
        outcomes=outcomes,
        jobs_left=labels(ours & set(after)),
        # Left alone means exactly as it was: not deleted, and not cancelled either (a drain).
        bystanders_touched=labels(
            {
                key
                for key in set(before) - ours - expected.outside
                if key not in after or after[key].status != before[key].status
            }
        ),
        iot_calls=endpoint.calls(),
        limit_exceeded=endpoint.refusals("LimitExceededException"),
        simulated_seconds=elapsed,
        jobs_kept=labels((retained - ours) & set(after)),
        jobs_released=labels((expected.owned_before - ours - retained) & set(after)),
        runtime=runtime,
        stacks=list(teardown.parts.values()),
        iot_calls_by_region=calls_by_region if len(calls_by_region) > 1 else {},
    )
