"""The rehearsal end to end: moto's server on loopback, the handler from the asset folder."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

import app as demo
from iot_job_cleanup import IotJobCleanup, rehearse

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
    original = rehearse.free_port

    def recording() -> int:
        given.append(original())
        return given[-1]

    monkeypatch.setattr(rehearse, "free_port", recording)
    return given


def port_is_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_calm_destroy_deletes_every_demo_job_and_nothing_else(demo_assembly: Path, ports: list[int]) -> None:
    out = io.StringIO()

    report = rehearse.rehearse(demo_assembly, time_factor=FAST, out=out, live=False)

    assert report.ok, out.getvalue()
    assert [o.state for o in report.outcomes] == ["complete", "complete"]
    assert report.jobs_left == []
    assert report.bystanders_touched == []
    assert sum(len(o.resource.job_ids) for o in report.outcomes) == demo.ROLLOUT_WAVES + 1
    assert report.iot_calls["DeleteJob"] >= demo.ROLLOUT_WAVES + 1
    assert "OK: every job is gone." in out.getvalue()
    assert len(ports) == 1 and port_is_closed(ports[0])


def test_the_handler_runs_from_the_asset_folder_of_the_cloud_assembly(demo_assembly: Path) -> None:
    (plan,) = rehearse.read_assembly(demo_assembly)

    modules = {cleanup.is_complete.asset_dir for cleanup in plan.cleanups}
    loaded = rehearse.load_handler(plan.cleanups[0].is_complete)

    assert len(modules) == 1 and next(iter(modules)).parent == demo_assembly
    assert Path(loaded.__file__).parent.parent == plan.cleanups[0].is_complete.asset_dir  # its package
    assert loaded.__name__ in sys.modules and loaded.__name__.startswith("rehearsal_")


def test_contended_destroy_rides_out_limit_exceeded(demo_assembly: Path) -> None:
    out = io.StringIO()

    report = rehearse.rehearse(demo_assembly, scenario="contended", time_factor=FAST, out=out, live=False)

    assert report.ok, out.getvalue()
    assert report.limit_exceeded > 0
    assert report.jobs_left == [] and report.bystanders_touched == []
    # Other stacks held every slot for two deletion times: nothing of ours could finish sooner.
    assert min(o.elapsed for o in report.outcomes) >= 2 * 60


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


def test_the_server_is_stopped_when_the_rehearsal_fails_midway(
    demo_assembly: Path, ports: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_deploy(*_: object) -> None:
        raise RuntimeError("deploy broke")

    monkeypatch.setattr(rehearse, "deploy", broken_deploy)

    with pytest.raises(RuntimeError, match="deploy broke"):
        rehearse.rehearse(demo_assembly, time_factor=FAST, out=io.StringIO(), live=False)
    assert port_is_closed(ports[0])


def test_the_command_line_exit_codes(
    demo_assembly: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rehearse.main(["--cdk-out", str(demo_assembly), "--time-factor", str(FAST), "--no-live"]) == 0
    assert "Time runs x200: 1 s on screen is 200 s simulated." in capsys.readouterr().out

    assert rehearse.main(["--cdk-out", str(tmp_path / "nothing-here")]) == 2
    assert "run `cdk synth` first" in capsys.readouterr().err


def test_deployed_jobs_report_the_state_and_executions_a_fleet_leaves_them_in(demo_assembly: Path) -> None:
    plans = rehearse.read_assembly(demo_assembly)
    with rehearse.iot_endpoint(rehearse.ScaledClock(FAST), rehearse.DeletionTime(60)) as (
        endpoint,
        lifecycle,
    ):
        rehearse.deploy(plans, endpoint, lifecycle)
        iot = rehearse.iot_client(endpoint)
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


def edited_copy(assembly: Path, destination: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of a cloud assembly whose stack template ``edit`` changed (by hand, as a user
    would get from another version of the app)."""
    shutil.copytree(assembly, destination)
    template_file = destination / f"{SMALL}.template.json"
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


def run_main(argv: list[str]) -> tuple[int, rehearse.Report | None]:
    """The command line, and the report its rehearsal returned (None if it had none)."""
    reports: list[rehearse.Report] = []

    def recording(*args: Any, **kwargs: Any) -> rehearse.Report:
        reports.append(rehearse.rehearse(*args, **kwargs))
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
    small_assembly: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check itself: if the removed cleanup's Delete did delete (here the stack's status is
    misreported as a teardown), the rehearsal says which jobs the update touched and fails."""
    template = json.loads((small_assembly / f"{SMALL}.template.json").read_text())
    rollout = cleanup_id(template, "Rollout")
    new = edited_copy(small_assembly, tmp_path / "new.out", lambda t: t["Resources"].pop(rollout))
    set_status = rehearse._Rehearsal.set_status

    def teardown_instead_of_cleanup(self: Any, stack: str, status: str) -> None:
        set_status(self, stack, "DELETE_IN_PROGRESS" if status.endswith("CLEANUP_IN_PROGRESS") else status)

    monkeypatch.setattr(rehearse._Rehearsal, "set_status", teardown_instead_of_cleanup)

    code, report = run_main(["--cdk-out", str(new), "--update-from", str(small_assembly)])

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
    intrinsics = rehearse.Intrinsics("S", template)

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
        with pytest.raises(rehearse.RehearsalError, match=named.replace("(", r"\(")):
            intrinsics.render(unresolvable)

    given = rehearse.Intrinsics("S", template, {"FromSsm": "job-x", "NoDefault": "y", "SharedJobs": "a,b"})
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
    constructs = Path(__file__).resolve().parent.parent / "constructs"
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
