"""The iot-job-cleanup command line, over HTTP against the emulator (moto's server on loopback).

Time is simulated: the command's clock and sleep are the emulator's, so a 30 s deletion
passes as soon as the command waits for it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.iot.models import iot_backends
from moto.server import ThreadedMotoServer

from conftest import ACCOUNT, REGION, SimClock
from iot_job_cleanup import cli
from iot_job_cleanup.emulator import DeletionLifecycle, DeletionTime, emulated_iot
from iot_job_cleanup.rehearse import free_port

REPO = Path(__file__).resolve().parent.parent
FLEET = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/fleet"
OTHER = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/other"


@dataclass
class Endpoint:
    url: str
    lifecycle: DeletionLifecycle
    clock: SimClock

    def job(self, job_id: str, *, targets: list[str] | None = None, **kwargs: Any) -> str:
        self.lifecycle.create_job(job_id, targets=targets or [FLEET], **kwargs)
        return job_id

    def existing(self) -> set[str]:
        with self.lifecycle._lock:
            self.lifecycle.settle()
            return set(self.lifecycle.backend.jobs)

    def run(self, *argv: str, stdin: io.StringIO | None = None, **kwargs: Any) -> tuple[int, str]:
        out = io.StringIO()
        code = cli.main(
            [*argv, "--endpoint-url", self.url, "--region", REGION],
            out=out,
            stdin=stdin or io.StringIO(""),
            clock=self.clock,
            sleep=self.clock.sleep,
            **kwargs,
        )
        return code, out.getvalue()


@pytest.fixture
def endpoint(clock: SimClock) -> Iterator[Endpoint]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    iot_backends[ACCOUNT][REGION].reset()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        with emulated_iot(ACCOUNT, REGION, clock=clock, deletion_time=DeletionTime(30)) as lifecycle:
            host, port = server.get_host_and_port()
            yield Endpoint(f"http://{host}:{port}", lifecycle, clock)
    finally:
        server.stop()


class Terminal(io.StringIO):
    """Standard input on a terminal, with the user's answer typed in."""

    def isatty(self) -> bool:
        return True


# --------------------------------------------------------------------------- delete


@pytest.mark.parametrize(
    ("selection", "selected"),
    [
        (["--job-id", "ota-1", "--job-id", "ota-2"], {"ota-1", "ota-2"}),
        (["--tag", "fleet=demo"], {"ota-1", "cfg-3"}),
        (["--thing-group", "fleet"], {"ota-1", "ota-2", "cfg-3"}),
        (["--prefix", "ota-"], {"ota-1", "ota-2", "ota-4"}),
        (["--prefix", "ota-", "--thing-group", "fleet", "--tag", "fleet=demo"], {"ota-1"}),
    ],
    ids=["ids", "tag", "group", "prefix", "all-filters"],
)
def test_delete_deletes_exactly_the_selection(
    endpoint: Endpoint, selection: list[str], selected: set[str]
) -> None:
    endpoint.job("ota-1", tags={"fleet": "demo"})
    endpoint.job("ota-2")
    endpoint.job("cfg-3", tags={"fleet": "demo"})
    endpoint.job("ota-4", targets=[OTHER])
    endpoint.job("bystander", targets=[OTHER], tags={"fleet": "other"})
    everything = endpoint.existing()

    code, output = endpoint.run("delete", *selection, "--yes")

    assert code == 0, output
    assert endpoint.existing() == everything - selected
    assert "every selected job is gone" in output


def test_a_dry_run_lists_by_selector_marks_force_and_changes_nothing(endpoint: Endpoint) -> None:
    endpoint.job("ota-1", tags={"fleet": "demo"})
    endpoint.job("ota-running", tags={"fleet": "demo"}, status="IN_PROGRESS")
    endpoint.job("named-one")
    before = dict(endpoint.lifecycle.calls)

    code, output = endpoint.run("delete", "--job-id", "named-one", "--tag", "fleet=demo", "--dry-run")

    assert code == 0, output
    assert endpoint.existing() == {"ota-1", "ota-running", "named-one"}
    assert "1 job(s) named with --job-id" in output
    assert "2 job(s) found in all jobs, matching tags fleet=demo" in output
    assert "ota-running" in output and "needs --force (or --drain)" in output
    assert "Dry run: 3 job(s) would be deleted; nothing was changed." in output
    assert endpoint.lifecycle.calls["DeleteJob"] == before.get("DeleteJob", 0) == 0
    assert endpoint.lifecycle.calls["CancelJob"] == 0


