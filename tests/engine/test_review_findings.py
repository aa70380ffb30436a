"""Review findings (adversarial review of the guard/ledger rewrite): each test fails on the current code."""

from __future__ import annotations

import io

import pytest

from faults import (
    LONG_WINDOW,
    OUR_TAGS,
    OURS,
    PATHS,
    Chosen,
    Race,
    World,
    check_trust,
    client_error,
    created,
    denied,
    fail,
    i4_violations,
    named,
    outside_deletion,
    race,
    recreated,
    retagged,
    run,
    run_cli,
    run_lambda,
    throttled,
)


def recreated_and_deleted_by_another(job_id: str, seconds: float = 45.0, **job) -> Race:
    """Someone re-creates the job under its id, then starts deleting it (DELETION_IN_PROGRESS)."""

    def act(world: World) -> None:
        recreated(job_id, **job)(world)
        outside_deletion(job_id, seconds)(world)

    return Race("recreated-then-deleted-by-another", job_id, act)


def assert_no_engine_bug(outcome) -> None:
    """The engine's own assertions (ledger, guard) must never be what ends a run."""
    text = outcome.message + repr(outcome.error)
    for sign in ("IllegalTransitionError", "AssertionError", "unexpected error", "This is a bug"):
        assert sign not in text, outcome


def _seen_gone(job_id: str):
    def told_gone(w: World) -> bool:
        return any(
            c.operation == "DescribeJob" and c.job_id == job_id and c.error == "ResourceNotFoundException"
            for c in w.journal.calls
        )

    return told_gone


@pytest.mark.parametrize("path", PATHS)
def test_named_job_seen_gone_then_seen_deleting_again_crashes_the_ledger(path: str) -> None:
    """A named job the cleanup saw gone (ledger GONE), re-created under its id and being deleted
    by another actor, is seen DELETION_IN_PROGRESS by the final look (all_gone): the ledger has
    no "deleting" transition from GONE, so IllegalTransitionError ends the run (I4)."""
    ids = named(12)
    world = World()
    for job_id in ids:
        world.job(job_id)
    world.select(Chosen(job_ids=ids))
    world.at_pause_when(_seen_gone("ota-000"), recreated_and_deleted_by_another("ota-000"))

    outcome = run(path, world)

    assert world.journal.races, "never raced"
    check_trust(world, outcome)
    assert_no_engine_bug(outcome)


@pytest.mark.parametrize("path", PATHS)
def test_found_job_seen_gone_then_listed_deleting_again_crashes_the_ledger(path: str) -> None:
    """The same hole on the filters' path: a found job the cleanup deleted and saw gone, re-created
    under its id (with the selection's prefix) and being deleted by another actor, is listed
    DELETION_IN_PROGRESS by the next walk; ``_found`` moves it GONE -> DELETING, which the
    ledger forbids: IllegalTransitionError (I4). A listing that lags behind DescribeJob does the same."""
    world = World()
    for job_id in named(12):
        world.job(job_id)
    world.select(Chosen(prefix="ota-"))
    world.at_pause_when(_seen_gone("ota-000"), recreated_and_deleted_by_another("ota-000"))

    outcome = run_lambda(world, timing=LONG_WINDOW) if path == "lambda" else run_cli(world)

    assert world.journal.races, "never raced"
    check_trust(world, outcome)
    assert_no_engine_bug(outcome)


def _looked_at(job_id: str, times: int = 1):
    def looked(w: World) -> bool:
        answered = [
            c for c in w.journal.calls if c.operation == "DescribeJob" and c.job_id == job_id and not c.error
        ]
        return len(answered) >= times

    return looked


