"""The rehearsal end to end: moto's server on loopback, the handler from the asset folder."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iot as iot

import app as demo
from iot_job_cleanup import IotJobCleanup, rehearse
from iot_job_cleanup.cfn import Intrinsics, UnresolvableError
from iot_job_cleanup.rehearse import endpoint, fleet

FAST = 200.0  # simulated seconds per wall second


@pytest.fixture(scope="module")
def demo_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "cdk.out"
    app = cdk.App(outdir=str(out))
    demo.OtaFleetStack(app, "IotJobCleanupDemo")
    app.synth()
    return out


@pytest.fixture
def ports(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The loopback ports the rehearsal's servers were given."""
    given: list[int] = []
    original = endpoint.free_port

    def recording() -> int:
        given.append(original())
        return given[-1]

    monkeypatch.setattr(endpoint, "free_port", recording)
    return given


def port_is_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_calm_destroy_deletes_every_demo_job_and_nothing_else(demo_assembly: Path, ports: list[int]) -> None:
    out = io.StringIO()

    report = rehearse.rehearse(demo_assembly, time_factor=FAST, out=out, live=False)

    assert report.ok, out.getvalue()
    # Three cleanups; the runtime one has three stages (total_timeout of 3 hours), each a resource.
    assert len(report.cleanups) == 3 and len(report.outcomes) == 5
    assert {o.state for o in report.outcomes} == {"complete"}  # stage 1 deleted them all in time
    assert report.jobs_left == []
    assert report.bystanders_touched == []
    assert sum(len(o.resource.job_ids) for o in report.outcomes) == demo.ROLLOUT_WAVES + 1
    runtime = [job for job in report.runtime if not job.why]
    assert report.iot_calls["DeleteJob"] >= demo.ROLLOUT_WAVES + 1 + len(runtime)
    assert "OK: every job is gone." in out.getvalue()
    assert len(ports) == 1 and port_is_closed(ports[0])


def test_the_handler_runs_from_the_asset_folder_of_the_cloud_assembly(demo_assembly: Path) -> None:
    (plan,) = rehearse.read_assembly(demo_assembly)

    modules = {cleanup.is_complete.asset_dir for cleanup in plan.cleanups}
    loaded = rehearse.load_handler(plan.cleanups[0].is_complete)

    assert len(modules) == 1 and next(iter(modules)).parent == demo_assembly
    assert Path(loaded.__file__).parent.parent == plan.cleanups[0].is_complete.asset_dir  # its package
    assert loaded.__name__ in sys.modules and loaded.__name__.startswith("rehearsal_")


def test_contended_destroy_waits_for_the_slots_others_hold(demo_assembly: Path) -> None:
    """Whether a LimitExceededException comes at all depends on how the polls line up with the
    moment a held slot frees (wall time scaled 200 times): riding it out is pinned in simulated
    time by test_limit_exceeded_is_retried_later_with_backoff_and_jitter."""
    out = io.StringIO()

    report = rehearse.rehearse(demo_assembly, scenario="contended", time_factor=FAST, out=out, live=False)

    assert report.ok, out.getvalue()
    assert report.jobs_left == [] and report.bystanders_touched == []
    # Other stacks held every slot for two deletion times: nothing of ours could finish sooner
    # (a later stage starts when the stage before it ends, and ends after it).
    assert min(o.ended or 0.0 for o in report.outcomes) >= 2 * 60


def test_a_cleanup_that_times_out_fails_naming_its_jobs_and_stops_the_server(
    tmp_path: Path, ports: list[int]
) -> None:
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "Slow")
    IotJobCleanup(
        stack,
        "Cleanup",
        job_ids=["slow-1", "slow-2"],
        query_interval=cdk.Duration.seconds(10),
        total_timeout=cdk.Duration.minutes(2),
    )
    app.synth()
    out = io.StringIO()

    report = rehearse.rehearse(
        tmp_path / "cdk.out", time_factor=FAST, deletion_seconds=600, out=out, live=False
    )

    assert not report.ok
    (outcome,) = report.outcomes
    assert outcome.state == "failed"
    assert (
        "2 of 2 jobs not deleted: slow-1 (DELETION_IN_PROGRESS), slow-2 (DELETION_IN_PROGRESS)"
        in outcome.reason
    )
    assert report.jobs_left == ["slow-1", "slow-2"]
    assert "FAILED" in out.getvalue()
    assert port_is_closed(ports[0])


def test_the_server_is_stopped_when_the_rehearsal_fails_midway(demo_assembly: Path, ports: list[int]) -> None:
    def broken_deploy(request: rehearse.HandlerRequest) -> None:
        raise RuntimeError("deploy broke")

    with pytest.raises(RuntimeError, match="deploy broke"):
        rehearse.rehearse(
            demo_assembly,
            time_factor=FAST,
            out=io.StringIO(),
            live=False,
            hooks=rehearse.Hooks(prepared=broken_deploy),
        )
    assert port_is_closed(ports[0])


