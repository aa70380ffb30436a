"""Trust as a property: random accounts, selections, faults and races, judged by I1-I4 (issue 12).

Hypothesis draws a world (job statuses, SCHEDULED jobs, devices still busy after someone's
cancel, tags over several ListTagsForResource pages, targets, namespaces), a selection
(named ids, tags, thing groups, prefix, namespace, force, drain), the construct's IAM policy
or none, transient faults (5xx, connection errors, lost answers) at a random rate, maybe an
AccessDenied from "an SCP" on one call of one job, and other actors' moves (delete, create
again, cancel, finish, retag, delete a group) at the engine's pauses between rounds. The
Lambda entry points (``run_lambda``) or the command line (``run_cli``) then run in simulated
time, and ``check_trust`` judges the run. Races go at the engine's sleeps of at least
``PAUSE``: the pauses between rounds, and a call's wait for its turn at IoT's rate (just
before that call). Throttling is left to the targeted tests: its pacing, up to 2 s a call
inside a round, would take many of the races meant for the pauses between rounds.

A run with no race and no denial, whose selected jobs can all be deleted as the selection
asks (terminal, or force, or devices that finish within the drain), must also succeed: an
engine that always failed would otherwise pass I1-I4.

Bounded: derandomized (the same examples on every run, no example database), a fixed
number of examples per test, well under a minute in all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faults import (
    Chosen,
    Fault,
    World,
    cancelled,
    check_trust,
    connection_error,
    created,
    denied,
    finished,
    group_deleted,
    outside_deletion,
    read_timeout,
    recreated,
    removed,
    retagged,
    run,
    unavailable,
)

JOB_IDS = ["ota-1", "ota-2", "ota-3", "cfg-1", "cfg-2", "rollout-1", "rollout-2"]
TAG_KEYS = ["fleet", "wave", "owner", "k4", "k5"]
TAG_VALUES = ["demo", "other"]
TARGETS = ["fleet", "other", "thing:sensor-1"]
STATUSES = ["COMPLETED", "COMPLETED", "CANCELED", "IN_PROGRESS", "SCHEDULED", "BUSY_CANCELED"]

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class JobSpec:
    status: str
    finish_in: float
    targets: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]
    namespace: str | None

    def kwargs(self) -> dict[str, Any]:
        return {
            "status": "IN_PROGRESS" if self.status == "BUSY_CANCELED" else self.status,
            "busy_after_cancel": self.status == "BUSY_CANCELED",
            "finish_in": self.finish_in,
            "targets": self.targets,
            "tags": dict(self.tags),
            "namespace": self.namespace,
        }


job_specs = st.builds(
    JobSpec,
    status=st.sampled_from(STATUSES),
    finish_in=st.sampled_from([20.0, 90.0, math.inf]),
    targets=st.lists(st.sampled_from(TARGETS), min_size=1, max_size=2, unique=True).map(tuple),
    tags=st.dictionaries(st.sampled_from(TAG_KEYS), st.sampled_from(TAG_VALUES), max_size=4).map(
        lambda tags: tuple(tags.items())
    ),
    namespace=st.sampled_from([None, None, None, "gg"]),
)


@dataclass(frozen=True)
class Scenario:
    """One drawn run: the account, the selection, IAM, faults and other actors' moves."""

    jobs: dict[str, JobSpec]
    page_size: int | None
    chosen: Chosen
    iam: bool
    seed: int
    transient: tuple[float, str]  # rate, kind
    denial: tuple[str, str] | None  # an SCP refuses this call of this job, every time
    moves: tuple[tuple[int, str, str, JobSpec], ...]  # at the n-th pause, kind, job id, spec