def test_without_yes_and_without_a_terminal_it_refuses_and_says_to_pass_yes(endpoint: Endpoint) -> None:
    endpoint.job("ota-1")

    code, output = endpoint.run("delete", "--job-id", "ota-1")

    assert code == 2
    assert "there is no terminal to ask on. Pass --yes" in output
    assert endpoint.existing() == {"ota-1"}


@pytest.mark.parametrize(("answer", "code", "left"), [("y\n", 0, set()), ("n\n", 1, {"ota-1", "ota-2"})])
def test_without_yes_it_asks_first(endpoint: Endpoint, answer: str, code: int, left: set[str]) -> None:
    endpoint.job("ota-1")
    endpoint.job("ota-2")

    exit_code, output = endpoint.run("delete", "--prefix", "ota-", stdin=Terminal(answer))

    assert exit_code == code, output
    assert "delete 2 job(s)? [y/N]" in output
    assert endpoint.existing() == left


def test_a_selection_that_matches_nothing_is_not_an_error(endpoint: Endpoint) -> None:
    endpoint.job("cfg-1")

    code, output = endpoint.run("delete", "--prefix", "ota-", "--yes")

    assert code == 0
    assert "no job matches, nothing to delete" in output


def test_a_contended_run_rides_out_limit_exceeded_and_deletes_everything(endpoint: Endpoint) -> None:
    ids = [endpoint.job(f"ota-{n:02d}") for n in range(25)]
    endpoint.lifecycle.hold_slots(10, seconds=90)  # other stacks hold every slot
    endpoint.lifecycle.queue_outside_deletions(10, 30, retry_seconds=1)  # and race ours for each freed one
    endpoint.lifecycle.list_lag_seconds = 5  # ListJobs shows a new deletion 5 s late
    ours_at_once: list[int] = []
    original = endpoint.lifecycle.delete_job

    def watched(job_id: str, force: bool, namespace_id: str | None) -> None:
        original(job_id, force, namespace_id)
        ours_at_once.append(len(set(endpoint.lifecycle.deleting) & set(ids)))

    endpoint.lifecycle.delete_job = watched  # type: ignore[method-assign]

    code, output = endpoint.run("delete", "--prefix", "ota-", "--yes")

    assert code == 0, output
    assert not set(ids) & endpoint.existing()
    assert max(ours_at_once) <= 10
    assert endpoint.lifecycle.refusals["LimitExceededException"] > 0
    assert "LimitExceededException 0 times" not in output


