"""What a rehearsal found (``Report``: ok when every cleanup's result, its last stage's, is a
success, every job that should go is gone and no other was touched) and its summary: each
request's outcome and its part in the destroy (when it ran, what it deleted, a stage's
hand-over), the stacks' order, the runtime jobs and bystanders by what became of them, the IoT
calls, the jobs left, kept, released and touched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from .base import KEPT, counted
from .fleet import RuntimeJob
from .handlers import Outcome
from .teardown import StackPart

__all__ = ["Report", "print_summary"]


@dataclass
class Report:
    outcomes: list[Outcome]  # the destroy's, retained resources included
    jobs_left: list[str]  # jobs a deleted resource names or selects that still exist
    bystanders_touched: list[str]  # jobs no deleted resource selects that were deleted or changed
    iot_calls: dict[str, int]
    limit_exceeded: int
    simulated_seconds: float
    jobs_kept: list[str] = field(default_factory=list)  # named only by DeletionPolicy Retain resources
    jobs_released: list[str] = field(
        default_factory=list
    )  # no cleanup names or selects them after the update
    update_outcomes: list[Outcome] = field(default_factory=list)
    update_touched: list[str] = field(default_factory=list)  # jobs the update deleted or changed
    update_delete_calls: int = 0
    stopped: str = ""  # why the rehearsal stopped before the destroy (an update refused, ...)
    runtime: list[RuntimeJob] = field(default_factory=list)  # the runtime actor's, for the destroy
    stacks: list[StackPart] = field(default_factory=list)  # each stack's part in the destroy
    iot_calls_by_region: dict[str, dict[str, int]] = field(default_factory=dict)  # with several

    @property
    def cleanups(self) -> dict[str, list[Outcome]]:
        """The destroy's outcomes by cleanup: a cleanup of stages has one per stage, in order."""
        grouped: dict[str, list[Outcome]] = {}
        for outcome in self.outcomes:
            grouped.setdefault(outcome.resource.cleanup, []).append(outcome)
        return {name: sorted(stages, key=lambda o: o.resource.stage) for name, stages in grouped.items()}

    @property
    def hand_overs(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.handed_over]

    @property
    def ok(self) -> bool:
        """Every cleanup's result (its last stage's: a hand-over is neither its success nor its
        failure) is a success, every job that should go is gone and no other was touched; jobs
        kept by DeletionPolicy Retain (or no longer any cleanup's after an update) are no failure."""
        return (
            not self.stopped
            and all(stages[-1].state in ("complete", "retained") for stages in self.cleanups.values())
            and all(o.state in ("complete", "retained", "handed over") for o in self.outcomes)
            and all(o.state in ("complete", "retained") for o in self.update_outcomes)
            and not self.jobs_left
            and not self.bystanders_touched
            and not self.update_touched
            and not self.update_delete_calls
        )