RACE_KINDS = ["removed", "recreated", "cancelled", "finished", "retagged", "created", "outside", "group"]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    jobs = draw(st.dictionaries(st.sampled_from(JOB_IDS), job_specs, min_size=1, max_size=6))
    ids = sorted(jobs)
    named = draw(st.lists(st.sampled_from([*ids, "ota-9"]), max_size=2, unique=True))
    tags = draw(st.dictionaries(st.sampled_from(TAG_KEYS[:3]), st.sampled_from(TAG_VALUES), max_size=2))
    chosen = Chosen(
        job_ids=tuple(named),
        tags=tuple(sorted(tags.items())),
        groups=tuple(draw(st.lists(st.sampled_from(["fleet", "other"]), max_size=2, unique=True))),
        prefix=draw(st.sampled_from([None, None, "ota-", "rollout-"])),
        namespace=draw(st.sampled_from([None, None, None, "gg"])),
        force=draw(st.booleans()),
        drain=draw(st.sampled_from([None, None, 60.0, 300.0])),
    )
    if not (chosen.job_ids or chosen.has_filters):
        chosen = Chosen(job_ids=(ids[0],), force=chosen.force, drain=chosen.drain)
    denial = draw(
        st.one_of(
            st.none(),
            st.none(),
            st.tuples(st.sampled_from(["DescribeJob", "DeleteJob", "CancelJob"]), st.sampled_from(ids)),
        )
    )
    moves = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=1, max_value=14),
                st.sampled_from(RACE_KINDS),
                st.sampled_from([*ids, "ota-new", "rollout-new"]),
                job_specs,
            ),
            max_size=3,
        )
    )
    return Scenario(
        jobs=jobs,
        page_size=draw(st.sampled_from([None, 1, 2])),
        chosen=chosen,
        iam=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
        transient=draw(
            st.tuples(
                st.sampled_from([0.0, 0.0, 0.05, 0.15]),
                st.sampled_from(["unavailable", "connection", "lost", "mixed"]),
            )
        ),
        denial=denial,
        moves=tuple(moves),
    )


def the_race(kind: str, job_id: str, spec: JobSpec) -> Any:
    return {
        "removed": lambda: removed(job_id),
        "recreated": lambda: recreated(job_id, **spec.kwargs()),
        "cancelled": lambda: cancelled(job_id),
        "finished": lambda: finished(job_id),
        "retagged": lambda: retagged(job_id, dict(spec.tags)),
        "created": lambda: created(job_id, **spec.kwargs()),
        "outside": lambda: outside_deletion(job_id),
        "group": lambda: group_deleted(spec.targets[0] if spec.targets[0] != "thing:sensor-1" else "other"),
    }[kind]()


def deletable(spec: JobSpec, chosen: Chosen) -> bool:
    """Whether the selection's own rules let this job be deleted with no help."""
    running = spec.status in ("IN_PROGRESS", "SCHEDULED")
    busy = spec.status == "BUSY_CANCELED" or (spec.status == "IN_PROGRESS")
    if chosen.drain is None:
        return chosen.force or not running
    if spec.status == "SCHEDULED" or not busy:
        return True
    return chosen.force or spec.finish_in <= chosen.drain


def build(scenario: Scenario) -> World:
    world = World(seed=scenario.seed, tags_page_size=scenario.page_size)
    for job_id, spec in scenario.jobs.items():
        world.job(job_id, **spec.kwargs())
    world.select(scenario.chosen, iam=scenario.iam)
    rate, kind = scenario.transient
    if rate:
        errors = {
            "unavailable": [unavailable],
            "connection": [connection_error],
            "lost": [read_timeout],
            "mixed": [unavailable, connection_error, read_timeout],
        }[kind]
        for error in errors:
            world.iot.inject(
                Fault(None, error=error, lost=error is read_timeout, times=None, rate=rate / len(errors))
            )
    if scenario.denial is not None:
        operation, job_id = scenario.denial
        world.iot.inject(Fault(operation, job=job_id, error=denied, times=None))
    for pause, kind, job_id, spec in scenario.moves:
        world.at_pause(pause, the_race(kind, job_id, spec))
    return world


def judge(world: World, outcome: Any, scenario: Scenario, selected: set[str]) -> None:
    check_trust(world, outcome)
    chosen, jobs = scenario.chosen, scenario.jobs
    plain = not scenario.moves and not world.journal.denials
    named_elsewhere = any(
        (jobs[job_id].namespace or None) != (chosen.namespace or None)
        for job_id in chosen.job_ids
        if job_id in jobs
    )
    if plain and not named_elsewhere and all(deletable(jobs[job_id], chosen) for job_id in selected):
        assert outcome.succeeded, f"a plain run failed: {outcome!r}"
        assert not world.selected_left()


@pytest.mark.parametrize("path", ["lambda", "cli"])
@SETTINGS
@given(scenario=scenarios())
def test_every_run_keeps_the_trust_invariants(path: str, scenario: Scenario) -> None:
    world = build(scenario)
    selected = set(world.selected_left())

    outcome = run(path, world)

    judge(world, outcome, scenario, selected)
