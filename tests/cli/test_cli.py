"""The iot-job-cleanup command line, over HTTP against the emulator (moto's server on loopback).

Time is simulated: the command's clock and sleep are the emulator's, so a 30 s deletion
passes as soon as the command waits for it.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import NoCredentialsError

import iot_job_cleanup
from iot_job_cleanup import cli
from iot_job_cleanup.engine import load_engine
from iot_job_cleanup.rehearse import free_port
from support import ACCOUNT, PYTHONPATH, REGION, Endpoint, fail_calls

OTHER = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/other"


class Terminal(io.StringIO):
    """Standard input on a terminal, with the user's answer typed in; ``meanwhile`` happens
    in the account while the question is open."""

    def __init__(self, answer: str, meanwhile: Callable[[], None] | None = None) -> None:
        super().__init__(answer)
        self.meanwhile = meanwhile

    def isatty(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        if self.meanwhile is not None:
            self.meanwhile()
        return super().readline(size)


def boto3_clients(endpoint: Endpoint) -> cli.Clients:
    """The clients the command would make, for a test to hook into."""
    return cli.Clients(endpoint.client("iot"), None, None)


def interrupt_when(
    endpoint: Endpoint, condition: Callable[[], bool], interruption: Callable[[], None]
) -> Callable[[float], None]:
    """A sleep that interrupts the command (Ctrl-C, SIGTERM) at its first pause once ``condition`` holds."""

    def sleep(seconds: float) -> None:
        if condition():
            interruption()
        endpoint.clock.sleep(seconds)

    return sleep


def ctrl_c() -> None:
    raise KeyboardInterrupt


def named(*job_ids: str) -> list[str]:
    return [arg for job_id in job_ids for arg in ("--job-id", job_id)]


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
    assert "1 job named with --job-id:" in output
    assert "2 jobs found in all jobs, matching tags fleet=demo:" in output
    assert "ota-running" in output and "needs --force (or --drain)" in output
    assert "Dry run: 3 jobs would be deleted; nothing was changed." in output
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
    listing, prompt = output.split("delete 2 jobs? [y/N]")[0], "delete 2 jobs? [y/N]"
    assert prompt in output
    assert "2 jobs found in all jobs" in listing and "ota-1" in listing and "ota-2" in listing
    assert endpoint.existing() == left


def test_the_prompt_lists_20_jobs_per_selector_and_counts_the_rest(endpoint: Endpoint) -> None:
    for n in range(22):
        endpoint.job(f"ota-{n:02d}")

    code, output = endpoint.run("delete", "--prefix", "ota-", stdin=Terminal("n\n"))

    assert code == 1
    listing = output.split("delete 22 jobs? [y/N]")[0]
    assert "ota-19" in listing and "ota-20" not in listing
    assert "  ... and 2 more (--dry-run lists every one)" in listing
    assert len(endpoint.existing()) == 22


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
    assert "Interrupted: no more deletions start. 10 deletions under way go on in IoT by themselves" in output
    assert "ota-00" in output.split("Interrupted")[1]
    assert "no further action needed" not in output  # 15 jobs are not deleted
    assert "10 selected jobs not deleted, their deletion not started: ota-10, ota-11," in output
    assert "The filters' listing had not finished: more jobs may match." in output  # the other 5
    assert endpoint.lifecycle.calls["DeleteJob"] == deletes == 10
    assert len(set(ids) & endpoint.existing()) == 15  # the 10 under way finished; nothing else started


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["delete", "--yes"], "select jobs with --job-id, --tag, --thing-group or --prefix"),
        (["delete", "--tag", "fleet", "--yes"], "--tag 'fleet': write KEY=VALUE"),
        (["delete", "--prefix", "ota 1", "--yes"], "--prefix 'ota 1': a prefix is 1 to 64 characters"),
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
    assert "'ota-running' is IN_PROGRESS" in output and "--force" in output
    assert "force=True" not in output  # the construct's words, not the command's
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
    assert "Job 'ota-stuck' was cancelled, but 1 of its devices was still running it" in output
    assert "Give the devices longer (--drain), or pass --force to delete it anyway." in output
    assert "force=True" not in output
    assert "1 job this run cancelled is not deleted: ota-stuck." in output
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


def test_the_bar_counts_the_jobs_found_while_deleting(endpoint: Endpoint) -> None:
    for n in range(12):
        endpoint.job(f"ota-{n:02d}")
    created: list[str] = []

    def sleep(seconds: float) -> None:  # 3 more are created once the deletions are under way
        if not created:
            created.extend(endpoint.job(f"ota-late-{n}") for n in range(3))
        endpoint.clock.sleep(seconds)

    code, output = endpoint.run("delete", "--prefix", "ota-", "--yes", sleep=sleep)

    assert code == 0, output
    assert endpoint.existing() == set()  # --yes: the jobs found later are deleted too
    last = [line for line in output.splitlines() if line.startswith("[")][-1]
    assert last.startswith("[####################] 15/15 gone, 0 deleting, 0 waiting")


def test_a_running_job_its_own_preview_marked_is_refused_before_any_deletion(endpoint: Endpoint) -> None:
    for n in range(24):
        endpoint.job(f"ota-{n:02d}", tags={"fleet": "demo"})
    endpoint.job("ota-live", tags={"fleet": "demo"}, status="IN_PROGRESS")

    code, output = endpoint.run("delete", "--tag", "fleet=demo", "--yes")

    assert code == 1  # jobs are left (the contract's 1), as when the engine itself refuses one
    said = "".join(line for line in output.splitlines(True) if not line.startswith("Finding jobs"))
    assert said.startswith("iot-job-cleanup: nothing was deleted: 1 selected job still running")
    assert "'ota-live' is IN_PROGRESS" in output
    assert "Pass --drain DURATION" in output and "or --force to delete them while they run" in output
    assert "force=True" not in output and "Force:" not in output
    assert endpoint.lifecycle.calls["DeleteJob"] == endpoint.lifecycle.calls["CancelJob"] == 0
    assert len(endpoint.existing()) == 25


@pytest.mark.parametrize(
    ("selection", "left"),
    [
        (["--prefix", "ota-"], "1 deletion under way goes on in IoT by itself: ota-1."),
        (named("ota-1", "ota-2"), "2 selected jobs not deleted, their deletion not started: ota-1, ota-2."),
    ],
    ids=["found", "named"],
)
def test_a_job_that_starts_running_after_the_preview_is_named_in_the_commands_words(
    endpoint: Endpoint, selection: list[str], left: str
) -> None:
    endpoint.job("ota-1")
    endpoint.job("ota-2")

    def devices_start_ota_2() -> None:  # while the question is open
        endpoint.lifecycle.set_status("ota-2", "IN_PROGRESS")

    code, output = endpoint.run("delete", *selection, stdin=Terminal("y\n", devices_start_ota_2))

    assert code == 1
    assert "job 'ota-2' is IN_PROGRESS, and IoT deletes a running job only with force" in output
    assert "Pass --drain DURATION" in output and "--force" in output and "force=True" not in output
    assert left in output  # what became of the other job
    assert "every selected job is gone" not in output
    assert "ota-2" in endpoint.existing()


@pytest.mark.parametrize(
    "selection", [["--prefix", "ota-"], ["--tag", "fleet=demo"], ["--thing-group", "fleet"]]
)
def test_deletions_refused_by_iam_exit_1_with_the_engines_message(
    endpoint: Endpoint, capsys: pytest.CaptureFixture[str], selection: list[str]
) -> None:
    endpoint.job("ota-1", tags={"fleet": "demo"})
    endpoint.job("ota-2", tags={"fleet": "demo"})
    clients = boto3_clients(endpoint)
    fail_calls(clients.iot, "DeleteJob", "AccessDeniedException", 403, times=1000)  # an SCP denies it

    code, output = endpoint.run("delete", *selection, "--yes", clients=clients)

    assert code == 1, output
    assert "every selected job is gone" not in output
    (refusal,) = [line for line in output.splitlines() if "AccessDeniedException" in line]
    assert refusal.startswith("iot-job-cleanup: IoT refused DeleteJob on job 'ota-")
    assert "service control policy" in refusal
    assert "Traceback" not in output + capsys.readouterr().err
    assert endpoint.existing() == {"ota-1", "ota-2"}


def test_a_confirmation_covers_exactly_the_jobs_it_listed(endpoint: Endpoint) -> None:
    endpoint.job("ota-1")
    endpoint.job("ota-2")

    def more_are_created() -> None:  # while the question is open
        endpoint.job("ota-3")
        endpoint.job("ota-4")

    code, output = endpoint.run("delete", "--prefix", "ota-", stdin=Terminal("y\n", more_are_created))

    assert code == 1, output  # selected jobs are left: the ones nobody confirmed
    listing = output.split("delete 2 jobs? [y/N]")[0]
    assert "ota-1" in listing and "ota-2" in listing
    assert endpoint.existing() == {"ota-3", "ota-4"}
    assert endpoint.lifecycle.calls["DeleteJob"] == 2
    assert "the 2 jobs you confirmed are gone" in output and "every selected job is gone" not in output
    assert (
        "2 jobs matched after you confirmed and were left alone: ota-3, ota-4; "
        "run the command again to delete them." in output
    )


def test_a_confirmation_covers_named_jobs_only_as_they_were_listed(endpoint: Endpoint) -> None:
    """A --job-id that did not exist at the prompt, created while it was open, is left alone."""
    endpoint.job("ota-1")

    def the_named_one_is_created() -> None:  # while the question is open
        endpoint.job("ota-2")

    code, output = endpoint.run(
        "delete", *named("ota-1", "ota-2"), stdin=Terminal("y\n", the_named_one_is_created)
    )

    assert code == 1, output
    assert endpoint.existing() == {"ota-2"}
    assert endpoint.lifecycle.calls["DeleteJob"] == 1
    assert "ota-2" in output.split("delete 1 job? [y/N]")[1]


def test_ctrl_c_after_a_cancel_names_the_job_cancelled_and_not_deleted(endpoint: Endpoint) -> None:
    endpoint.job("ota-live", status="IN_PROGRESS", executions_finish_in=240)
    endpoint.job("ota-done")

    code, output = endpoint.run(
        "delete",
        *named("ota-live", "ota-done"),
        "--drain",
        "10m",
        "--yes",
        sleep=interrupt_when(endpoint, lambda: endpoint.lifecycle.calls["CancelJob"] >= 1, ctrl_c),
    )

    assert code == 130
    assert "1 deletion under way goes on in IoT by itself: ota-done." in output
    assert "1 job this run cancelled is not deleted: ota-live. Run the same command again" in output
    assert "no further action needed" not in output
    assert endpoint.lifecycle.snapshot_of("ota-live").status == "CANCELED"


def test_ctrl_c_right_after_the_cancel_of_a_named_job_names_both_jobs(endpoint: Endpoint) -> None:
    endpoint.job("ota-live", status="IN_PROGRESS", executions_finish_in=240)
    endpoint.job("ota-done")
    clients = boto3_clients(endpoint)

    def ctrl_c_as_the_answer_arrives(**_: object) -> None:
        raise KeyboardInterrupt

    clients.iot.meta.events.register("after-call.iot.CancelJob", ctrl_c_as_the_answer_arrives)

    code, output = endpoint.run(
        "delete", *named("ota-live", "ota-done"), "--drain", "10m", "--yes", clients=clients
    )

    assert code == 130
    report = output.split("Interrupted: ")[1]
    assert "no further action needed" not in report
    assert "ota-live" in report and "ota-done" in report
    assert endpoint.lifecycle.snapshot_of("ota-live").status == "CANCELED"
    assert endpoint.existing() == {"ota-live", "ota-done"}


def test_ctrl_c_with_only_deletions_under_way_needs_nothing_more(endpoint: Endpoint) -> None:
    for n in range(3):
        endpoint.job(f"ota-{n}")

    code, output = endpoint.run(
        "delete",
        *named("ota-0", "ota-1", "ota-2"),
        "--yes",
        sleep=interrupt_when(endpoint, lambda: endpoint.lifecycle.calls["DeleteJob"] >= 3, ctrl_c),
    )

    assert code == 130
    assert (
        "Interrupted: no more deletions start. 3 deletions under way go on in IoT by themselves: "
        "ota-0, ota-1, ota-2; no further action needed." in output
    )


def test_sigterm_stops_the_run_as_ctrl_c_does_and_exits_143(endpoint: Endpoint) -> None:
    ids = [endpoint.job(f"ota-{n:02d}") for n in range(12)]

    def killed_silently(signum: int, frame: object) -> None:  # what SIGTERM did before
        raise SystemExit(143)

    before = signal.signal(signal.SIGTERM, killed_silently)
    try:
        code, output = endpoint.run(
            "delete",
            *named(*ids),
            "--yes",
            sleep=interrupt_when(
                endpoint,
                lambda: endpoint.lifecycle.calls["DeleteJob"] >= 10,
                lambda: os.kill(os.getpid(), signal.SIGTERM),
            ),
        )
        assert signal.getsignal(signal.SIGTERM) is killed_silently  # the handler before the run is back
    finally:
        signal.signal(signal.SIGTERM, before)

    assert code == 143
    assert "Terminated (SIGTERM): no more deletions start. 10 deletions under way go on in IoT" in output
    assert "2 selected jobs not deleted, their deletion not started: ota-10, ota-11." in output
    assert "no further action needed" not in output
    assert endpoint.lifecycle.calls["DeleteJob"] == 10


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--profile", "nowhere"], "iot-job-cleanup: The config profile (nowhere) could not be found. Check"),
        (
            ["--endpoint-url", "not a url"],
            "iot-job-cleanup delete: error: --endpoint-url 'not a url' is not a URL: write one such as",
        ),
    ],
    ids=["profile", "endpoint"],
)
def test_a_bad_aws_set_up_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = cli.main(["delete", "--job-id", "ota-1", "--yes", *argv], out=io.StringIO(), stdin=io.StringIO(""))

    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_a_refused_listing_is_one_line_in_words_not_botocores(
    endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint.job("ota-1")
    clients = boto3_clients(endpoint)
    fail_calls(clients.iot, "ListJobs", "AccessDeniedException", 403, times=1000)

    code, _ = endpoint.run("delete", "--prefix", "ota-", "--yes", clients=clients)

    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "iot-job-cleanup: AWS refused ListJobs: AccessDeniedException: injected AccessDeniedException. "
        "Check that the credentials used allow it, and for a service control policy or a permissions "
        "boundary that denies it. Nothing was changed; once that is dealt with, run it again.\n"
    )
    assert endpoint.existing() == {"ota-1"}


def test_credentials_that_expire_mid_run_leave_jobs_named_and_exit_1(
    endpoint: Endpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [endpoint.job(f"ota-{n:02d}") for n in range(12)]
    clients = boto3_clients(endpoint)
    sent: list[str] = []

    def expire_after_ten_deletions(event_name: str, **_: object) -> None:
        if sent.count("DeleteJob") >= 10:
            raise NoCredentialsError
        sent.append(event_name.rsplit(".", 1)[-1])

    clients.iot.meta.events.register("before-send.iot", expire_after_ten_deletions)

    code, output = endpoint.run("delete", *named(*ids), "--yes", clients=clients)

    assert code == 1, output  # deletions were started: jobs are left, not a usage error
    assert "iot-job-cleanup: Unable to locate credentials." in output
    assert "10 deletions under way go on in IoT by themselves" in output
    assert "2 selected jobs not deleted, their deletion not started: ota-10, ota-11." in output
    assert "Traceback" not in output + capsys.readouterr().err


def test_a_bug_is_one_line_with_the_traceback_in_a_file(
    endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint.job("ota-1")

    def broken(*_: object) -> list[cli.Candidate]:
        raise TypeError("an engine bug")

    monkeypatch.setattr(cli.run, "preview", broken)  # where the run looks it up

    code, _ = endpoint.run("delete", "--job-id", "ota-1", "--yes")

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("iot-job-cleanup: unexpected TypeError: an engine bug. This is a bug")
    assert "Traceback" not in err and len(err.splitlines()) == 1
    details = Path(err.split("the traceback is in ")[1].split(")")[0])
    assert "TypeError: an engine bug" in details.read_text()
    details.unlink()


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
    return cli.Clients(endpoint.client("iot"), None, cloudformation, waiter)


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


def test_resume_refuses_a_cleanup_whose_running_job_needs_force_and_goes_on_with_the_others(
    endpoint: Endpoint,
) -> None:
    endpoint.job("runtime-1", tags={"fleet": "demo"}, status="IN_PROGRESS")  # RuntimeJobs: Force "false"
    for job_id in ("wave-1", "wave-2", "created-1"):
        endpoint.job(job_id)

    code, output = endpoint.run(
        "resume", "--stack", "Fleet", "--yes", clients=resume_clients(endpoint, fleet_stack("DELETE_FAILED"))
    )

    assert code == 1
    assert "Fleet/RuntimeJobs: nothing was deleted: 1 selected job still running" in output
    assert "`iot-job-cleanup delete --job-id ID --drain DURATION`" in output and "--force" in output
    assert "Fleet/Waves: every selected job is gone" in output
    assert endpoint.existing() == {"runtime-1"}


# --------------------------------------------------------------------------- start-up


def test_the_command_starts_without_aws_cdk_or_node() -> None:
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    for argv in (["--help"], ["delete", "--help"]):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "iot_job_cleanup", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert f"usage: {Path(sys.executable).name} -m iot_job_cleanup" in result.stdout  # as it was run
        imported = result.stderr
        assert "aws_cdk" not in imported and "jsii" not in imported and "boto3" not in imported


def test_no_region_is_a_usage_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")

    code = cli.main(["delete", "--job-id", "ota-1", "--dry-run"], out=io.StringIO(), stdin=io.StringIO(""))

    assert code == 2
    assert (
        "You must specify a region. Pass --region, or set AWS_REGION (or give the profile a region); "
        "nothing was changed." in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("given", "environment", "expected"),
    [
        (
            ["--region", "eu-west-1"],
            {"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "us-east-1"},
            "eu-west-1",
        ),
        ([], {"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "us-east-1"}, "ap-south-1"),
        ([], {"AWS_DEFAULT_REGION": "us-west-2"}, "us-west-2"),
    ],
)
def test_the_region_comes_from_the_flag_then_aws_region_then_aws_default_region(
    monkeypatch: pytest.MonkeyPatch, given: list[str], environment: dict[str, str], expected: str
) -> None:
    """As the help says, and as Lambda, the CDK CLI and most tools set it (AWS_REGION)."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    args = cli.arguments.build_parser().parse_args(["delete", "--job-id", "ota-1", *given])

    clients = cli.clients.make_clients(load_engine(), args)

    assert clients.iot.meta.region_name == expected


