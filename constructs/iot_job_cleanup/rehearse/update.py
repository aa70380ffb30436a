"""The update (``--update-from OLD``: OLD is deployed first): refuses a changed ``ServiceToken``
as CloudFormation does; sends Create to new cleanup resources and Update to changed ones
(``UPDATE_IN_PROGRESS``), then Delete to the ones the new template no longer has and to
replaced physical ids (``UPDATE_COMPLETE_CLEANUP_IN_PROGRESS``), and checks that no job was
touched."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .assembly import CleanupResource, StackPlan, handler_functions
from .base import KEPT, RehearsalError, counted
from .deploy import provision
from .handlers import Outcome
from .oracle import all_job_facts
from .stacks import Stacks

__all__ = ["SERVICE_TOKEN_REFUSAL", "UpdateResult", "checked_update", "refused"]

SERVICE_TOKEN_REFUSAL = "Modifying service token is not allowed."
UpdateResult = tuple[list[Outcome], str, list[str], int]


def refused(old_plans: list[StackPlan], new_plans: list[StackPlan]) -> list[CleanupResource]:
    """Cleanups whose ServiceToken the update would change: CloudFormation refuses those."""
    old = {(c.stack, c.logical_id): c for plan in old_plans for c in plan.cleanups}
    return [
        cleanup
        for plan in new_plans
        for cleanup in plan.cleanups
        if (cleanup.stack, cleanup.logical_id) in old
        and old[(cleanup.stack, cleanup.logical_id)].service_token != cleanup.service_token
    ]


def _refuse(stacks: Stacks, refusals: list[CleanupResource]) -> str:
    for cleanup in refusals:
        stacks.say(f"update: {cleanup.name}: UPDATE_FAILED: {SERVICE_TOKEN_REFUSAL}")
    for stack in sorted({cleanup.stack for cleanup in refusals}):
        stacks.set_status(stack, "UPDATE_ROLLBACK_COMPLETE")
        stacks.say(
            f"update: {stack}: UPDATE_ROLLBACK_COMPLETE: the stack rolls back to the old "
            "template; its jobs stay as they are. Nothing is destroyed."
        )
    stacks.say(
        "update: a custom resource's ServiceToken cannot change in place. Keep the "
        "provider's construct path, or give the cleanup a new construct id: CloudFormation "
        "then creates the new resource and deletes the old one, which deletes no job."
    )
    names = ", ".join(cleanup.name for cleanup in refusals)
    return f"the update was refused: {names}: {SERVICE_TOKEN_REFUSAL}"


def update_phase(
    stacks: Stacks, old_plans: list[StackPlan], new_plans: list[StackPlan], source: Path
) -> tuple[list[Outcome], str]:
    refusals = refused(old_plans, new_plans)
    if refusals:
        return [], _refuse(stacks, refusals)
    outcomes: list[Outcome] = []
    old_by_stack = {plan.name: plan for plan in old_plans}
    for plan in new_plans:
        failure = _update_stack(stacks, old_by_stack.get(plan.name), plan, source, outcomes)
        if failure:
            return outcomes, failure
    return outcomes, ""


def _update_stack(
    stacks: Stacks, old_plan: StackPlan | None, plan: StackPlan, source: Path, outcomes: list[Outcome]
) -> str:
    verb = "UPDATE" if old_plan else "CREATE"
    stacks.set_status(plan.name, f"{verb}_IN_PROGRESS")
    stacks.say(f"update: {plan.name} to {source}: {verb}_IN_PROGRESS")
    old = {c.logical_id: c for c in old_plan.cleanups} if old_plan else {}
    replaced: list[tuple[CleanupResource, str]] = []  # Update gave a new physical id
    unchanged = 0
    for cleanup in plan.cleanups:
        before = old.get(cleanup.logical_id)
        if before is not None and before.properties == cleanup.properties:
            unchanged += 1  # CloudFormation sends it nothing
            continue
        request, why = ("Create", "new logical id") if before is None else ("Update", "properties changed")
        old_physical = stacks.physical_ids.get((cleanup.stack, cleanup.logical_id))
        outcome = stacks.request(cleanup, request, f"{verb}_IN_PROGRESS", old=before)
        outcomes.append(outcome)
        stacks.say(f"update:   {stacks.describe(outcome, why)}")
        if outcome.state == "failed":
            stacks.set_status(plan.name, f"{verb}_ROLLBACK_COMPLETE" if old_plan else "ROLLBACK_COMPLETE")
            return f"the update of {plan.name} failed ({cleanup.name}: {outcome.reason}); it would roll back"
        if before is not None and old_physical and outcome.physical_id != old_physical:
            replaced.append((before, old_physical))
    if unchanged:
        them = "it" if unchanged == 1 else "them"
        stacks.say(f"update:   {counted(unchanged, 'cleanup resource')} unchanged: no request sent to {them}")
    if old_plan is None:
        stacks.set_status(plan.name, "CREATE_COMPLETE")
        stacks.say(f"update: {plan.name}: CREATE_COMPLETE")
        return ""
    _clean_up(stacks, old_plan, plan, replaced, outcomes)
    stacks.set_status(plan.name, "UPDATE_COMPLETE")
    stacks.say(f"update: {plan.name}: UPDATE_COMPLETE")
    return ""


def _clean_up(
    stacks: Stacks,
    old_plan: StackPlan,
    plan: StackPlan,
    replaced: list[tuple[CleanupResource, str]],
    outcomes: list[Outcome],
) -> None:
    """UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: Delete to the cleanups the new template no longer
    has (none to a retained one), then to the physical ids an Update replaced."""
    status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    stacks.set_status(plan.name, status)
    stacks.say(f"update: {plan.name}: {status}")
    new_ids = {c.logical_id for c in plan.cleanups}
    for before in [c for c in old_plan.cleanups if c.logical_id not in new_ids]:
        if before.retained:
            kept = Outcome(before, state="retained", request="Delete", reason=KEPT, stack_status=status)
            outcomes.append(kept)
            stacks.say(f"update:   {before.name}: not in the new template, {KEPT}: no Delete sent")
            continue
        outcome = stacks.request(_as_deleted_by(before, plan), "Delete", status)
        outcomes.append(outcome)
        stacks.say(f"update:   {stacks.describe(outcome, 'not in the new template')}")
    for before, old_physical in replaced:  # CloudFormation deletes the replaced physical id
        outcome = stacks.request(_as_deleted_by(before, plan), "Delete", status, physical_id=old_physical)
        outcomes.append(outcome)
        stacks.say(f"update:   {stacks.describe(outcome, f'old physical id {old_physical}')}")


def checked_update(
    stacks: Stacks, old_plans: list[StackPlan], new_plans: list[StackPlan], source: Path
) -> UpdateResult:
    """The update, checked to touch no job: its outcomes, why it stopped (if it did), the
    jobs it deleted or changed, and its DeleteJob calls. Then the new template's jobs."""
    endpoint = stacks.endpoint

    def statuses() -> dict[tuple[str, str], str]:
        return {key: job.status for key, job in all_job_facts(endpoint.lifecycles).items()}

    before, calls_before = statuses(), endpoint.calls().get("DeleteJob", 0)
    outcomes, stopped = update_phase(stacks, old_plans, new_plans, source)
    if stopped:
        return outcomes, stopped, [], 0
    after = statuses()
    delete_calls = endpoint.calls().get("DeleteJob", 0) - calls_before
    touched = sorted(endpoint.label(key) for key, status in before.items() if after.get(key) != status)
    after_of = {endpoint.label(key): status for key, status in after.items()}
    shown = ", ".join(f"{job} ({after_of.get(job, 'gone')})" for job in touched[:5])
    more = f" and {len(touched) - 5} more" if len(touched) > 5 else ""
    stacks.say(
        f"update: {counted(len(before), 'job')} existed before the update, "
        f"{f'{len(touched)} touched: {shown}{more}' if touched else 'none touched'} "
        f"(DeleteJob calls during the update: {delete_calls})"
    )
    provision(new_plans, endpoint)  # the jobs the new template names, if new
    created = set(statuses()) - set(before)
    if created:
        stacks.say(f"update: created {counted(len(created), 'job')} the new template names")
    return outcomes, "", touched, delete_calls


def _as_deleted_by(cleanup: CleanupResource, new_plan: StackPlan) -> CleanupResource:
    """The Delete of a removed resource goes to its old ServiceToken; when that function is
    still in the new template, it was updated before the clean-up: the new code answers."""
    try:
        on_event, is_complete = handler_functions(
            cleanup.name, cleanup.service_token, new_plan.resources, new_plan.cdk_out
        )
    except RehearsalError:
        return cleanup  # the function goes too, after the resources that use it
    return replace(cleanup, on_event=on_event, is_complete=is_complete)