def print_summary(report: Report, out: TextIO) -> None:
    out.write("\nSummary\n")
    for o in report.update_outcomes:
        line = f"  update: {o.resource.name}: {o.request} during {o.stack_status or 'the update'}: "
        line += KEPT + ", no Delete sent" if o.state == "retained" else f"{o.state.upper()}"
        out.write(line + (f"\n    reason: {o.reason}" if o.reason and o.state == "failed" else "") + "\n")
    for name, stages in report.cleanups.items():
        if len(stages) == 1 and stages[0].resource.stages == 1:
            _print_outcome(stages[0], out)
        else:
            _print_stages(name, stages, out)
        _print_runtime(stages[0], [job for job in report.runtime if job.cleanup == name], out)
    if any(o.resource.stages > 1 for o in report.outcomes):
        handed = [
            f"{o.resource.cleanup} stage {o.resource.stage} to {o.resource.stage + 1}"
            for o in report.hand_overs
        ]
        listed = f" ({', '.join(handed)})" if handed else ""
        out.write(f"  hand-overs: {len(handed)}{listed}\n")
    if len(report.stacks) > 1:
        out.write(f"  stacks: {', '.join(_stack_part(part) for part in report.stacks)}\n")
    if report.stopped:
        out.write(f"  stopped before the destroy: {report.stopped}\n")
    calls = ", ".join(f"{name} {count}" for name, count in sorted(report.iot_calls.items()))
    refused = counted(report.limit_exceeded, "time")
    out.write(f"  IoT calls: {calls}; LimitExceededException answered {refused}\n")
    for region, by_operation in report.iot_calls_by_region.items():
        calls = ", ".join(f"{name} {count}" for name, count in sorted(by_operation.items()))
        out.write(f"    in {region}: {calls or 'none'}\n")
    if not report.stopped:
        _print_jobs(report, out)
    if not report.ok:
        out.write("FAILED: see above.\n")
    elif report.jobs_kept or report.jobs_released:
        kept, released = len(report.jobs_kept), len(report.jobs_released)
        exceptions = [
            *([f"{kept} kept by DeletionPolicy Retain"] if kept else []),
            *([f"{released} no cleanup names or selects any more"] if released else []),
        ]
        out.write(f"OK: every job is gone, except {' and '.join(exceptions)}.\n")
    else:
        out.write("OK: every job is gone.\n")


def _print_jobs(report: Report, out: TextIO) -> None:
    out.write(f"  jobs left: {', '.join(report.jobs_left) or 'none'}\n")
    if report.jobs_kept:
        out.write(f"  jobs kept (DeletionPolicy Retain): {', '.join(report.jobs_kept)}\n")
    if report.jobs_released:
        out.write(
            "  jobs no cleanup names or selects after the update (left alone): "
            f"{', '.join(report.jobs_released)}\n"
        )
    if report.update_touched or report.update_delete_calls:
        out.write(
            f"  jobs the update touched: {', '.join(report.update_touched) or 'none'}; "
            f"DeleteJob calls during the update: {report.update_delete_calls}\n"
        )
    out.write(
        "  jobs no cleanup selects that were deleted or changed: "
        f"{', '.join(report.bystanders_touched) or 'none'}\n"
    )


def _part(outcome: Outcome) -> str:
    """'0 s to 128 s of the destroy, after X': when its Delete ran, and what it waited for."""
    if outcome.started is None:
        return "never sent"
    ended = f"{outcome.ended:.0f} s" if outcome.ended is not None else "the end"
    after = f", after {', '.join(outcome.waited_for)}" if outcome.waited_for else ""
    return f"{outcome.started:.0f} s to {ended} of the destroy{after}"


def _print_outcome(o: Outcome, out: TextIO) -> None:
    if o.state == "retained":
        out.write(f"  {o.resource.name}: RETAINED ({KEPT}), {_jobs_count(o)}, no Delete sent\n")
        return
    if o.state == "not sent":
        out.write(f"  {o.resource.name}: NOT SENT, {_jobs_count(o)}\n    reason: {o.reason}\n")
        return
    line = f"  {o.resource.name}: {o.state.upper()} "
    line += f"after {o.elapsed:.0f} s simulated ({_part(o)}), {_jobs_count(o)}, {len(o.deleted)} deleted, "
    line += counted(o.invocations, "handler invocation")
    out.write(line + (f"\n    reason: {o.reason}" if o.reason else "") + "\n")