def test_ctrl_c_stops_starting_deletions_and_names_those_under_way(endpoint: Endpoint) -> None:
    ids = [endpoint.job(f"ota-{n:02d}") for n in range(25)]

    def interrupted_sleep(seconds: float) -> None:  # Ctrl-C once the first 10 deletions started
        if endpoint.lifecycle.calls["DeleteJob"] >= 10:
            raise KeyboardInterrupt
        endpoint.clock.sleep(seconds)

    out = io.StringIO()
    code = cli.main(
        ["delete", "--prefix", "ota-", "--yes", "--endpoint-url", endpoint.url, "--region", REGION],
        out=out,
        stdin=io.StringIO(""),
        clock=endpoint.clock,
        sleep=interrupted_sleep,
    )
    deletes = endpoint.lifecycle.calls["DeleteJob"]
    endpoint.clock.sleep(300)

    assert code == 130
    output = out.getvalue()
    assert (
        "Interrupted: no more deletions start. 10 deletion(s) under way go on in IoT by themselves" in output
    )
    assert "ota-00" in output.split("Interrupted")[1]
    assert endpoint.lifecycle.calls["DeleteJob"] == deletes == 10
    assert len(set(ids) & endpoint.existing()) == 15  # the 10 under way finished; nothing else started


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["delete", "--yes"], "select jobs with --job-id, --tag, --thing-group or --prefix"),
        (["delete", "--tag", "fleet", "--yes"], "--tag 'fleet': write KEY=VALUE"),
        (["delete", "--prefix", "ota 1", "--yes"], "JobIdPrefix is 'ota 1'"),
        (["delete", "--prefix", "ota-", "--drain", "soon", "--yes"], "--drain 'soon': write a duration"),
    ],
)
def test_usage_errors_exit_2_naming_the_fix(
    endpoint: Endpoint, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _ = endpoint.run(*argv)

    assert code == 2
    assert message in capsys.readouterr().err


def test_jobs_left_exit_1_with_the_reason(endpoint: Endpoint) -> None:
    endpoint.job("ota-running", status="IN_PROGRESS")

    code, output = endpoint.run("delete", "--job-id", "ota-running", "--yes")

    assert code == 1
    assert "'ota-running' is IN_PROGRESS" in output and "force=True" in output
    assert endpoint.existing() == {"ota-running"}


def test_drain_waits_for_the_devices_then_deletes(endpoint: Endpoint) -> None:
    endpoint.job("ota-running", status="IN_PROGRESS", executions_finish_in=240)
    start = endpoint.clock()

    code, output = endpoint.run("delete", "--job-id", "ota-running", "--drain", "10m", "--yes")

    assert code == 0, output
    assert endpoint.existing() == set()
    assert endpoint.lifecycle.calls["CancelJob"] == 1
    assert endpoint.lifecycle.deletion_started["ota-running"] >= start + 240


def test_drain_over_with_devices_busy_exits_1_naming_them(endpoint: Endpoint) -> None:
    endpoint.job("ota-stuck", status="IN_PROGRESS")

    code, output = endpoint.run("delete", "--job-id", "ota-stuck", "--drain", "90s", "--yes")

    assert code == 1
    assert "Job 'ota-stuck' was cancelled, but 1 of its devices were still running it" in output
    assert endpoint.existing() == {"ota-stuck"}


def test_progress_lines_in_a_log_and_a_summary(endpoint: Endpoint) -> None:
    for n in range(30):
        endpoint.job(f"ota-{n:02d}")

    code, output = endpoint.run("delete", "--prefix", "ota-", "--yes")

    lines = [line for line in output.splitlines() if line.startswith("[")]
    assert code == 0
    assert len(lines) >= 3  # every 30 s of a 90 s cleanup, and the last
    assert lines[0].startswith("[--------------------] 0/30 gone, 10 deleting, 20 waiting | slots 10/10")
    assert "~" in lines[0] and "left" in lines[0]
    assert lines[-1].startswith("[####################] 30/30 gone, 0 deleting, 0 waiting")


# --------------------------------------------------------------------------- resume


@dataclass
class ModelledCloudFormation:
    """CloudFormation's answers about one stack, as the command reads them."""

    status: str
    template: dict[str, Any]
    resources: list[dict[str, Any]]
    parameters: list[dict[str, str]]
    stack_id: str = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Fleet/0123"

    class meta:  # noqa: N801 (boto3's shape)
        region_name = REGION

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803
        return {
            "Stacks": [
                {
                    "StackName": "Fleet",
                    "StackId": self.stack_id,
                    "StackStatus": self.status,
                    "Parameters": self.parameters,
                }
            ]
        }

    def list_stack_resources(self, StackName: str) -> dict[str, Any]:  # noqa: N803
        return {"StackResourceSummaries": self.resources}

    def get_template(self, StackName: str, TemplateStage: str) -> dict[str, Any]:  # noqa: N803
        return {"TemplateBody": json.dumps(self.template)}


@dataclass
class ModelledStepFunctions:
    inputs: list[dict[str, Any]]

    def list_executions(self, stateMachineArn: str, maxResults: int) -> dict[str, Any]:  # noqa: N803
        return {
            "executions": [{"executionArn": f"exec-{n}", "startDate": n} for n in range(len(self.inputs))]
        }

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803
        return {"input": json.dumps(self.inputs[int(executionArn.rsplit("-", 1)[1])])}


def fleet_stack(status: str) -> ModelledCloudFormation:
    template = {
        "Parameters": {"WaveIds": {"Type": "CommaDelimitedList"}},
        "Resources": {
            "Group": {"Type": "AWS::IoT::ThingGroup", "Properties": {"ThingGroupName": "fleet"}},
            "RuntimeJobs": {
                "Type": RESOURCE_TYPE,
                "Properties": {
                    "ServiceToken": {"Fn::GetAtt": ["Provider", "Arn"]},
                    "JobTags": [{"Key": "fleet", "Value": "demo"}],
                    "ThingGroupNames": [{"Ref": "Group"}],
                    "Force": "false",
                },
            },
            "Waves": {
                "Type": RESOURCE_TYPE,
                "Properties": {
                    "ServiceToken": {"Fn::GetAtt": ["Provider", "Arn"]},
                    "JobIds": {"Ref": "WaveIds"},
                },
            },
            "Created": {
                "Type": RESOURCE_TYPE,
                "Properties": {
                    "ServiceToken": {"Fn::GetAtt": ["Provider", "Arn"]},
                    "JobIds": [{"Fn::GetAtt": ["CreateJob", "jobId"]}],
                },
            },
            "Done": {"Type": RESOURCE_TYPE, "Properties": {"JobIds": ["done-1"]}},
        },
    }
    resources = [
        {
            "LogicalResourceId": "Group",
            "ResourceType": "AWS::IoT::ThingGroup",
            "PhysicalResourceId": "fleet",
            "ResourceStatus": "CREATE_COMPLETE",
        },
        {
            "LogicalResourceId": "RuntimeJobs",
            "ResourceType": RESOURCE_TYPE,
            "PhysicalResourceId": "p1",
            "ResourceStatus": "DELETE_FAILED",
        },
        {
            "LogicalResourceId": "Waves",
            "ResourceType": RESOURCE_TYPE,
            "PhysicalResourceId": "p2",
            "ResourceStatus": "DELETE_FAILED",
        },
        {
            "LogicalResourceId": "Created",
            "ResourceType": RESOURCE_TYPE,
            "PhysicalResourceId": "p3",
            "ResourceStatus": "DELETE_FAILED",
        },
        {
            "LogicalResourceId": "Done",
            "ResourceType": RESOURCE_TYPE,
            "PhysicalResourceId": "p4",
            "ResourceStatus": "DELETE_COMPLETE",
        },
        {
            "LogicalResourceId": "Waiter",
            "ResourceType": "AWS::StepFunctions::StateMachine",
            "PhysicalResourceId": "arn:states:waiter",
            "ResourceStatus": "CREATE_COMPLETE",
        },
    ]
    parameters = [{"ParameterKey": "WaveIds", "ParameterValue": "wave-1,wave-2"}]
    return ModelledCloudFormation(status, template, resources, parameters)


RESOURCE_TYPE = "Custom::IotJobCleanup"


def resume_clients(endpoint: Endpoint, cloudformation: ModelledCloudFormation) -> cli.Clients:
    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=endpoint.url, region_name=REGION)

    waiter = ModelledStepFunctions(
        [
            {"RequestType": "Delete", "LogicalResourceId": "Other", "ResourceProperties": {"JobIds": ["x"]}},
            {
                "RequestType": "Delete",
                "LogicalResourceId": "Created",
                "ResourceProperties": {"ServiceToken": "arn", "JobIds": ["created-1"], "Force": "false"},
            },
        ]
    )
    return cli.Clients(client("iot"), None, cloudformation, waiter)


