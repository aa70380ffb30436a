"""The destroy in CloudFormation's order: a resource after those that depend on it, a nested
stack as one resource of its parent, a stack after the stacks that depend on it, the stages of
a cleanup one after another with their hand-overs; stacks of a Stage's assembly and of nested
stacks, each region with its own IoT, imports of the assembly's exports."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iot as iot

from iot_job_cleanup import IotJobCleanup, rehearse
from iot_job_cleanup.cfn import OfflineValues, UnresolvableError
from iot_job_cleanup.cfn.offline import Exports
from iot_job_cleanup.rehearse import HandlerFunction, Outcome, Report, StackPlan
from iot_job_cleanup.rehearse.assembly import CleanupResource
from iot_job_cleanup.rehearse.long import LongDeletions

FAST = 200.0  # simulated seconds per wall second


def outcome_of(report: Report, stack: str, cleanup: str, stage: int = 1) -> Outcome:
    """The destroy's outcome for a cleanup's stage, by its stack and construct path."""
    (found,) = [
        o
        for o in report.outcomes
        if o.resource.stack == stack
        and o.resource.properties.get("Cleanup") == cleanup
        and o.resource.stage == stage
    ]
    return found


def ran(outcome: Outcome) -> tuple[float, float]:
    assert outcome.started is not None and outcome.ended is not None, outcome
    return outcome.started, outcome.ended


# --------------------------------------------------------------------------- the order, on paper

NOWHERE = HandlerFunction("index.handler", Path("nowhere"), {}, 60.0)


def cleanup(stack: str, logical_id: str, resources: dict[str, Any]) -> CleanupResource:
    resources.setdefault(logical_id, {"Type": "Custom::IotJobCleanup", "Properties": {}})
    return CleanupResource(stack, logical_id, {"JobIds": [f"{logical_id}-job"]}, NOWHERE, NOWHERE)


def plan(name: str, resources: dict[str, Any], *cleanup_ids: str, **more: Any) -> StackPlan:
    cleanups = [cleanup(name, logical_id, resources) for logical_id in cleanup_ids]
    return StackPlan(name, [], [], cleanups, resources, **more)


def test_a_resource_waits_for_every_resource_that_refers_to_it_or_depends_on_it() -> None:
    resources: dict[str, Any] = {
        "Group": {"Type": "AWS::IoT::ThingGroup", "DependsOn": "Last"},  # deleted after...
        "Middle": {"Type": "Custom::IotJobCleanup", "Properties": {"Groups": [{"Ref": "Group"}]}},
        "First": {"Type": "Custom::IotJobCleanup", "Properties": {"X": {"Fn::GetAtt": ["Middle", "Y"]}}},
        "BySub": {"Type": "Custom::IotJobCleanup", "Properties": {"X": {"Fn::Sub": "${Alone.Arn}-${P}"}}},
        "Literal": {"Type": "Custom::IotJobCleanup", "Properties": {"X": {"Fn::Sub": "${!Alone}"}}},
    }
    stack = plan("S", resources, "Last", "Middle", "First", "Alone", "BySub", "Literal")

    order = rehearse.DeletionOrder.of([stack])

    waits = {key[1]: sorted(k[1] for k in keys) for key, keys in order.waits.items()}
    assert waits == {
        "First": [],
        "Middle": ["First"],  # First refers to Middle (GetAtt)
        "Last": ["First", "Middle"],  # Middle refers to Group, which depends on Last
        "BySub": [],
        "Alone": ["BySub"],  # BySub's Fn::Sub names ${Alone.Arn}
        "Literal": [],  # ${!Alone} is the text ${Alone}, no reference
    }
    assert order.nearest(("S", "Last")) == [("S", "Middle")]


def test_a_nested_stack_goes_as_one_resource_and_a_stack_after_the_stacks_that_depend_on_it() -> None:
    parent = plan(
        "Parent",
        {
            "Nested": {"Type": "AWS::CloudFormation::Stack", "DependsOn": ["Below"]},
            "Above": {"Type": "Custom::IotJobCleanup", "DependsOn": ["Nested"]},
        },
        "Above",
        "Below",
        dependencies=("Base",),
    )
    nested = plan("Parent-Nested", {}, "Inside", parent="Parent", parent_resource="Nested", root="Parent")
    base = plan("Base", {}, "Foundation")
    unrelated = plan("Other", {}, "Elsewhere")

    order = rehearse.DeletionOrder.of([base, parent, nested, unrelated])

    waits = {f"{s}/{r}": sorted(k[1] for k in keys) for (s, r), keys in order.waits.items()}
    assert waits == {
        "Parent/Above": [],
        "Parent-Nested/Inside": ["Above"],  # the nested stack goes after what depends on it...
        "Parent/Below": ["Above", "Inside"],  # ...and, all of it, before what it depends on
        "Base/Foundation": ["Above", "Below", "Inside"],  # Parent depends on Base: all of it first
        "Other/Elsewhere": [],
    }
    assert sorted(k[1] for k in order.stack_waits["Base"]) == ["Above", "Below", "Inside"]
    assert sorted(k[1] for k in order.members["Parent"]) == ["Above", "Below", "Inside"]


def test_resources_that_depend_on_each_other_in_a_circle_are_refused() -> None:
    resources = {
        "A": {"Type": "Custom::IotJobCleanup", "DependsOn": "B"},
        "B": {"Type": "Custom::IotJobCleanup", "Properties": {"X": {"Ref": "A"}}},
    }

    with pytest.raises(rehearse.RehearsalError, match="depend on each other in a circle"):
        rehearse.DeletionOrder.of([plan("S", resources, "A", "B")])


def test_a_hand_over_is_neither_the_cleanups_success_nor_its_failure() -> None:
    """Only a cleanup's last stage's result is the cleanup's."""

    def staged(stage: int, state: str) -> Outcome:
        resource = cleanup("S", f"Stage{stage}", {})
        resource.properties.update(Cleanup="Backlog", Stage=str(stage), Stages="2")
        return Outcome(resource, state=state)

    def report(*outcomes: Outcome) -> Report:
        return Report(list(outcomes), [], [], {}, 0, 0.0)

    assert report(staged(1, "handed over"), staged(2, "complete")).ok
    assert not report(staged(1, "handed over"), staged(2, "failed")).ok
    assert not report(staged(1, "handed over"), staged(2, "not sent")).ok
    assert not report(staged(1, "failed"), staged(2, "complete")).ok
    assert report(staged(1, "handed over")).cleanups == {"S/Backlog": [staged(1, "handed over")]}
    assert not report(staged(1, "handed over")).ok  # a hand-over to no stage


