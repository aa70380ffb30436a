"""What an adversarial review of the plan that starts deletions at once found, pinned: a job
the listing showed running but a look found deletable is in the order once; a job started
while the plan describes the rest stays started; a job the operator did not confirm stays
untouched even when it is created again."""

from __future__ import annotations

import iot_job_cleanup_handler as handler
from faults import TIMING, Chosen, Fault, World, client_error, delete_event, fail, finished, named, race
from iot_job_cleanup_handler import CleanupRequest, IotJobs, JobCleanup
from support import Iot, SimClock


def test_a_job_listed_running_then_found_finished_is_in_the_order_once() -> None:
    world = World(deletion_seconds=30)
    ids = named(30)
    for job_id in ids:
        world.job(job_id, status="IN_PROGRESS" if job_id == ids[3] else "COMPLETED")
    chosen = world.select(Chosen(job_ids=ids))
    world.iot.inject(race("DescribeJob", finished(ids[3]), job=ids[3]))  # done between list and look

    result = handler.handle_on_event(
        delete_event(chosen),
        client=world.iot,
        cloudformation=world.cloudformation,
        timing=TIMING,
        clock=world.clock,
        sleep=world.clock.sleep,
        random=lambda: 0.5,
    )

    assert sorted(result[handler.ORDER_KEY]) == list(range(30))  # a plan is_complete accepts


def test_a_job_started_while_the_plan_looks_stays_started() -> None:
    world = World(deletion_seconds=3)
    ids = named(200)
    for job_id in ids:
        world.job(job_id)
    chosen = world.select(Chosen(job_ids=ids))

    def latency(w: World) -> None:  # every call takes 50 ms
        w.clock.now += 0.05

    world.iot.inject(
        Fault(None, times=None, race=latency),
        fail("DeleteJob", client_error("LimitExceededException", 410), at=10),  # the 10th first delete
    )
    request = CleanupRequest.from_properties(delete_event(chosen)["ResourceProperties"])
    cleanup = JobCleanup(
        IotJobs(world.iot, None, clock=world.clock, sleep=world.clock.sleep),
        request,
        clock=world.clock,
        sleep=world.clock.sleep,
    )

    cleanup.plan()

    # Turned back by the limit, then started by a refill while the rest were looked at: being
    # deleted, or done, never back in line for a second DeleteJob.
    assert cleanup.ledger.place(ids[9]) is not handler.scheduling.Place.WAITING
    assert ids[9] not in cleanup.ledger.queue


def test_a_named_job_not_confirmed_is_left_alone_when_it_is_created_again(iot: Iot, clock: SimClock) -> None:
    iot.create_jobs("ota-a")  # ota-b does not exist when the operator confirms ota-a alone
    request = CleanupRequest.from_properties({"JobIds": ["ota-a", "ota-b"]})
    cleanup = JobCleanup(
        IotJobs(iot.client, None, clock=clock, sleep=clock.sleep),
        request,
        clock=clock,
        sleep=clock.sleep,
        confine_to=frozenset({"ota-a"}),
    )
    cleanup.plan()
    iot.create_jobs("ota-b")  # someone creates it meanwhile

    cleanup.run_until(clock() + 600, 2.0)

    assert "ota-a" not in iot.existing() and "ota-b" in iot.existing()
    assert "ota-b" not in iot.lifecycle.deleted
    assert cleanup.ledger.place("ota-b") is handler.scheduling.Place.HELD_BACK