@pytest.mark.parametrize("path", PATHS)
def test_a_job_once_judged_not_ours_and_recreated_under_its_id_as_ours_is_left_while_success_is_reported(
    path: str,
) -> None:
    """I2: NOT_OURS is sticky in the ledger for the rest of the JobCleanup (the whole command-line
    run; an is_complete window): ``_found`` returns at once for a NOT_OURS id, so a job deleted
    and re-created under that id, now matching the selection, is never looked at again, and the
    walk that lists it counts as having found nothing: success with a selected job left."""
    world = World()
    for job_id in named(12):
        world.job(job_id)
    world.job("ota-900", namespace="greengrass")  # listed by the prefix walk, not selected
    world.select(Chosen(prefix="ota-"))
    # (the command line's preview looks at it once before the run does)
    looks = 1 if path == "lambda" else 2
    world.at_pause_when(_looked_at("ota-900", looks), recreated("ota-900"))  # in no namespace now: selected

    outcome = run_lambda(world, timing=LONG_WINDOW) if path == "lambda" else run_cli(world)

    assert world.journal.races, "never raced"
    check_trust(world, outcome)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "chosen", [Chosen(job_ids=("ota-1",)), Chosen(prefix="ota-")], ids=["named", "found"]
)
def test_delete_job_answering_not_found_for_a_job_that_describe_job_still_shows_spins_forever(
    path: str, chosen: Chosen
) -> None:
    """I4: ``Guard._after_refusal`` returns a ResourceNotFound refusal's new look before the
    "same refusal twice" check. When DescribeJob still shows the job (deletable, selected),
    ``start_deletions`` puts it back at the head of the queue with a fresh clearance and sends
    DeleteJob again at once, forever: no backoff, no error, no clock advance (it burns the
    whole Lambda window in DeleteJob/DescribeJob calls; the harness's call cap stops it).
    IoT may answer a 404 for a job it still describes (a namespace that does not match the
    job's, eventual consistency): the facts sheet says decide from DescribeJob, not from the code."""
    world = World(call_cap=20_000)
    world.job("ota-1")
    world.select(chosen)
    world.iot.inject(
        fail("DeleteJob", client_error("ResourceNotFoundException", 404), job="ota-1", times=None)
    )

    outcome = run(path, world)

    assert not outcome.hung, f"{outcome!r}: {world.journal.count('DeleteJob')} DeleteJob calls"
    check_trust(world, outcome)


@pytest.mark.parametrize("path", PATHS)
def test_cancel_job_answering_not_found_for_a_running_job_recurses_without_end(path: str) -> None:
    """I4: the same hole for CancelJob: ``_cancel`` -> ``Guard.cancel`` -> 404 -> a new look (still
    running) -> ``_apply`` -> CANCEL -> ``_cancel``... with no bound: a RecursionError (or, where
    the look is slow, a Lambda timeout), reported as "an unexpected error", instead of a
    refusal naming the job, the call and the error."""
    world = World(call_cap=20_000)
    world.job("ota-1", status="IN_PROGRESS", finish_in=60)
    world.select(Chosen(job_ids=("ota-1",), drain=600))
    world.iot.inject(
        fail("CancelJob", client_error("ResourceNotFoundException", 404), job="ota-1", times=None)
    )

    outcome = run(path, world)

    assert not outcome.hung, f"{outcome!r}: {world.journal.count('CancelJob')} CancelJob calls"
    check_trust(world, outcome)
    assert_no_engine_bug(outcome)
    assert "RecursionError" not in outcome.message, outcome


@pytest.mark.parametrize("path", PATHS)
def test_a_throttled_tag_look_up_in_the_last_look_makes_the_guard_assert_on_its_own_look(path: str) -> None:
    """I4: ``Guard.look`` stamps the look (``Look.at``) right after DescribeJob, *before* it reads
    the tags. When the tags must be read afresh (the walk's read is over TAG_FRESH_SECONDS old:
    the job waited for a slot) and ListTagsForResource is throttled a few times, the paced
    retries (0.5 + 1 + 2 s) outlast LOOK_FRESH_SECONDS, and ``Guard.delete`` raises
    AssertionError("DeleteJob ... on a stale look") on the clearance it has just made. A
    throttled answer is routine; the run fails with "an unexpected error"."""
    world = World()
    world.lifecycle.hold_slots(10, seconds=400)  # other stacks' deletions hold every slot
    world.job("rollout-1", tags=OURS)
    world.select(Chosen(tags=OUR_TAGS))
    world.iot.inject(
        fail(
            "ListTagsForResource",
            throttled,
            when=lambda call, w: w.clock() - w.clock.started > 350,
            times=3,
        )
    )

    outcome = run_lambda(world, timing=LONG_WINDOW) if path == "lambda" else run_cli(world)

    check_trust(world, outcome)
    assert_no_engine_bug(outcome)
    assert outcome.succeeded, outcome