def test_an_import_reads_the_export_of_its_own_region_and_names_the_way_out_otherwise() -> None:
    producer = {
        "Resources": {"Fleet": {"Type": "AWS::IoT::ThingGroup", "Properties": {"ThingGroupName": "fleet"}}},
        "Outputs": {
            "FleetName": {
                "Value": {"Ref": "Fleet"},
                "Export": {"Name": {"Fn::Sub": "${AWS::StackName}:fleet"}},
            }
        },
    }
    exports = Exports()
    exports.add(OfflineValues("Producer", producer, region="eu-west-1"))
    importing = {"Fn::ImportValue": "Producer:fleet"}

    here = rehearse_values("Consumer", exports, region="eu-west-1")
    assert here.render(importing) == "fleet"
    with pytest.raises(UnresolvableError) as raised:
        rehearse_values("Consumer", exports, region="us-east-1").render(importing)
    message = str(raised.value)
    assert "no stack of the cloud assembly exports it in us-east-1" in message
    assert "Producer exports it in eu-west-1" in message
    assert "--parameter Producer:fleet=VALUE" in message


def rehearse_values(stack: str, exports: Exports, region: str) -> Any:
    from iot_job_cleanup.cfn import Intrinsics

    return Intrinsics(OfflineValues(stack, {"Resources": {}}, region=region, exports=exports))


# --------------------------------------------------------------------------- one app, rehearsed