def _print_stages(name: str, stages: list[Outcome], out: TextIO) -> None:
    """A cleanup of stages: its result (its last stage's), then each stage's part."""
    last = stages[-1]
    count = last.resource.stages
    finisher = next((o for o in stages if o.state not in ("handed over", "waiting")), last)
    handed = sum(o.handed_over for o in stages)
    ran = [o for o in stages if o.started is not None]
    span = (
        f", after {max(o.ended or 0.0 for o in ran) - min(o.started or 0.0 for o in ran):.0f} s simulated"
        if ran
        else ""
    )
    where = f" in stage {finisher.resource.stage} of {count}" if last.state == "complete" else ""
    result = "RETAINED" if last.state == "retained" else last.state.upper()
    out.write(
        f"  {name} ({counted(count, 'stage')}): {result}{where}{span}, {_jobs_count(last)}, "
        f"{counted(handed, 'hand-over')}\n"
    )
    if len(stages) < count:
        verb = "is" if len(stages) == 1 else "are"
        out.write(f"    (only {len(stages)} of its {counted(count, 'stage')} {verb} in the template)\n")
    for o in stages:
        stage = f"    stage {o.resource.stage} {o.resource.name}: "
        if o.state == "retained":
            out.write(f"{stage}RETAINED ({KEPT}), no Delete sent\n")
            continue
        if o.state == "not sent":
            out.write(f"{stage}NOT SENT\n      reason: {o.reason}\n")
            continue
        text = f"{stage}{o.state.upper()} ({_part(o)}), deleted {counted(len(o.deleted), 'job')}"
        if o.handed_over:
            text += f", handed {len(o.left)} over to stage {o.resource.stage + 1}"
        text += f", {counted(o.invocations, 'handler invocation')}"
        out.write(text + (f"\n      reason: {o.reason}" if o.reason else "") + "\n")


def _stack_part(part: StackPart) -> str:
    if part.started is None:
        return f"{part.name} {part.status}"
    ended = f"{part.ended:.0f} s" if part.ended is not None else "the end"
    after = f", after {', '.join(part.after)}" if part.after else ""
    nested = f", nested in {part.nested_in}" if part.nested_in else ""
    return f"{part.name} {part.status} ({part.started:.0f} s to {ended}{after}{nested})"


def _jobs_count(outcome: Outcome) -> str:
    """'12 jobs' for a cleanup that only names jobs; else how many it names and its filters select."""
    named, selected = len(outcome.resource.job_ids), len(outcome.selected)
    if not outcome.resource.filters.given:
        return counted(named, "job")
    by_filters = counted(selected, "job") + " its filters select"
    return f"{counted(named, 'job')} named and {by_filters}" if named else by_filters


def _print_runtime(outcome: Outcome, jobs: list[RuntimeJob], out: TextIO) -> None:
    """What the runtime actor made for a cleanup: the selected jobs by the listing that shows
    them, and the bystanders by why they are bystanders, each with what became of it."""
    if not jobs:
        return

    def shown(job: RuntimeJob) -> str:
        if job.as_expected:
            return f"{job.job_id} ({job.status})"
        became = "STILL THERE" if job.after == job.status else "DELETED" if job.after == "gone" else job.after
        return f"{job.job_id} ({job.status}, {became})"

    def grouped(of: list[RuntimeJob], key: Callable[[RuntimeJob], str]) -> None:
        groups: dict[str, list[RuntimeJob]] = {}
        for job in of:
            groups.setdefault(key(job), []).append(job)
        for name, members in groups.items():
            out.write(f"      {name}: {', '.join(shown(job) for job in members)}\n")

    out.write(f"    selects: {outcome.resource.filters.describe()}\n")
    selected = [job for job in jobs if not job.why]
    if selected:
        verb = {"deleted": "deleted", "kept": f"kept ({KEPT})"}.get(selected[0].expected, "left alone")
        fine = sum(job.as_expected for job in selected)
        out.write(f"    runtime jobs {verb}, {fine} of {len(selected)}, by the listing that shows them:\n")
        grouped(selected, lambda job: job.listing)
    bystanders = [job for job in jobs if job.why]
    if bystanders:
        fine = sum(job.as_expected for job in bystanders)
        out.write(f"    bystanders left alone, {fine} of {len(bystanders)}, by why they are bystanders:\n")
        grouped(bystanders, lambda job: job.why)