def test_version_prints_the_packages_one_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"], out=io.StringIO(), stdin=io.StringIO(""))

    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"iot-job-cleanup {iot_job_cleanup.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", iot_job_cleanup.__version__)


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
    assert 1 <= endpoint.lifecycle.calls["DeleteJob"] <= 2  # the first cleanup's two at most; nothing after
    assert {"wave-1", "wave-2", "created-1"} <= endpoint.existing()


def test_an_unreachable_endpoint_is_a_message_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["delete", "--job-id", "ota-1", "--dry-run", "--endpoint-url", f"http://127.0.0.1:{free_port()}"],
        out=io.StringIO(),
        stdin=io.StringIO(""),
    )

    assert code == 2  # nothing was started: the set-up, as a usage error is
    err = capsys.readouterr().err
    assert err.startswith("iot-job-cleanup: Could not reach the IoT endpoint http://127.0.0.1:")
    assert "(connection refused)" in err and "nothing was changed." in err and "Traceback" not in err


def test_resume_evaluates_properties_with_cfns_evaluator_over_what_the_stack_tells() -> None:
    stack = fleet_stack("DELETE_FAILED")
    resources = stack.template["Resources"]
    resources["Waves"]["Properties"]["JobIds"] = [
        {"Fn::Sub": "${AWS::StackName}-${Suffix}"},
        {"Fn::Select": ["1", {"Ref": "WaveIds"}]},
        {"Ref": "AWS::NoValue"},
    ]
    stack.template["Parameters"]["Suffix"] = {"Type": "String"}
    stack.parameters.append({"ParameterKey": "Suffix", "ParameterValue": "old", "ResolvedValue": "late"})
    clients = cli.Clients(None, None, stack, ModelledStepFunctions([]))
    out = io.StringIO()

    found = dict(cli.stack_cleanups(clients, "Fleet", out))

    assert found["Waves"] == {"JobIds": ["Fleet-late", "wave-2"]}
    assert found["RuntimeJobs"]["ThingGroupNames"] == ["fleet"]  # Ref a resource: its physical id
    assert "Created" not in found  # Fn::GetAtt is not told, and the waiter has no Delete of it
    assert 'Fleet/Created: its properties depend on Fn::GetAtt ["CreateJob", "jobId"]' in out.getvalue()


def test_the_engine_has_every_name_its_typed_face_names() -> None:
    from iot_job_cleanup.engine import Engine, load_engine

    engine = load_engine()
    named = {*Engine.__annotations__, *(name for name in vars(Engine) if not name.startswith("_"))}
    assert {"JobCleanup", "CleanupError", "DELETION_SLOTS", "stack_status"} <= named
    assert [name for name in sorted(named) if not hasattr(engine, name)] == []
