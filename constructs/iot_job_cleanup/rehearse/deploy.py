"""The deploy: create what the stacks would have (thing groups, things and the jobs their
cleanups name), then send each cleanup resource its Create (stack ``CREATE_IN_PROGRESS``)."""

from __future__ import annotations

import json
from pathlib import Path

from .assembly import StackPlan
from .base import BYSTANDER_JOB, counted
from .endpoint import Endpoint
from .fleet import group_arn, thing_arn
from .handlers import Outcome
from .stacks import Stacks

__all__ = ["deploy_phase", "provision"]


def provision(plans: list[StackPlan], endpoint: Endpoint) -> None:
    """Create what the stacks would have, each in its region's IoT: groups, things, and the
    jobs their cleanups name, and in each region one bystander job no cleanup owns.

    Jobs are created over the wire, then put in the state a fleet leaves them in by teardown
    time: COMPLETED, or IN_PROGRESS where the resource deletes with force (a continuous job).
    What exists already (an update) is left exactly as it is.
    """
    for region in dict.fromkeys(plan.region for plan in plans):
        _provision_region([plan for plan in plans if plan.region == region], endpoint, region)


def _provision_region(plans: list[StackPlan], endpoint: Endpoint, region: str) -> None:
    iot, lifecycle = endpoint.iot(region), endpoint.lifecycle(region)
    existing_groups, existing_things = lifecycle.thing_group_names(), lifecycle.thing_names()
    targets: list[str] = []
    for plan in plans:
        things = plan.things or [f"{plan.name}-rehearsal-device"]  # a job needs a target
        for group in plan.thing_groups:
            if group not in existing_groups:
                iot.create_thing_group(thingGroupName=group)
        for thing in things:
            if thing in existing_things:
                continue
            iot.create_thing(thingName=thing)
            for group in plan.thing_groups[:1]:
                iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
        targets = [group_arn(g, region) for g in plan.thing_groups[:1]] or [thing_arn(things[0], region)]
        for cleanup in plan.cleanups:
            namespace = cleanup.properties.get("NamespaceId")
            for job_id in cleanup.job_ids:
                if lifecycle.exists(job_id):
                    continue
                iot.create_job(
                    jobId=job_id,
                    targets=targets,
                    document=json.dumps({"operation": "rehearsal"}),
                    **({"namespaceId": namespace} if namespace else {}),
                )
                lifecycle.set_status(job_id, "IN_PROGRESS" if cleanup.forced else "COMPLETED")
    if not lifecycle.exists(BYSTANDER_JOB) and targets:
        iot.create_job(jobId=BYSTANDER_JOB, targets=targets, document=json.dumps({"operation": "keep"}))
        lifecycle.set_status(BYSTANDER_JOB, "COMPLETED")


def deploy_phase(stacks: Stacks, plans: list[StackPlan], source: Path) -> tuple[list[Outcome], str]:
    """Each stack created, its cleanups' Creates one at a time: the outcomes, and why the
    deploy stopped (a Create failed: the stack would roll back), or ""."""
    outcomes: list[Outcome] = []
    for plan in plans:
        stacks.set_status(plan.name, "CREATE_IN_PROGRESS")
        stacks.say(f"deploy: {plan.name} from {source}: CREATE_IN_PROGRESS")
        for cleanup in plan.cleanups:
            outcome = stacks.request(cleanup, "Create", "CREATE_IN_PROGRESS")
            outcomes.append(outcome)
            stacks.say(f"deploy:   {stacks.describe(outcome)}")
            if outcome.state == "failed":
                stacks.set_status(plan.name, "ROLLBACK_COMPLETE")
                return outcomes, (
                    f"the deploy of {plan.name} failed ({cleanup.name}: {outcome.reason}); "
                    "the stack would roll back"
                )
        stacks.set_status(plan.name, "CREATE_COMPLETE")
        jobs = {job for cleanup in plan.cleanups for job in cleanup.job_ids}
        naming = sum(bool(cleanup.job_ids) for cleanup in plan.cleanups)
        by_filters = sum(not cleanup.job_ids and cleanup.filters.given for cleanup in plan.cleanups)
        if jobs:
            owned = f"{counted(len(jobs), 'job')} named by {counted(naming, 'cleanup resource')}"
            verb = "selects" if by_filters == 1 else "select"
            owned += f", {by_filters} more {verb} jobs by their filters" if by_filters else ""
        else:
            owned = "no job named" + (
                f"; {counted(by_filters, 'cleanup resource')} with filters" if by_filters else ""
            )
        stacks.say(f"deploy: {plan.name}: CREATE_COMPLETE; {owned}")
    return outcomes, ""