def test_resume_finishes_a_failed_stack_deletion_from_what_cloudformation_tells(endpoint: Endpoint) -> None:
    endpoint.job("runtime-1", tags={"fleet": "demo"})
    endpoint.job("runtime-2", tags={"fleet": "demo"})
    endpoint.job("wave-1")
    endpoint.job("wave-2")
    endpoint.job("created-1")
    endpoint.job("done-1")  # its cleanup is DELETE_COMPLETE: not ours to touch now
    endpoint.job("bystander", targets=[OTHER], tags={"fleet": "demo"})

    code, output = endpoint.run(
        "resume", "--stack", "Fleet", "--yes", clients=resume_clients(endpoint, fleet_stack("DELETE_FAILED"))
    )

    assert code == 0, output
    assert endpoint.existing() == {"done-1", "bystander"}
    assert "Fleet/RuntimeJobs: every selected job is gone" in output
    assert "Fleet/Waves: every selected job is gone" in output
    assert "Fleet/Created: every selected job is gone" in output  # its ids from the waiter's Delete


def test_resume_refuses_a_stack_that_is_not_being_torn_down(endpoint: Endpoint) -> None:
    endpoint.job("wave-1")

    code, output = endpoint.run(
        "resume",
        "--stack",
        "Fleet",
        "--yes",
        clients=resume_clients(endpoint, fleet_stack("UPDATE_COMPLETE")),
    )

    assert code == 2
    assert "Stack Fleet is UPDATE_COMPLETE: a cleanup acts only when its stack is torn down" in output
    assert endpoint.existing() == {"wave-1"}