@pytest.fixture(scope="module")
def app_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stacks whose teardown has an order: a cleanup behind a thing group that depends on
    another cleanup; a consumer importing a producer's thing group; a parent with a cleanup
    that depends on its nested stack; and a Stage's stack."""
    out = tmp_path_factory.mktemp("teardown") / "cdk.out"
    app = cdk.App(outdir=str(out))

    ordered = cdk.Stack(app, "Ordered")
    first = IotJobCleanup(ordered, "DeletedFirst", job_ids=["first-1"])
    last = IotJobCleanup(ordered, "DeletedLast", job_ids=["last-1"])
    between = iot.CfnThingGroup(ordered, "Between", thing_group_name="ordered-between")
    first.node.add_dependency(between)  # DeletedFirst -> Between -> DeletedLast
    between.node.add_dependency(last)
    IotJobCleanup(ordered, "Independent", job_ids=["independent-1"])

    producer = cdk.Stack(app, "Producer")
    fleet = iot.CfnThingGroup(producer, "Fleet", thing_group_name="shared-fleet")
    IotJobCleanup(producer, "ProducerJobs", job_ids=["producer-1"])
    consumer = cdk.Stack(app, "Consumer")
    # thing_groups: an Fn::ImportValue of Producer's export. The prefix keeps Producer's job out.
    IotJobCleanup(
        consumer, "ConsumerJobs", job_ids=["consumer-1"], thing_groups=[fleet], job_id_prefix="consumer-"
    )

    parent = cdk.Stack(app, "Parent")
    child = cdk.NestedStack(parent, "Child")
    IotJobCleanup(child, "NestedJobs", job_ids=["nested-1"])
    IotJobCleanup(parent, "ParentJobs", job_ids=["parent-1"]).node.add_dependency(child)

    stage = cdk.Stage(app, "Prod")
    IotJobCleanup(cdk.Stack(stage, "Fleet"), "StageJobs", job_ids=["stage-1"])
    app.synth()
    return out


@pytest.fixture(scope="module")
def app_teardown(app_assembly: Path) -> tuple[Report, str]:
    out = io.StringIO()
    report = rehearse.rehearse(app_assembly, time_factor=FAST, out=out, live=False)
    return report, out.getvalue()


def test_every_cleanup_of_the_app_is_rehearsed_and_its_jobs_go(app_teardown: tuple[Report, str]) -> None:
    report, output = app_teardown

    assert report.ok, output
    stacks = {o.resource.stack for o in report.outcomes}
    (nested,) = [name for name in stacks if name.startswith("Parent-")]  # Parent's nested stack
    assert nested.startswith("Parent-ChildNestedStack")  # <parent>-<its resource's logical id>
    assert stacks - {nested} == {
        "Ordered",
        "Producer",
        "Consumer",
        "Parent",
        "Prod-Fleet",  # the Stage's stack, from cdk.out/assembly-Prod
    }
    assert all(o.state == "complete" for o in report.outcomes)
    assert report.jobs_left == [] and report.bystanders_touched == []
    assert all(o.deleted for o in report.outcomes)  # each deleted its own job


def test_a_cleanup_is_deleted_only_after_the_resources_that_depend_on_it(
    app_teardown: tuple[Report, str],
) -> None:
    report, output = app_teardown
    first = outcome_of(report, "Ordered", "DeletedFirst")
    last = outcome_of(report, "Ordered", "DeletedLast")
    independent = outcome_of(report, "Ordered", "Independent")

    assert ran(last)[0] >= ran(first)[1]  # through the thing group between them
    assert ran(independent)[0] < ran(first)[1]  # in parallel with what it has nothing to do with
    assert last.waited_for == [first.resource.name]
    assert f"{last.resource.name}: Delete sent at" in output
    assert f"after {first.resource.name}" in output


def test_a_nested_stack_goes_after_the_parents_resources_that_depend_on_it(
    app_teardown: tuple[Report, str],
) -> None:
    report, _ = app_teardown
    (nested,) = [o for o in report.outcomes if o.resource.properties.get("Cleanup") == "NestedJobs"]
    parent = outcome_of(report, "Parent", "ParentJobs")

    assert nested.resource.stack.startswith("Parent-ChildNestedStack")
    assert ran(nested)[0] >= ran(parent)[1]
    part = {p.name: p for p in report.stacks}[nested.resource.stack]
    assert part.nested_in == "Parent" and part.status == "DELETE_COMPLETE"


