"""The destroy: every cleanup resource whose ``DeletionPolicy`` is not ``Retain`` gets its
Delete, all in parallel (``DELETE_IN_PROGRESS``), while the view shows the slots; then the
jobs are judged against what the oracle expected of them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .assembly import CleanupResource, StackPlan
from .base import KEPT
from .fleet import RuntimeActor, RuntimeJob
from .handlers import HandlerRequest, Outcome
from .oracle import JobFacts, job_facts, selected_jobs
from .report import Report
from .stacks import Stacks
from .view import View

__all__ = ["Contention", "Expected", "destroy"]


@dataclass(frozen=True)
class Contention:
    """Other stacks' cleanups: the slots they hold at the start, for two deletion times, and
    whether they race ours for every freed slot (the contended scenario)."""

    held: int = 0
    deletion_seconds: float = 60.0
    racing: bool = False


@dataclass
class Expected:
    """Which jobs should go, decided before the destroy from what IoT holds."""

    before: dict[str, JobFacts]
    outside: set[str]  # other stacks' jobs
    ours: set[str]  # named or selected by a resource that gets its Delete
    retained: set[str]  # named or selected only by DeletionPolicy Retain resources
    owned_before: set[str]  # any cleanup's before the update

    def of(self, job_id: str) -> str:
        """What should become of a job: "deleted", "kept" (DeletionPolicy Retain) or "left alone"."""
        return "deleted" if job_id in self.ours else "kept" if job_id in self.retained else "left alone"


def expect(
    outcomes: list[Outcome],
    plans: list[StackPlan],
    old_plans: list[StackPlan],
    before: dict[str, JobFacts],
    outside: set[str],
) -> Expected:
    for outcome in outcomes:  # which jobs should go is decided here, from what IoT holds
        outcome.selected = selected_jobs(outcome.resource, before, outside)

    def jobs_of(cleanup: CleanupResource) -> list[str]:
        return [*cleanup.job_ids, *selected_jobs(cleanup, before, outside)]

    current = {(c.stack, c.logical_id) for plan in plans for c in plan.cleanups}
    removed = [c for plan in old_plans for c in plan.cleanups if (c.stack, c.logical_id) not in current]
    retained = {job for o in outcomes if o.state == "retained" for job in o.jobs}
    return Expected(
        before,
        outside,
        ours={job for o in outcomes if o.state != "retained" for job in o.jobs},
        retained=retained | {job for c in removed if c.retained for job in jobs_of(c)},  # kept by the update
        owned_before={job for plan in old_plans for c in plan.cleanups for job in jobs_of(c)},
    )


def destroy(
    stacks: Stacks,
    actor: RuntimeActor,
    plans: list[StackPlan],
    old_plans: list[StackPlan],
    contention: Contention,
    *,
    live: bool,
    refresh_seconds: float,
) -> Report:
    lifecycle = stacks.lifecycle
    outcomes = [
        Outcome(cleanup, state="retained", reason=KEPT)
        if cleanup.retained
        else Outcome(cleanup, stack_status="DELETE_IN_PROGRESS")
        for plan in plans
        for cleanup in plan.cleanups
    ]
    requests = [stacks.prepare(outcome) for outcome in outcomes if outcome.state != "retained"]
    outside: list[str] = []
    if contention.held:
        outside = lifecycle.hold_slots(contention.held, seconds=2 * contention.deletion_seconds)
        if contention.racing:  # more of their cleanups race ours for every freed slot
            outside += lifecycle.queue_outside_deletions(
                contention.held, contention.deletion_seconds, retry_seconds=1
            )
    expected = expect(outcomes, plans, old_plans, job_facts(lifecycle), set(outside))
    runtime = [job for o in outcomes for job in actor.jobs_for(o.resource)]
    actor.observe_listings([o.resource for o in outcomes], runtime)
    for job in runtime:
        job.expected = expected.of(job.job_id)
    _announce(stacks, plans, outcomes, expected)
    view = View(stacks.out, stacks.clock, lifecycle, outcomes, live)
    _run_in_parallel(requests, view, live, refresh_seconds)
    for plan in plans:
        failed = any(o.state == "failed" for o in outcomes if o.resource.stack == plan.name)
        stacks.set_status(plan.name, "DELETE_FAILED" if failed else "DELETE_COMPLETE")
    return _judged(stacks, outcomes, expected, runtime, view.elapsed())


def _announce(stacks: Stacks, plans: list[StackPlan], outcomes: list[Outcome], expected: Expected) -> None:
    ours, retained = expected.ours, expected.retained
    named = {job for o in outcomes for job in o.resource.job_ids}
    selected = (ours | retained) - named
    kept_note = f" ({len(retained - ours)} {KEPT})" if retained - ours else ""
    for plan in plans:
        stacks.set_status(plan.name, "DELETE_IN_PROGRESS")
    stacks.out.write(
        f"destroy: {', '.join(plan.name for plan in plans)}: DELETE_IN_PROGRESS; "
        f"{len(named)} jobs named by {len(outcomes)} cleanup resources"
        f"{f', {len(selected)} more their filters select' if selected else ''}{kept_note}, "
        f"{len(set(expected.before) - ours - retained)} others\n"
    )


def _run_in_parallel(requests: list[HandlerRequest], view: View, live: bool, refresh_seconds: float) -> None:
    """CloudFormation deletes resources that do not depend on each other in parallel."""
    workers = [threading.Thread(target=request.run, daemon=True) for request in requests]
    for worker in workers:
        worker.start()
    last_printed = -1.0
    while any(worker.is_alive() for worker in workers):
        if live or view.elapsed() - last_printed >= 30:
            view.draw()
            last_printed = view.elapsed()
        time.sleep(refresh_seconds)
    view.draw()


def _judged(
    stacks: Stacks, outcomes: list[Outcome], expected: Expected, runtime: list[RuntimeJob], elapsed: float
) -> Report:
    lifecycle, before, ours, retained = stacks.lifecycle, expected.before, expected.ours, expected.retained
    after = job_facts(lifecycle)
    for job in runtime:
        job.after = after[job.job_id].status if job.job_id in after else "gone"
    return Report(
        outcomes=outcomes,
        jobs_left=sorted(ours & set(after)),
        # Left alone means exactly as it was: not deleted, and not cancelled either (a drain).
        bystanders_touched=sorted(
            job
            for job in set(before) - ours - expected.outside
            if job not in after or after[job].status != before[job].status
        ),
        iot_calls=dict(lifecycle.calls),
        limit_exceeded=lifecycle.refusals["LimitExceededException"],
        simulated_seconds=elapsed,
        jobs_kept=sorted((retained - ours) & set(after)),
        jobs_released=sorted((expected.owned_before - ours - retained) & set(after)),
        runtime=runtime,
    )