# --------------------------------------------------------------------------- start-up


def test_the_command_starts_without_aws_cdk_or_node() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "constructs"), str(REPO / "lambda")])}
    for argv in (["--help"], ["delete", "--help"]):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "iot_job_cleanup", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "usage: iot-job-cleanup" in result.stdout
        imported = result.stderr
        assert "aws_cdk" not in imported and "jsii" not in imported and "boto3" not in imported


def test_no_region_is_a_usage_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")

    code = cli.main(["delete", "--job-id", "ota-1", "--dry-run"], out=io.StringIO(), stdin=io.StringIO(""))

    assert code == 2
    assert (
        "You must specify a region. Pass --region/--profile, or set AWS_DEFAULT_REGION."
        in capsys.readouterr().err
    )


def test_resume_leaves_the_jobs_of_a_retained_cleanup(endpoint: Endpoint) -> None:
    stack = fleet_stack("DELETE_FAILED")
    stack.template["Resources"]["Waves"]["DeletionPolicy"] = "Retain"
    stack.resources[2]["ResourceStatus"] = "DELETE_SKIPPED"  # Waves: CloudFormation kept it
    for job_id in ("runtime-1", "wave-1", "wave-2", "created-1"):
        endpoint.job(job_id, tags={"fleet": "demo"} if job_id.startswith("runtime") else None)

    code, output = endpoint.run(
        "resume", "--stack", "Fleet", "--yes", clients=resume_clients(endpoint, stack)
    )

    assert code == 0, output
    assert endpoint.existing() == {"wave-1", "wave-2"}
    stack.resources[2]["ResourceStatus"] = "DELETE_FAILED"  # not reached yet: the template says Retain
    code, output = endpoint.run(
        "resume", "--stack", "Fleet", "--yes", clients=resume_clients(endpoint, stack)
    )
    assert "Fleet/Waves: DeletionPolicy Retain: its jobs stay" in output
    assert endpoint.existing() == {"wave-1", "wave-2"}


def test_ctrl_c_during_resume_starts_no_further_cleanup(endpoint: Endpoint) -> None:
    for job_id in ("runtime-1", "runtime-2"):
        endpoint.job(job_id, tags={"fleet": "demo"})
    for job_id in ("wave-1", "wave-2", "created-1"):
        endpoint.job(job_id)

    def interrupted_sleep(seconds: float) -> None:  # Ctrl-C once the first cleanup deletes
        if endpoint.lifecycle.calls["DeleteJob"] >= 1:
            raise KeyboardInterrupt
        endpoint.clock.sleep(seconds)

    out = io.StringIO()
    code = cli.main(
        ["resume", "--stack", "Fleet", "--yes"],
        out=out,
        stdin=io.StringIO(""),
        clock=endpoint.clock,
        sleep=interrupted_sleep,
        clients=resume_clients(endpoint, fleet_stack("DELETE_FAILED")),
    )

    assert code == 130
    assert endpoint.lifecycle.calls["DeleteJob"] == 2  # the first cleanup's two; nothing after
    assert {"wave-1", "wave-2", "created-1"} <= endpoint.existing()


def test_an_unreachable_endpoint_is_a_message_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["delete", "--job-id", "ota-1", "--dry-run", "--endpoint-url", f"http://127.0.0.1:{free_port()}"],
        out=io.StringIO(),
        stdin=io.StringIO(""),
    )

    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("iot-job-cleanup: describe_job: Could not connect") and "Traceback" not in err