@pytest.mark.parametrize("path", PATHS)
def test_throttled_retries_of_delete_job_outlast_the_look_and_delete_a_job_recreated_meanwhile(
    path: str,
) -> None:
    """I1: the guard checks its look is fresh (LOOK_FRESH_SECONDS = 2) *before* the call, but
    ``IotJobs._send`` then retries a throttled DeleteJob on the spot, pacing the operation (its
    interval only grows, up to 2 s, and never comes down in the run). Here an earlier throttled
    deletion has slowed DeleteJob; the next one waits ~1 s after its look, is throttled twice,
    and reaches IoT ~5 s after the look: a job deleted and re-created under the id on another
    fleet 4 s before the call (after the look) is deleted. Nothing looks again between retries."""
    world = World()
    world.job("rollout-000")
    world.job("rollout-001")
    world.select(Chosen(groups=("fleet",)))
    world.iot.inject(
        fail("DeleteJob", throttled, job="rollout-000", times=4),
        fail("DeleteJob", throttled, job="rollout-001", times=2),
        race(
            "DeleteJob", recreated("rollout-001", targets=["other-fleet"]), job="rollout-001", phase="after"
        ),
    )

    outcome = run(path, world)

    assert world.journal.races, "never raced"
    check_trust(world, outcome)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _both(*moves):
    def act(world: World) -> None:
        for move in moves:
            move(world)

    return act


def test_an_unconfirmed_job_adopted_as_deleting_then_listed_crashes_the_ledger() -> None:
    """I4 (command line, interactive confirmation): a selected job the operator did not confirm
    (created while the prompt was open) that someone else is deleting is adopted by ``survey``
    (``_adopt_discovered_deletions`` ignores ``confine_to``) as DELETING; the walk then lists it,
    and ``_found`` applies ``confine_to`` first: ``held_back`` from DELETING, which the ledger
    forbids: IllegalTransitionError, "This is a bug in iot-job-cleanup"."""
    world = World()
    world.job("rollout-1", tags=OURS)
    world.select(Chosen(tags=OUR_TAGS))
    world.iot.inject(
        race(
            "ListJobs",
            _both(created("rollout-late", tags=OURS), outside_deletion("rollout-late", 45)),
            when=lambda call, w: call.params.get("status") == "DELETION_IN_PROGRESS",
        )
    )

    outcome = run_cli(world, stdin=Terminal("y\n"), yes=False)

    assert world.journal.races, "never raced"
    assert not i4_violations(outcome), outcome
    assert_no_engine_bug(outcome)


def test_command_line_deletes_a_job_whose_tags_were_taken_off_after_the_walk_read_them() -> None:
    """I1 (command line): the last look trusts tags read in the last five minutes
    (``tags_read_recently``), so a job whose selecting tag is removed after the walk read it,
    while it waits for a slot, is still deleted. The README's excuse, "IAM backs this up", holds
    only for the construct's tag-conditioned role; the command line runs with the operator's
    credentials, which have no such condition (the world's IAM model is off here)."""
    world = World()
    world.lifecycle.hold_slots(10, seconds=120)
    world.job("rollout-1", tags=OURS)
    world.select(Chosen(tags=OUR_TAGS), iam=False)
    world.at_pause(5, retagged("rollout-1", {"fleet": "keep-me"}))

    outcome = run_cli(world)

    assert world.journal.races, "never raced"
    check_trust(world, outcome)


def test_a_refused_cancel_is_reported_as_a_job_this_run_cancelled() -> None:
    """Misleading answer (command line): ``_cancel`` now records the job DRAINING with
    ``cancelled_by_us`` *before* CancelJob is sent, and nothing undoes it when IoT refuses the
    call (an SCP denying iot:CancelJob). The run fails, rightly, but its report says the job
    was cancelled by this run and is "not deleted", while it is still IN_PROGRESS: the
    operator is told the devices' rollout was stopped when it was not."""
    world = World()
    world.job("rollout-1", status="IN_PROGRESS", finish_in=600)
    world.select(Chosen(job_ids=("rollout-1",), drain=900))
    world.iot.inject(fail("CancelJob", denied, job="rollout-1", times=None))

    outcome = run_cli(world)

    assert world.truth("rollout-1").status == "IN_PROGRESS"
    assert not outcome.succeeded, outcome
    assert "this run cancelled" not in outcome.output, outcome