def test_a_stack_is_deleted_after_the_stacks_that_depend_on_it_and_its_export_is_imported(
    app_teardown: tuple[Report, str],
) -> None:
    report, output = app_teardown
    producer = outcome_of(report, "Producer", "ProducerJobs")
    consumer = outcome_of(report, "Consumer", "ConsumerJobs")

    # Consumer imports Producer's thing group (Fn::ImportValue of its export): resolved offline.
    assert consumer.resource.properties["ThingGroupNames"] == ["shared-fleet"]
    assert ran(producer)[0] >= ran(consumer)[1]
    parts = {part.name: part for part in report.stacks}
    assert parts["Producer"].after == ["Consumer"]
    assert (parts["Producer"].started or 0) >= (parts["Consumer"].ended or 0)
    assert parts["Producer"].status == parts["Consumer"].status == "DELETE_COMPLETE"
    assert "destroy: Producer: DELETE_IN_PROGRESS at" in output
    assert "Producer DELETE_COMPLETE (" in output and "after Consumer)" in output


def test_an_import_of_an_export_no_stack_has_stops_the_rehearsal_naming_it(
    app_assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "cdk.out"
    shutil.copytree(app_assembly, copy)
    template_file = copy / "Producer.template.json"
    template = json.loads(template_file.read_text())
    template["Outputs"] = {}  # the export is gone
    template_file.write_text(json.dumps(template))

    code = rehearse.main(["--cdk-out", str(copy), "--no-live"])

    error = capsys.readouterr().err
    assert code == 2
    assert "Consumer/ConsumerJobs" in error and "ThingGroupNames" in error
    assert "no stack of the cloud assembly exports it" in error and "--parameter Producer:" in error


def test_a_nested_stacks_cleanup_follows_its_root_stacks_status(app_assembly: Path) -> None:
    """The check itself: when the root stack is not being deleted (here misreported as an
    update's clean-up, as when an update removes the nested stack), the nested stack's own
    DELETE_IN_PROGRESS must not make its cleanup delete: the handler reads RootId."""

    def root_is_updating(stack: str, status: str) -> str:
        if (stack, status) == ("Parent", "DELETE_IN_PROGRESS"):
            return "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
        return status

    out = io.StringIO()
    report = rehearse.rehearse(
        app_assembly,
        stacks=["Parent"],
        time_factor=FAST,
        out=out,
        live=False,
        hooks=rehearse.Hooks(stack_status=root_is_updating),
    )

    assert {o.resource.stack.split("-")[0] for o in report.outcomes} == {"Parent"}
    assert not report.ok, out.getvalue()
    assert sorted(report.jobs_left) == ["nested-1", "parent-1"]  # neither deleted a job
    assert all(o.state == "complete" and not o.deleted for o in report.outcomes)


# --------------------------------------------------------------------------- regions

REGION_JOBS = [f"wave-{index:02d}" for index in range(15)]
SLOW = 600.0  # seconds a deletion takes


def test_two_regions_each_have_their_own_iot_with_ten_deletion_slots(tmp_path: Path) -> None:
    """The same stack in two regions, the same job ids: 20 deletions at once, 10 in each."""
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    for region in ("us-east-1", "eu-west-1"):
        stack = cdk.Stack(app, f"Fleet-{region}", env=cdk.Environment(region=region))
        IotJobCleanup(stack, "Waves", job_ids=REGION_JOBS)
    app.synth()
    out = io.StringIO()

    report = rehearse.rehearse(
        tmp_path / "cdk.out", time_factor=400, deletion_seconds=SLOW, out=out, live=False
    )

    output = out.getvalue()
    assert report.ok, output
    by_region = {o.resource.region: o for o in report.outcomes}
    assert set(by_region) == {"us-east-1", "eu-west-1"}
    for outcome in by_region.values():
        assert sorted(outcome.deleted) == REGION_JOBS
        # Its first 10 deletions started before any deletion could finish: its region's 10 slots.
        assert sum(started < SLOW for started in outcome.deleted.values()) == 10
    assert any(
        "us-east-1 10/10 (ours 10, other stacks 0)" in line and "eu-west-1 10/10 (ours 10" in line
        for line in output.splitlines()
    ), output
    assert report.iot_calls_by_region["eu-west-1"]["DeleteJob"] >= len(REGION_JOBS)
    assert report.iot_calls_by_region["us-east-1"]["DeleteJob"] >= len(REGION_JOBS)


# --------------------------------------------------------------------------- stages, long


@pytest.fixture(scope="module")
def staged_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Backlog: 20 jobs, 3 hours (3 stages). Short: 10 jobs, 1 hour and 2 minutes (2 stages,
    the last of 120 s). Shared: the demo's shape, a cleanup of an hour with 13 named jobs next
    to a 3-hour one (20 jobs: enough to take every slot) in the same stack and region."""
    out = tmp_path_factory.mktemp("staged") / "cdk.out"
    app = cdk.App(outdir=str(out))
    backlog = [f"backlog-{index:02d}" for index in range(20)]
    IotJobCleanup(cdk.Stack(app, "Long"), "Backlog", job_ids=backlog, total_timeout=cdk.Duration.hours(3))
    short = [f"short-{index:02d}" for index in range(10)]
    IotJobCleanup(cdk.Stack(app, "Short"), "Backlog", job_ids=short, total_timeout=cdk.Duration.minutes(62))
    shared = cdk.Stack(app, "Shared")
    IotJobCleanup(shared, "Waves", job_ids=[f"wave-{index:02d}" for index in range(13)])
    staged = [f"staged-{index:02d}" for index in range(20)]
    IotJobCleanup(shared, "Rollouts", job_ids=staged, total_timeout=cdk.Duration.hours(3))
    app.synth()
    return out


def test_the_long_scenario_hands_stage_one_over_and_stage_two_finishes(staged_assembly: Path) -> None:
    out = io.StringIO()
    started = time.monotonic()

    report = rehearse.rehearse(
        staged_assembly, stacks=["Long"], scenario="long", time_factor=800, out=out, live=False
    )

    wall = time.monotonic() - started
    output = out.getvalue()
    assert report.ok, output
    stages = report.cleanups["Long/Backlog"]
    assert [o.resource.stage for o in stages] == [1, 2, 3]
    assert [o.state for o in stages] == ["handed over", "complete", "complete"]
    # One after another, never two at once, in stage order.
    for earlier, later in itertools.pairwise(stages):
        assert ran(later)[0] >= ran(earlier)[1]
    assert ran(stages[0])[1] > 3000  # stage 1 ran out of its hour...
    assert stages[0].left and set(stages[0].left) <= set(stages[1].deleted) | set(stages[0].deleted)
    assert len(stages[0].deleted) + len(stages[1].deleted) == 20  # ...stage 2 deleted the rest
    # Alone in its region, its long deletions may hold all 10 slots (10 of its jobs take long).
    assert "10 jobs of Long/Backlog take 5400 s to delete (at most 10 at once" in output
    assert stages[2].deleted == {}
    assert report.hand_overs == [stages[0]]
    assert "Long/Backlog (3 stages): COMPLETE in stage 2 of 3" in output
    assert f"handed {len(stages[0].left)} over to stage 2" in output
    assert "hand-overs: 1 (Long/Backlog stage 1 to 2)" in output
    assert wall < 40, wall


def staged_cleanup(
    stack: str, name: str, jobs: list[str], hours: int, region: str = "eu-west-1"
) -> list[Outcome]:
    """The destroy's outcomes of a cleanup of ``hours`` stages (one of an hour: a plain one)."""
    stages = {"Stages": str(hours), "Cleanup": name} if hours > 1 else {"Cleanup": name}
    return [
        Outcome(
            CleanupResource(
                stack,
                f"{name}Stage{stage}",
                {"JobIds": jobs, "TotalTimeoutSeconds": "3600", **stages, "Stage": str(stage)},
                NOWHERE,
                NOWHERE,
                region=region,
            )
        )
        for stage in range(1, hours + 1)
    ]


def test_the_long_deletions_go_to_the_jobs_of_cleanups_of_stages_at_most_half_the_slots_when_shared() -> None:
    big = staged_cleanup("S", "Big", [f"big-{index:02d}" for index in range(20)], 3)
    small = staged_cleanup("S", "Small", ["small-1", "small-2", "shared-1"], 2)
    hour = staged_cleanup("S", "Hour", ["wave-1", "shared-1"], 1)  # shared-1: the hour's cleanup's too
    alone = staged_cleanup("T", "Alone", [f"alone-{index:02d}" for index in range(12)], 3, region="us-east-1")
    outcomes = [*big, *small, *hour, *alone]
    plans = [StackPlan("S", [], [], [o.resource for o in [*big, *small, *hour]], {})]
    plans.append(StackPlan("T", [], [], [o.resource for o in alone], {}, region="us-east-1"))
    slow = LongDeletions(plans, usual_seconds=60, per_target_seconds=2)

    line = slow.assign(outcomes)

    def seconds(region: str, job_id: str) -> float:
        return slow(SimpleNamespace(region_name=region, job_id=job_id, targets=["group"]))

    eu = {job for (region, job) in slow.long if region == "eu-west-1"}
    # Shared with a cleanup of an hour: 5 long deletions at most, the cleanups of stages in turn.
    assert eu == {"big-00", "big-01", "big-02", "small-1", "small-2"}
    assert seconds("eu-west-1", "big-00") == 5400 + 2 and seconds("eu-west-1", "small-1") == 5400 + 2
    assert seconds("eu-west-1", "big-03") == 60 + 2  # past the share: the usual time
    assert seconds("eu-west-1", "shared-1") == 60 + 2 and seconds("eu-west-1", "wave-1") == 60 + 2
    # Alone in its region: all 10 slots.
    assert {job for (region, job) in slow.long if region == "us-east-1"} == {
        f"alone-{i:02d}" for i in range(10)
    }
    assert seconds("eu-west-1", "alone-00") == 60 + 2  # another region's job of that id
    assert "3 jobs of S/Big take 5400 s" in line and "2 jobs of S/Small take 5400 s" in line
    assert "eu-west-1: at most 5 at once" in line and "us-east-1: at most 10 at once" in line


def test_after_a_hand_over_the_last_stage_failing_is_the_cleanups_failure(staged_assembly: Path) -> None:
    out = io.StringIO()

    report = rehearse.rehearse(
        staged_assembly,
        stacks=["Short"],
        scenario="long",
        time_factor=800,
        deletion_seconds=5000,  # longer than both stages together
        out=out,
        live=False,
    )

    output = out.getvalue()
    first, last = report.cleanups["Short/Backlog"]
    assert first.state == "handed over" and last.state == "failed"
    assert not report.ok
    assert sorted(report.jobs_left) == [f"short-{index:02d}" for index in range(10)]
    assert "Short/Backlog (2 stages): FAILED" in output and "1 hand-over" in output
    assert "FAILED: see above." in output


def test_the_long_scenario_needs_a_cleanup_of_stages(
    app_assembly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = rehearse.main(["--cdk-out", str(app_assembly), "--scenario", "long", "--stack", "Ordered"])

    error = capsys.readouterr().err
    assert code == 2
    assert "--scenario long rehearses a cleanup longer than an hour" in error


def test_the_long_scenario_leaves_the_cleanups_of_an_hour_half_the_slots(staged_assembly: Path) -> None:
    """The demo's shape: the jobs of the cleanup of stages take long (5400 s), which would
    starve a cleanup of one hour that shares their region if they held every slot; at most 5
    of them take long, so the hour's cleanup finishes as in the calm scenario, and the cleanup
    of stages still needs more than its first hour."""
    out = io.StringIO()
    started = time.monotonic()

    report = rehearse.rehearse(
        staged_assembly, stacks=["Shared"], scenario="long", time_factor=800, out=out, live=False
    )

    wall = time.monotonic() - started
    output = out.getvalue()
    assert report.ok, output
    waves = outcome_of(report, "Shared", "Waves")
    assert waves.state == "complete" and ran(waves)[1] < 1800  # well within its hour
    assert len(waves.deleted) == 13
    stages = report.cleanups["Shared/Rollouts"]
    assert [o.state for o in stages] == ["handed over", "complete", "complete"]
    assert ran(stages[1])[1] > 5400  # its long deletions outlast the first hour
    assert "5 jobs of Shared/Rollouts take 5400 s to delete (at most 5 at once" in output
    assert "every other deletion takes 60 s" in output
    assert output.endswith("OK: every job is gone.\n")
    assert wall < 40, wall
