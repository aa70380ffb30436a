"""The long scenario (``--scenario long``): a teardown of more than an hour, through the stages
of a cleanup (one custom resource per hour of its total_timeout).

Only the jobs of the cleanups of stages take long to delete: those each names, and those its
filters select (decided by the oracle when the destroy begins, as every judgement of the
rehearsal is). Each of them takes ``long_deletion_seconds`` of its cleanup, more than the first
stage's hour and well within all of its stages; every other deletion takes the usual time, so
the cleanups of one hour finish as in the calm scenario.

The long deletions hold slots for all that time, and a cleanup's handler takes every slot it
can get: so that they never starve the other cleanups of the region (which have an hour
only), at most half of the region's 10 slots go to long deletions when other cleanups have
jobs to delete there, and all 10 when none has. Which jobs take the long time is decided
ahead, at most that many per region, shared among the cleanups of stages in turn; the rest of
their jobs take the usual time.
"""

from __future__ import annotations

import math
from itertools import zip_longest
from typing import Any

from .assembly import CleanupResource, StackPlan
from .base import RehearsalError, counted
from .handlers import Outcome
from .oracle import JobKey

__all__ = ["SLOTS", "STAGE_SECONDS", "LongDeletions", "long_deletion_seconds", "staged_cleanups"]

STAGE_SECONDS = 3600.0  # one stage's time: CloudFormation's limit for a custom resource
SLOTS = 10  # IoT's deletion slots, per account and region


def staged_cleanups(plans: list[StackPlan]) -> dict[str, list[CleanupResource]]:
    """The cleanups of more than one stage that get their Delete: each one's stages, in order.
    Without one there is no long teardown to rehearse: the assembly cannot be rehearsed so."""
    staged: dict[str, list[CleanupResource]] = {}
    for plan in plans:
        for cleanup in plan.cleanups:
            if cleanup.stages > 1 and not cleanup.retained:
                staged.setdefault(cleanup.cleanup, []).append(cleanup)
    if not staged:
        raise RehearsalError(
            "--scenario long rehearses a cleanup longer than an hour, through its stages (one custom "
            "resource per hour of total_timeout, Stage and Stages properties); no cleanup resource "
            "of the assembly has stages. Give a cleanup total_timeout=Duration.hours(2) or more, "
            "synthesize, and rehearse again."
        )
    return {name: sorted(stages, key=lambda stage: stage.stage) for name, stages in staged.items()}


def total_seconds(stages: list[CleanupResource]) -> float:
    """The time all of a cleanup's stages have (each its TotalTimeoutSeconds)."""
    return sum(float(stage.properties.get("TotalTimeoutSeconds") or STAGE_SECONDS) for stage in stages)


def long_deletion_seconds(stages: list[CleanupResource]) -> float:
    """How long a deletion of this cleanup's jobs takes in the long scenario: past the first
    hour by half of what its other stages give, at most half an hour (3 stages: 5400 s; 2
    stages: 5400 s; an hour and 2 minutes: 3660 s)."""
    return float(math.ceil(STAGE_SECONDS + min(1800.0, (total_seconds(stages) - STAGE_SECONDS) / 2)))


class LongDeletions:
    """The long scenario's deletion time: a callable on the emulator's job, as the emulator's
    ``DeletionTime`` is (a fixed part plus a part per target). The jobs ``assign`` chose take
    their cleanup's long time as the fixed part, every other job ``usual_seconds``."""

    def __init__(self, plans: list[StackPlan], usual_seconds: float, per_target_seconds: float = 0.0) -> None:
        self.staged = staged_cleanups(plans)
        self.seconds = {name: long_deletion_seconds(stages) for name, stages in self.staged.items()}
        self.usual_seconds = usual_seconds
        self.per_target_seconds = per_target_seconds
        self.long: dict[JobKey, float] = {}  # set once, by assign, before the destroy's first Delete

    def __call__(self, job: Any) -> float:
        """A job's deletion time (called by the emulator when DeleteJob starts one)."""
        base = self.long.get((job.region_name, job.job_id), self.usual_seconds)
        return base + self.per_target_seconds * len(job.targets or [])

    def describe(self) -> str:
        """Each cleanup of stages, its stages' time and its deletions' (before the destroy)."""
        return "; ".join(
            f"{name} ({counted(len(stages), 'stage')}, {total_seconds(stages):.0f} s): "
            f"{self.seconds[name]:.0f} s"
            for name, stages in self.staged.items()
        )

    def assign(self, outcomes: list[Outcome]) -> str:
        """Choose the jobs that take the long time, from the destroy's outcomes (whose
        ``selected`` the oracle has filled); what was chosen, in a line of the destroy."""
        firsts: dict[str, Outcome] = {}
        others: set[JobKey] = set()  # jobs the cleanups of one stage delete
        for outcome in outcomes:
            if outcome.state == "retained":
                continue
            if outcome.resource.cleanup in self.staged:
                firsts.setdefault(outcome.resource.cleanup, outcome)  # its stages share its jobs
            else:
                others |= set(outcome.keys)
        chosen: dict[JobKey, float] = {}
        of: dict[str, int] = dict.fromkeys(firsts, 0)
        shares: list[str] = []
        for region in dict.fromkeys(key[0] for outcome in firsts.values() for key in outcome.keys):
            share = SLOTS // 2 if any(key[0] == region for key in others) else SLOTS
            queues = [
                [(name, key) for key in outcome.keys if key[0] == region and key not in others]
                for name, outcome in firsts.items()
            ]
            taken = 0
            for turn in zip_longest(*queues):  # each cleanup of stages in turn
                for name, key in (entry for entry in turn if entry is not None):
                    if key in chosen:
                        chosen[key] = min(chosen[key], self.seconds[name])  # both must see it go
                    elif taken < share:
                        chosen[key], taken = self.seconds[name], taken + 1
                        of[name] += 1
            limit = "the other cleanups keep the rest" if share < SLOTS else "no other cleanup deletes there"
            shares.append(f"{region}: at most {share} at once, {limit}")
        self.long = chosen
        parts = [
            f"{counted(count, 'job')} of {name} {'takes' if count == 1 else 'take'} "
            f"{self.seconds[name]:.0f} s to delete"
            for name, count in of.items()
        ]
        if len(shares) == 1:
            shares = [shares[0].split(": ", 1)[1]]  # one region: no need to name it
        chosen_text = "; ".join(parts) or "no job of a cleanup of stages"
        return (
            f"destroy: the long scenario: {chosen_text} ({', '.join(shares) or 'none'}); "
            f"every other deletion takes {self.usual_seconds:g} s"
        )