def test_the_command_line_exit_codes(
    demo_assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rehearse.main(["--cdk-out", str(demo_assembly), "--time-factor", str(FAST), "--no-live"]) == 0
    assert "Time runs x200: 1 s on screen is 200 s simulated." in capsys.readouterr().out

    assert rehearse.main(["--cdk-out", str(tmp_path / "nothing-here")]) == 2
    assert "run `cdk synth` first" in capsys.readouterr().err


def test_the_demo_runtime_jobs_go_and_every_kind_of_bystander_stays_as_it_was(demo_assembly: Path) -> None:
    out = io.StringIO()

    report = rehearse.rehearse(demo_assembly, time_factor=FAST, out=out, live=False)

    output = out.getvalue()
    assert report.ok, output
    runtime = next(o for o in report.outcomes if o.resource.logical_id.startswith("RuntimeRolloutsCleanup"))
    assert runtime.state == "complete" and runtime.resource.job_ids == []
    selected = [job for job in report.runtime if not job.why]
    bystanders = [job for job in report.runtime if job.why]
    # The jobs the rollout function would have made: tagged, in the fleet, with its prefix.
    assert sorted(runtime.selected) == sorted(job.job_id for job in selected)
    assert all(job.job_id.startswith(demo.RUNTIME_PREFIX) for job in selected)
    assert {(job.status, job.listing, job.after) for job in selected} == {
        ("COMPLETED", f"thing group {demo.FLEET}", "gone"),
        ("IN_PROGRESS", f"thing group {demo.FLEET}", "gone"),  # cancelled, drained, deleted
        ("SCHEDULED", "scheduled jobs", "gone"),  # ListJobs by thing group leaves it out
    }
    # Each bystander misses one filter; each is exactly as it was (a running one not cancelled).
    assert {job.why for job in bystanders} == {
        "another thing group",
        "untagged",
        "another tag value",
        "prefix-like id",
    }
    assert all(job.expected == "left alone" and job.after == job.status for job in bystanders)
    assert {job.status for job in bystanders if job.why in ("another thing group", "untagged")} == {
        "COMPLETED",
        "SCHEDULED",  # found by the scheduled listing, then its targets or tags tell
    }
    assert next(job for job in bystanders if job.why == "another tag value").status == "IN_PROGRESS"
    assert "runtime:   created 5 jobs it selects (2 COMPLETED, 1 IN_PROGRESS, 2 SCHEDULED)" in output
    assert "5 more their filters select" in output
    scheduled = ", ".join(f"{job.job_id} (SCHEDULED)" for job in selected if job.status == "SCHEDULED")
    for line in [
        f"    selects: tags fleet=demo-ota AND thing groups {demo.FLEET} AND id prefix 'ota-rollout-'",
        "    runtime jobs deleted, 5 of 5, by the listing that shows them:",
        f"      scheduled jobs: {scheduled}",
        "    bystanders left alone, 6 of 6, by why they are bystanders:",
        "      prefix-like id: ota-rollout_",
    ]:
        assert line in output, line
    assert "5 jobs its filters select" in output
    assert "jobs no cleanup selects that were deleted or changed: none" in output


def test_deployed_jobs_report_the_state_and_executions_a_fleet_leaves_them_in(demo_assembly: Path) -> None:
    plans = rehearse.read_assembly(demo_assembly)
    with rehearse.iot_endpoint(rehearse.ScaledClock(FAST), rehearse.DeletionTime(60)) as iot_endpoint:
        rehearse.provision(plans, iot_endpoint)
        iot = iot_endpoint.iot()
        wave = iot.describe_job(jobId="ota-firmware-2-4-1-wave-01")["job"]
        sync = iot.describe_job(jobId="fleet-config-sync")["job"]

    # One target each (the thing group): one execution, finished or still running.
    assert (wave["status"], wave["jobProcessDetails"]["numberOfSucceededThings"]) == ("COMPLETED", 1)
    assert (sync["status"], sync["jobProcessDetails"]["numberOfInProgressThings"]) == ("IN_PROGRESS", 1)
    assert wave["jobProcessDetails"]["numberOfQueuedThings"] == 0


# --------------------------------------------------------------------------- CloudFormation's rules

SMALL = "Small"
WAVES = ["wave-1", "wave-2", "wave-3"]


@pytest.fixture(scope="module")
def small_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stack with a cleanup that deletes and one whose DeletionPolicy is Retain."""
    out = tmp_path_factory.mktemp("small") / "cdk.out"
    app = cdk.App(outdir=str(out))
    stack = cdk.Stack(app, SMALL)
    IotJobCleanup(stack, "Rollout", job_ids=WAVES)
    IotJobCleanup(stack, "Keep", job_ids=["kept-1", "kept-2"], removal_policy=cdk.RemovalPolicy.RETAIN)
    app.synth()
    return out


def cleanup_id(template: dict[str, Any], prefix: str) -> str:
    (logical_id,) = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "Custom::IotJobCleanup" and logical_id.startswith(prefix)
    ]
    return logical_id


def edited_copy(
    assembly: Path, destination: Path, edit: Callable[[dict[str, Any]], None], stack: str = SMALL
) -> Path:
    """A copy of a cloud assembly whose stack template ``edit`` changed (by hand, as a user
    would get from another version of the app)."""
    shutil.copytree(assembly, destination)
    template_file = destination / f"{stack}.template.json"
    template = json.loads(template_file.read_text())
    edit(template)
    template_file.write_text(json.dumps(template))
    return destination


def phases(output: str) -> list[str]:
    """The phase of each phase line, in order, repeats folded: e.g. ["deploy", "destroy"]."""
    seen: list[str] = []
    for line in output.splitlines():
        phase = line.split(":", 1)[0]
        if phase in ("deploy", "update", "destroy") and (not seen or seen[-1] != phase):
            seen.append(phase)
    return seen


def run_main(argv: list[str], hooks: rehearse.Hooks | None = None) -> tuple[int, rehearse.Report | None]:
    """The command line, and the report its rehearsal (with ``hooks``) returned (None if it had none)."""
    reports: list[rehearse.Report] = []

    def recording(*args: Any, **kwargs: Any) -> rehearse.Report:
        reports.append(rehearse.rehearse(*args, hooks=hooks, **kwargs))
        return reports[-1]

    code = rehearse.main([*argv, "--time-factor", str(FAST), "--no-live"], run=recording)
    return code, (reports[0] if reports else None)


def test_a_retained_cleanup_gets_no_delete_and_its_jobs_stay_without_failing(
    small_assembly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = run_main(["--cdk-out", str(small_assembly)])

    output = capsys.readouterr().out
    assert code == 0, output
    assert report is not None and report.ok
    states = {o.resource.logical_id.rstrip("0123456789ABCDEF"): o for o in report.outcomes}
    assert states["Keep"].state == "retained" and states["Keep"].invocations == 0
    assert states["Rollout"].state == "complete"
    assert report.jobs_kept == ["kept-1", "kept-2"]
    assert report.jobs_left == [] and report.bystanders_touched == []
    assert report.iot_calls["DeleteJob"] == len(WAVES)  # none for the retained jobs
    assert "RETAINED (kept: DeletionPolicy Retain), 2 jobs, no Delete sent" in output
    assert "jobs kept (DeletionPolicy Retain): kept-1, kept-2" in output
    assert "OK: every job is gone, except 2 kept by DeletionPolicy Retain." in output
    assert phases(output) == ["deploy", "destroy"]


def test_an_update_that_renames_a_cleanup_deletes_no_job_and_the_destroy_deletes_them_all(
    small_assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_rollout = cleanup_id(json.loads((small_assembly / f"{SMALL}.template.json").read_text()), "Rollout")

    def rename_rollout_and_change_keep(template: dict[str, Any]) -> None:
        resources = template["Resources"]
        resources["RolloutRenamed0123ABCD"] = resources.pop(old_rollout)
        resources[cleanup_id(template, "Keep")]["Properties"]["JobIds"] = ["kept-1", "kept-3"]

    new = edited_copy(small_assembly, tmp_path / "new.out", rename_rollout_and_change_keep)

    code, report = run_main(["--cdk-out", str(new), "--update-from", str(small_assembly)])

    output = capsys.readouterr().out
    assert code == 0, output
    assert report is not None and report.ok
    requests = {(o.resource.logical_id, o.request): o for o in report.update_outcomes}
    assert set(requests) == {
        ("RolloutRenamed0123ABCD", "Create"),
        (cleanup_id(json.loads((new / f"{SMALL}.template.json").read_text()), "Keep"), "Update"),
        (old_rollout, "Delete"),
    }
    old_delete = requests[(old_rollout, "Delete")]
    assert old_delete.state == "complete"
    assert old_delete.stack_status == "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    # The update deleted nothing: no DeleteJob call, no job changed.
    assert report.update_delete_calls == 0 and report.update_touched == []
    assert (
        "update: 6 jobs existed before the update, none touched (DeleteJob calls during the update: 0)"
        in output
    )
    # The destroy: the renamed cleanup deletes the waves; the retained ones stay.
    assert report.iot_calls["DeleteJob"] == len(WAVES)
    assert report.jobs_left == [] and report.bystanders_touched == []
    assert report.jobs_kept == ["kept-1", "kept-3"]
    assert report.jobs_released == ["kept-2"]  # dropped from JobIds: no cleanup's any more
    assert phases(output) == ["deploy", "update", "destroy"]


def test_an_update_whose_delete_deletes_jobs_fails_the_rehearsal(
    small_assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check itself: if the removed cleanup's Delete did delete (here the stack's status is
    misreported as a teardown), the rehearsal says which jobs the update touched and fails."""
    template = json.loads((small_assembly / f"{SMALL}.template.json").read_text())
    rollout = cleanup_id(template, "Rollout")
    new = edited_copy(small_assembly, tmp_path / "new.out", lambda t: t["Resources"].pop(rollout))

    def teardown_instead_of_cleanup(stack: str, status: str) -> str:
        return "DELETE_IN_PROGRESS" if status.endswith("CLEANUP_IN_PROGRESS") else status

    code, report = run_main(
        ["--cdk-out", str(new), "--update-from", str(small_assembly)],
        rehearse.Hooks(stack_status=teardown_instead_of_cleanup),
    )

    output = capsys.readouterr().out
    assert code == 1, output
    assert report is not None and not report.ok
    assert report.update_touched == WAVES and report.update_delete_calls == len(WAVES)
    assert "update: 6 jobs existed before the update, 3 touched: wave-1 (" in output
    assert "FAILED" in output


def test_an_update_that_changes_a_service_token_is_refused_and_nothing_is_destroyed(
    small_assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = json.loads((small_assembly / f"{SMALL}.template.json").read_text())
    rollout = cleanup_id(template, "Rollout")
    token = template["Resources"][rollout]["Properties"]["ServiceToken"]
    other_framework_function = next(
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
        and "USER_ON_EVENT_FUNCTION_ARN" in json.dumps(resource["Properties"].get("Environment"))
        and logical_id != token["Fn::GetAtt"][0]
    )

    def older_service_token(template: dict[str, Any]) -> None:
        template["Resources"][rollout]["Properties"]["ServiceToken"] = {
            "Fn::GetAtt": [other_framework_function, "Arn"]
        }

    old = edited_copy(small_assembly, tmp_path / "old.out", older_service_token)

    code, report = run_main(["--cdk-out", str(small_assembly), "--update-from", str(old)])

    output = capsys.readouterr().out
    assert code == 1, output
    assert report is not None and not report.ok
    assert f"update: {SMALL}/{rollout}: UPDATE_FAILED: Modifying service token is not allowed." in output
    assert "rolls back to the old template" in output
    assert "Modifying service token is not allowed." in report.stopped
    assert phases(output) == ["deploy", "update"]  # no destroy
    assert report.outcomes == [] and "DeleteJob" not in report.iot_calls


def ssm_job_ids(template: dict[str, Any]) -> None:
    template["Parameters"]["FleetJobIds"] = {
        "Type": "AWS::SSM::Parameter::Value<List<String>>",
        "Default": "/fleet/job-ids",
    }
    template["Resources"][cleanup_id(template, "Rollout")]["Properties"]["JobIds"] = {"Ref": "FleetJobIds"}


def test_a_job_id_from_an_ssm_parameter_is_named_with_the_way_out(
    small_assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assembly = edited_copy(small_assembly, tmp_path / "ssm.out", ssm_job_ids)

    code, report = run_main(["--cdk-out", str(assembly)])

    error = capsys.readouterr().err
    assert (code, report) == (2, None)
    assert error.startswith("rehearse: ") and "Traceback" not in error
    assert "JobIds" in error and "'FleetJobIds'" in error
    assert "its Default '/fleet/job-ids' is the SSM parameter's name, not a value" in error
    assert "--parameter FleetJobIds=VALUE" in error
    assert "BootstrapVersion" not in error  # every CDK stack's SSM parameter: never a job id


def test_a_job_id_from_an_ssm_parameter_is_rehearsed_with_the_value_given(
    small_assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assembly = edited_copy(small_assembly, tmp_path / "ssm.out", ssm_job_ids)

    code, report = run_main(["--cdk-out", str(assembly), "--parameter", "FleetJobIds=ssm-a,ssm-b"])

    assert code == 0, capsys.readouterr().out
    assert report is not None
    rollout = next(o for o in report.outcomes if o.resource.logical_id.startswith("Rollout"))
    assert rollout.resource.job_ids == ["ssm-a", "ssm-b"] and rollout.state == "complete"
    assert report.iot_calls["DeleteJob"] == 2 and report.jobs_left == []


def test_job_ids_from_a_comma_delimited_list_and_fn_split_are_resolved(
    small_assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def job_ids_from_parameters(template: dict[str, Any]) -> None:
        template["Parameters"]["JobIdList"] = {"Type": "CommaDelimitedList", "Default": "list-a,list-b"}
        template["Parameters"]["Nothing"] = {"Type": "CommaDelimitedList", "Default": ""}
        template["Resources"][cleanup_id(template, "Rollout")]["Properties"]["JobIds"] = {
            "Fn::Split": [
                ",",
                {"Fn::Join": [",", ["split-a", {"Fn::Join": [",", {"Ref": "JobIdList"}]}]]},
            ]
        }
        template["Resources"][cleanup_id(template, "Keep")]["Properties"]["JobIds"] = {
            "Fn::Split": [",", {"Fn::Join": [",", [{"Fn::Join": [",", {"Ref": "Nothing"}]}, "kept-x"]]}]
        }
        template["Resources"][cleanup_id(template, "Keep")]["DeletionPolicy"] = "Delete"

    assembly = edited_copy(small_assembly, tmp_path / "list.out", job_ids_from_parameters)

    code, report = run_main(["--cdk-out", str(assembly)])

    assert code == 0, capsys.readouterr().out
    assert report is not None
    job_ids = {o.resource.logical_id.rstrip("0123456789ABCDEF"): o.resource.job_ids for o in report.outcomes}
    assert job_ids == {"Rollout": ["split-a", "list-a", "list-b"], "Keep": ["kept-x"]}
    # The empty CommaDelimitedList gave [""]: CloudFormation sends it, the handler ignores it.
    keep = next(o for o in report.outcomes if o.resource.logical_id.startswith("Keep"))
    assert keep.resource.properties["JobIds"] == ["", "kept-x"]
    assert all(o.state == "complete" for o in report.outcomes)
    assert report.iot_calls["DeleteJob"] == 4 and report.jobs_left == []


def test_intrinsic_functions_over_parameters_resolve_offline_or_name_the_way_out() -> None:
    template = {
        "Parameters": {
            "Waves": {"Type": "CommaDelimitedList", "Default": "w-1,w-2"},
            "Prefix": {"Type": "String", "Default": "ota"},
            "FromSsm": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/fleet/job"},
            "NoDefault": {"Type": "String"},
        },
        "Resources": {},
    }
    intrinsics = Intrinsics.offline("S", template)

    assert intrinsics.render({"Ref": "Waves"}) == ["w-1", "w-2"]
    assert intrinsics.render({"Fn::Select": ["1", {"Ref": "Waves"}]}) == "w-2"
    assert intrinsics.render({"Fn::Join": ["-", [{"Ref": "Prefix"}, {"Ref": "AWS::StackName"}]]}) == "ota-S"
    assert intrinsics.render({"Fn::Sub": "${Prefix}-${AWS::Region}"}) == "ota-us-east-1"
    for unresolvable, named in [
        ({"Ref": "FromSsm"}, "--parameter FromSsm=VALUE"),
        ({"Ref": "NoDefault"}, "parameter 'NoDefault' has no Default: pass --parameter NoDefault=VALUE"),
        ({"Fn::ImportValue": "SharedJobs"}, "Fn::ImportValue 'SharedJobs'"),
        ({"Fn::Select": ["0", {"Fn::Split": [",", {"Ref": "FromSsm"}]}]}, "--parameter FromSsm=VALUE"),
    ]:
        with pytest.raises(UnresolvableError, match=named.replace("(", r"\(")):
            intrinsics.render(unresolvable)

    given = Intrinsics.offline("S", template, {"FromSsm": "job-x", "NoDefault": "y", "SharedJobs": "a,b"})
    assert given.render({"Ref": "FromSsm"}) == "job-x"
    assert given.render({"Ref": "Waves"}) == ["w-1", "w-2"]
    assert given.render({"Fn::Split": [",", {"Fn::ImportValue": "SharedJobs"}]}) == ["a", "b"]


def test_without_the_emulator_extra_the_command_says_what_to_install(demo_assembly: Path) -> None:
    blocker = """
import importlib.abc, sys

class WithoutEmulatorExtra(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("moto", "boto3"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, WithoutEmulatorExtra())
from iot_job_cleanup import rehearse  # importable without the extra
sys.exit(rehearse.main(sys.argv[1:]))
"""
    constructs = Path(__file__).resolve().parents[2] / "constructs"
    env = {**os.environ, "PYTHONPATH": str(constructs)}

    result = subprocess.run(
        [sys.executable, "-c", blocker, "--cdk-out", str(demo_assembly)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("rehearse: ")
    assert "pip install 'iot-job-cleanup[emulator]'" in result.stderr
    assert "Traceback" not in result.stderr


WITHOUT_CDK = """
import runpy, sys

for name in ("aws_cdk", "constructs", "jsii"):  # not installed: importing any of them fails
    sys.modules[name] = None
try:
    runpy.run_module("iot_job_cleanup.rehearse", run_name="__main__", alter_sys=True)
finally:
    assert not any(sys.modules.get(name) for name in ("aws_cdk", "constructs", "jsii"))
"""


def run_without_cdk(*argv: str) -> subprocess.CompletedProcess[str]:
    constructs = Path(__file__).resolve().parents[2] / "constructs"
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_CDK, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(constructs)},
        timeout=300,
        check=False,
    )


def test_the_command_needs_neither_aws_cdk_lib_nor_node(demo_assembly: Path) -> None:
    """It only reads a cloud assembly: --help and the rehearsal itself run without aws-cdk-lib."""
    help_text = run_without_cdk("--help")
    assert help_text.returncode == 0, help_text.stderr
    assert help_text.stdout.startswith("usage: python -m iot_job_cleanup.rehearse ")
    assert "--update-from OLD_CDK_OUT" in help_text.stdout

    rehearsed = run_without_cdk("--cdk-out", str(demo_assembly), "--time-factor", str(FAST), "--no-live")
    assert rehearsed.returncode == 0, rehearsed.stdout + rehearsed.stderr
    assert "OK: every job is gone." in rehearsed.stdout


def test_the_usage_line_shows_the_program_that_was_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["/venv/bin/iot-job-cleanup-rehearse"])
    with pytest.raises(SystemExit):
        rehearse.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: iot-job-cleanup-rehearse ")


# The console script as pip writes it for pyproject's [project.scripts] entry.
CONSOLE_SCRIPT = """#!{python}
import re
import sys
from iot_job_cleanup.rehearse import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""
CONSTRUCTS = Path(__file__).resolve().parents[2] / "constructs"


def run_program(*command: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """A real process of the rehearsal's command, the library from this repository."""
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(CONSTRUCTS)},
        timeout=timeout,
        check=False,
    )


def test_the_usage_line_names_the_console_script_or_the_module_as_each_was_run(tmp_path: Path) -> None:
    installed = Path(sys.executable).parent / "iot-job-cleanup-rehearse"
    script = tmp_path / "bin" / "iot-job-cleanup-rehearse"
    script.parent.mkdir()
    script.write_text(CONSOLE_SCRIPT.format(python=sys.executable))
    script.chmod(0o755)
    module = (sys.executable, "-m", "iot_job_cleanup.rehearse")
    runs = {"iot-job-cleanup-rehearse": [(script,), *([(installed,)] if installed.is_file() else [])]}
    runs["python -m iot_job_cleanup.rehearse"] = [module]

    for name, commands in runs.items():
        for command in commands:
            helped = run_program(*command, "--help")
            assert helped.returncode == 0, helped.stderr
            assert helped.stdout.startswith(f"usage: {name} ["), (command, helped.stdout)
            refused = run_program(*command, "--scenario", "stormy")
            assert refused.returncode == 2
            assert refused.stderr.startswith(f"usage: {name} ["), (command, refused.stderr)
            assert f"\n{name}: error: argument --scenario: invalid choice: 'stormy'" in refused.stderr


# --------------------------------------------------------------------------- the long scenario


@pytest.fixture(scope="module")
def long_demo(demo_assembly: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """``--scenario long`` on the demo app, as `make demo REHEARSE_ARGS="--scenario long"` runs
    it (its own process: what reaches the terminal is its stdout and stderr), and its wall time."""
    started = time.monotonic()
    result = run_program(
        sys.executable, "-m", "iot_job_cleanup.rehearse", "--cdk-out", demo_assembly, "--scenario", "long",
        "--no-live",
    )  # fmt: skip
    return result, time.monotonic() - started


def summary_line(output: str, start: str) -> str:
    """The line of the summary (not of the progress above it) that starts so."""
    (line,) = [line for line in output.split("\nSummary\n")[-1].splitlines() if line.startswith(start)]
    return line


def test_the_long_scenario_on_the_demo_hands_over_between_stages_and_every_job_goes(
    long_demo: tuple[subprocess.CompletedProcess[str], float],
) -> None:
    result, wall = long_demo
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    # Only the jobs the staged cleanup selects take long; the cleanups of an hour finish at once.
    assert (
        "destroy: the long scenario: 5 jobs of IotJobCleanupDemo/RuntimeRolloutsCleanup take 5400 s "
        "to delete (at most 5 at once, the other cleanups keep the rest); every other deletion takes 60 s"
        in output
    )
    for cleanup in ("RolloutJobsCleanup", "ConfigSyncCleanup"):
        line = summary_line(output, f"  IotJobCleanupDemo/{cleanup}")
        seconds = re.search(r": COMPLETE after (\d+) s simulated", line)
        assert seconds and int(seconds.group(1)) < 1800, line
    staged = summary_line(output, "  IotJobCleanupDemo/RuntimeRolloutsCleanup (3 stages): ")
    assert re.search(r"COMPLETE in stage [23] of 3, after (\d+) s simulated", staged), staged
    took = int(re.search(r"after (\d+) s simulated", staged).group(1))  # type: ignore[union-attr]
    assert 3600 < took < 3 * 3600, staged  # more than an hour, within its stages
    assert re.search(r"\n  hand-overs: [1-9]", output) and ", 1 hand-over" in staged
    assert "runtime jobs deleted, 5 of 5" in output and "bystanders left alone, 6 of 6" in output
    assert "  jobs left: none\n" in output
    assert output.endswith("\nOK: every job is gone.\n"), output[-2000:]
    assert wall < 60, wall


def test_the_handlers_log_records_do_not_reach_the_terminal(
    long_demo: tuple[subprocess.CompletedProcess[str], float],
) -> None:
    """The handler logs a stage's hand-over as a WARNING (and more as it goes); with no handler
    of its own Python's last resort would print them bare on stderr. The rehearsal's own lines
    say what happened, the hand-over included."""
    result, _ = long_demo
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert re.search(r"\ndestroy: +\S+: stage 1 of 3 hands over at \d+ s simulated: ", result.stdout)


def test_the_engines_logger_is_routed_only_while_a_rehearsal_runs(small_assembly: Path) -> None:
    engine = logging.getLogger("iot_job_cleanup")
    seen: list[list[logging.Handler]] = []

    def during(request: rehearse.HandlerRequest) -> None:
        seen.append(list(engine.handlers))

    before = list(engine.handlers)
    rehearse.rehearse(
        small_assembly, time_factor=FAST, out=io.StringIO(), live=False, hooks=rehearse.Hooks(prepared=during)
    )

    assert seen and all(any(isinstance(h, logging.NullHandler) for h in handlers) for handlers in seen)
    assert engine.handlers == before


# --------------------------------------------------------------------------- counted nouns

PLURAL_NOUNS = (
    "cleanup resources|handler invocations|jobs|resources|cleanups|stages|hand-overs|times|invocations|"
    "bystanders|others"
)
SINGULAR_NOUNS = (
    "cleanup resource|handler invocation|job|resource|cleanup|stage|hand-over|time|invocation|bystander|other"
)
ONE_WITH_A_PLURAL = re.compile(rf"(?<![\w.-])1 (?:{PLURAL_NOUNS})\b")
MANY_WITH_A_SINGULAR = re.compile(
    rf"(?<![\w.-])(?:0|[2-9]|\d{{2,}}) (?:{SINGULAR_NOUNS})\b(?!s)(?! resource| invocation)"
)


def miscounted(output: str) -> list[str]:
    """The lines where a count and its noun disagree (1 jobs, 2 job, 1 cleanup resources), or
    where the noun hedges (job(s))."""
    return [
        line
        for line in output.splitlines()
        if ONE_WITH_A_PLURAL.search(line) or MANY_WITH_A_SINGULAR.search(line) or "(s)" in line
    ]


def test_the_noun_check_catches_what_it_is_for() -> None:
    wrong = [
        "1 jobs, 1 deleted",
        "1 cleanup resources unchanged",
        "2 handler invocation",
        "answered 1 times",
        "0 hand-over",
        "13 job named",
        "5 job(s)",
    ]
    right = ["1 job, 1 deleted", "2 cleanup resources", "1 handler invocation", "10 jobs", "stage 1 of 3"]
    assert miscounted("\n".join(wrong)) == wrong
    assert miscounted("\n".join(right)) == []


def test_every_count_of_the_rehearsals_output_agrees_with_its_noun(
    demo_assembly: Path,
    small_assembly: Path,
    tmp_path: Path,
    long_demo: tuple[subprocess.CompletedProcess[str], float],
) -> None:
    calm = io.StringIO()
    assert rehearse.rehearse(demo_assembly, time_factor=FAST, out=calm, live=False).ok, calm.getvalue()
    rollout = cleanup_id(json.loads((small_assembly / f"{SMALL}.template.json").read_text()), "Rollout")

    def rename_rollout(template: dict[str, Any]) -> None:
        template["Resources"]["RolloutRenamed0123ABCD"] = template["Resources"].pop(rollout)

    renamed = edited_copy(small_assembly, tmp_path / "renamed.out", rename_rollout)
    update = io.StringIO()
    updated = rehearse.rehearse(renamed, update_from=small_assembly, time_factor=FAST, out=update, live=False)
    assert updated.ok, update.getvalue()
    released = io.StringIO()  # an update's released jobs, none kept by Retain
    rehearse.print_summary(
        rehearse.Report([], [], [], {"DeleteJob": 1}, 1, 0.0, jobs_released=["dropped-1"]), released
    )
    outputs = {
        "calm": calm.getvalue(),
        "update": update.getvalue(),
        "long": long_demo[0].stdout,
        "released": released.getvalue(),
    }

    assert {name: miscounted(output) for name, output in outputs.items()} == {name: [] for name in outputs}
    # The lines that said "1 jobs", "1 cleanup resources", "except 0 kept", "owned by 5 cleanup
    # resources" (2 of them name the 13 jobs) and "1 times":
    assert re.search(
        r"ConfigSyncCleanup\w+: COMPLETE after \d+ s simulated \(.*\), 1 job, 1 deleted, ", outputs["calm"]
    )
    assert (
        "deploy: IotJobCleanupDemo: CREATE_COMPLETE; 13 jobs named by 2 cleanup resources, "
        "3 more select jobs by their filters\n" in outputs["calm"]
    )
    assert "update:   1 cleanup resource unchanged: no request sent to it\n" in outputs["update"]
    assert "OK: every job is gone, except 2 kept by DeletionPolicy Retain.\n" in outputs["update"]
    assert outputs["released"].endswith(
        "LimitExceededException answered 1 time\n  jobs left: none\n"
        "  jobs no cleanup names or selects after the update (left alone): dropped-1\n"
        "  jobs no cleanup selects that were deleted or changed: none\n"
        "OK: every job is gone, except 1 no cleanup names or selects any more.\n"
    )


# --------------------------------------------------------------------------- the runtime actor

RUNTIME = "Runtime"
GROUP = "rt-fleet"


def runtime_assembly(out: Path, **options: Any) -> Path:
    """A stack with a thing group and one cleanup by filters (``options``)."""
    app = cdk.App(outdir=str(out))
    stack = cdk.Stack(app, RUNTIME)
    group = iot.CfnThingGroup(stack, "Fleet", thing_group_name=GROUP)
    iot.CfnThing(stack, "Device", thing_name="rt-device")
    IotJobCleanup(stack, "Jobs", **{"thing_groups": [group], **options})
    app.synth()
    return out


@pytest.fixture(scope="module")
def drained_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runtime") / "cdk.out"
    return runtime_assembly(out, tags={"team": "ota"}, job_id_prefix="rt-", drain=cdk.Duration.minutes(2))


def test_without_a_prefix_the_runtime_jobs_are_listed_under_all_jobs_and_a_look_alike_stays(
    tmp_path: Path,
) -> None:
    assembly = runtime_assembly(tmp_path / "cdk.out", thing_groups=None, tags={"team": "ota"}, force=True)
    out = io.StringIO()

    report = rehearse.rehearse(assembly, time_factor=FAST, out=out, live=False)

    assert report.ok, out.getvalue()
    selected = [job for job in report.runtime if not job.why]
    assert {job.listing for job in selected} == {"all jobs"}
    assert {job.status for job in selected} == {"COMPLETED", "IN_PROGRESS", "SCHEDULED"}  # force
    assert all(job.after == "gone" for job in selected)
    assert {job.why for job in report.runtime if job.why} == {
        "untagged",
        "another tag value",
        "look-alike id",
    }
    assert all(job.after == job.status for job in report.runtime if job.why)


def test_a_scheduled_job_without_force_or_drain_fails_the_cleanup_and_the_summary_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Why the demo's runtime cleanup drains: a SCHEDULED job is not deletable without force.
    The runtime actor makes none for such a cleanup; made anyway, the rehearsal fails on it."""
    assembly = runtime_assembly(tmp_path / "cdk.out", tags={"team": "ota"})
    monkeypatch.setattr(fleet, "runtime_statuses", lambda cleanup: ["COMPLETED", "SCHEDULED"])

    code, report = run_main(["--cdk-out", str(assembly)])

    output = capsys.readouterr().out
    assert code == 1, output
    assert report is not None and not report.ok
    (outcome,) = report.outcomes
    assert outcome.state == "failed" and "is SCHEDULED: without force" in outcome.reason
    (scheduled,) = [job for job in report.runtime if job.status == "SCHEDULED" and not job.why]
    assert scheduled.job_id in report.jobs_left and scheduled.after == "SCHEDULED"
    assert f"{scheduled.job_id} (SCHEDULED, STILL THERE)" in output
    deleted = 2 - len(report.jobs_left)  # the COMPLETED one, if it went before the failure
    assert f"runtime jobs deleted, {deleted} of 2, by the listing that shows them:" in output
    assert "FAILED" in output


def test_a_handler_that_ignores_a_filter_deletes_bystanders_and_the_rehearsal_fails(
    drained_assembly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check itself: were the handler to ignore the tags (here it is sent no JobTags),
    it would delete or cancel the bystanders that miss only them, and the rehearsal says so."""

    def without_tags(request: rehearse.HandlerRequest) -> None:
        request.request["ResourceProperties"].pop("JobTags", None)

    code, report = run_main(["--cdk-out", str(drained_assembly)], rehearse.Hooks(prepared=without_tags))

    output = capsys.readouterr().out
    assert code == 1, output
    assert report is not None
    wronged = {job.job_id: job for job in report.runtime if job.why in ("untagged", "another tag value")}
    assert wronged and set(report.bystanders_touched) == set(wronged)
    assert all(not job.as_expected for job in wronged.values())
    untagged = next(job for job in wronged.values() if job.status == "COMPLETED")
    assert f"{untagged.job_id} (COMPLETED, DELETED)" in output
    assert all(
        job.as_expected for job in report.runtime if job.why in ("another thing group", "prefix-like id")
    )
    assert "FAILED" in output


def test_an_update_that_renames_a_filtered_cleanup_touches_no_runtime_job(
    drained_assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = json.loads((drained_assembly / f"{RUNTIME}.template.json").read_text())
    old = next(name for name, r in template["Resources"].items() if r["Type"] == "Custom::IotJobCleanup")

    def rename(template: dict[str, Any]) -> None:
        template["Resources"]["JobsRenamed0123ABCD"] = template["Resources"].pop(old)

    new = edited_copy(drained_assembly, tmp_path / "new.out", rename, stack=RUNTIME)

    code, report = run_main(["--cdk-out", str(new), "--update-from", str(drained_assembly)])

    output = capsys.readouterr().out
    assert code == 0, output
    assert report is not None and report.ok
    # The runtime jobs existed before the update; the old resource's Delete touched none.
    assert report.update_delete_calls == 0 and report.update_touched == []
    assert output.count("runtime:   created") == 1  # the filters did not change: not played again
    (outcome,) = report.outcomes
    assert outcome.resource.logical_id == "JobsRenamed0123ABCD" and outcome.state == "complete"
    assert report.runtime and all(job.as_expected for job in report.runtime)
