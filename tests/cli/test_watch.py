"""``iot-job-cleanup watch``: a stack's deletion followed, over HTTP against the emulator.

IoT is the emulator (moto's server on loopback with the DeleteJob lifecycle), CloudFormation
moto's, with a stack record whose status the test sets (``emulated_stack``, ``set_stack_status``).
moto's ListStackResources answers every resource ``CREATE_COMPLETE`` (its response hard-codes
it), so the ``stacks`` fixture (``conftest``) patches that one response, in this process, to
answer the resource statuses the test plays: CloudFormation deleting the stages one after
another. The command reads everything over the wire, as it would from AWS.

Time is simulated: the command's clock and sleep are the emulator's, and in the two-stage test
a real engine run (the handler's ``JobCleanup``) deletes the jobs inside the command's sleeps.
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from iot_job_cleanup import cli
from iot_job_cleanup.cli.watch import jobs, per_minute
from iot_job_cleanup.engine import load_engine
from support import (
    PYTHONPATH,
    REGION,
    Endpoint,
    SimClock,
    Stack,
    Stacks,
    cleanup_resource,
    fail_calls,
    lines_of,
    put_stack,
)

STAGE_1, STAGE_2, WAVES = "RuntimeCleanupStage1A1B2C3D4", "RuntimeCleanupStage2E5F6A7B8", "Waves"
READ_ONLY_PREFIXES = ("Describe", "List", "Get")


# --------------------------------------------------------------------------- the stack in moto


def fleet_template() -> dict[str, Any]:
    """A two-stage cleanup of the construct Fleet/RuntimeCleanup (the contract: ``Cleanup``,
    ``Stage``, ``Stages``), and a cleanup of an older template (no Cleanup, no Stage)."""
    runtime = {"JobIdPrefix": "ota-", "Force": "false", "Cleanup": "Fleet/RuntimeCleanup", "Stages": "2"}
    return {
        "Parameters": {"WaveIds": {"Type": "CommaDelimitedList", "Default": "wave-1"}},
        "Resources": {
            STAGE_1: cleanup_resource({**runtime, "Stage": "1"}),
            STAGE_2: cleanup_resource({**runtime, "Stage": "2"}),
            WAVES: cleanup_resource({"JobIds": {"Ref": "WaveIds"}, "Force": "false"}),
            "Bucket": {"Type": "AWS::S3::Bucket"},
        },
    }


def put_fleet(
    stacks: Stacks, status: str, statuses: dict[str, str], template: dict[str, Any] | None = None
) -> Stack:
    """The stack Fleet with ``template`` (the fleet's by default) in ``status``, each resource in
    its status in ``statuses`` (else CREATE_COMPLETE); DescribeStacks answers WaveIds wave-1,wave-2."""
    return put_stack(stacks, status, template or fleet_template(), statuses, {"WaveIds": "wave-1,wave-2"})


# --------------------------------------------------------------------------- running the command


@dataclass
class Recorded:
    """Every API operation the command's clients made, by name (botocore's before-call
    event: whatever the call path, paginators included)."""

    operations: list[str] = field(default_factory=list)

    def clients(self, endpoint: Endpoint) -> cli.Clients:
        made = [endpoint.client(service) for service in ("iot", "resourcegroupstaggingapi", "cloudformation")]
        for client in made:
            client.meta.events.register("before-call.*.*", self.record)
        return cli.Clients(*made, states=None)

    def record(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)

    def mutating(self) -> list[str]:
        return sorted({name for name in self.operations if not name.startswith(READ_ONLY_PREFIXES)})


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def watch(
    endpoint: Endpoint,
    *argv: str,
    sleep: Callable[[float], None] | None = None,
    out: io.StringIO | None = None,
    recorded: Recorded | None = None,
) -> tuple[int, str]:
    out = out or io.StringIO()
    code = cli.main(
        ["watch", "--stack", "Fleet", *argv],
        out=out,
        stdin=io.StringIO(""),
        clock=endpoint.clock,
        sleep=sleep or endpoint.clock.sleep,
        clients=(recorded or Recorded()).clients(endpoint),
    )
    return code, out.getvalue()


def ctrl_c_after(clock: SimClock, sleeps: int) -> Callable[[float], None]:
    """A sleep that is Ctrl-C on its ``sleeps + 1``-th call."""

    def sleep(seconds: float) -> None:
        if len(clock.sleeps) >= sleeps:
            raise KeyboardInterrupt
        clock.sleep(seconds)

    return sleep


def left_counts(output: str, cleanup: str = "Fleet/RuntimeCleanup") -> list[int]:
    """The jobs left of ``cleanup``, refresh after refresh, from the log lines."""
    return [
        int(line.split("; ", 1)[1].split(" of ")[0])
        for line in output.splitlines()
        if line.startswith("[") and f"] {cleanup}: " in line and " left, " in line
    ]


# --------------------------------------------------------------------------- CloudFormation, played


@dataclass
class Teardown:
    """CloudFormation deleting the fleet stack, in the command's simulated time: stage 1 runs
    the real engine for ``stage_seconds``, hands what is left on to stage 2, which runs it to
    the end; then the stack is DELETE_COMPLETE. The engine works inside the command's sleeps."""

    stack: Stack
    clock: SimClock
    cleanup: Any  # the engine's JobCleanup
    stage_seconds: float = 60.0
    started: float = 0.0
    stage: int = 1

    def sleep(self, seconds: float) -> None:
        target = self.clock.now + seconds
        done = self.cleanup.run_until(target, 2.0) if self.stage <= 2 else True
        self.clock.sleep(max(0.0, target - self.clock.now))
        if self.stage == 1 and self.clock.now - self.started >= self.stage_seconds:
            self.stack.resource(STAGE_1, "DELETE_COMPLETE")
            self.stack.resource(STAGE_2, "DELETE_IN_PROGRESS")
            self.stage = 2
        elif self.stage == 2 and done:
            self.stack.resource(STAGE_2, "DELETE_COMPLETE")
            self.stack.resource(WAVES, "DELETE_COMPLETE")
            self.stack.status("DELETE_COMPLETE")
            self.stage = 3


def engine_run(endpoint: Endpoint) -> Any:
    """The handler's engine on stage 1's properties, over its own client (not the command's)."""
    engine = load_engine()
    properties = {"JobIdPrefix": "ota-", "Cleanup": "Fleet/RuntimeCleanup", "Stage": "1", "Stages": "2"}
    request = engine.CleanupRequest.from_properties(properties)
    clock = endpoint.clock
    iot = engine.IotJobs(endpoint.client("iot"), None, clock=clock, sleep=clock.sleep)
    cleanup = engine.JobCleanup(iot, request, clock=clock, sleep=clock.sleep, hard_stop=math.inf)
    cleanup.plan()
    return cleanup


# --------------------------------------------------------------------------- following a deletion


def test_a_two_stage_cleanup_is_followed_stage_by_stage_until_the_stack_is_deleted(
    endpoint: Endpoint, stacks: dict[str, list[dict[str, Any]]]
) -> None:
    for n in range(40):
        endpoint.job(f"ota-{n:02d}")
    endpoint.job("cfg-1")  # no cleanup selects it
    endpoint.job("wave-1")
    endpoint.job("wave-2")
    stack = put_fleet(stacks, "DELETE_IN_PROGRESS", {STAGE_1: "DELETE_IN_PROGRESS"})
    teardown = Teardown(stack, endpoint.clock, engine_run(endpoint), started=endpoint.clock.now)
    recorded = Recorded()

    code, output = watch(endpoint, sleep=teardown.sleep, recorded=recorded)

    assert code == 0, output
    assert "Fleet/RuntimeCleanup: stage 1 of 2 running; 40 of 40 jobs left" in output
    assert "Fleet/RuntimeCleanup: stage 2 of 2 running;" in output
    assert "Waves: waiting for CloudFormation to start stage 1 of 1; 2 of 2 jobs left" in output
    left = left_counts(output)
    assert left[0] == 40 and left[-1] == 0 and len(left) >= 8
    assert left == sorted(left, reverse=True) and len(set(left)) >= 4  # decreasing, refresh by refresh
    assert "deleted per minute not known yet, time left unknown" in output.splitlines()[1]
    assert "jobs deleted per minute, about " in output  # once the rate is known
    assert "deletion slots in use 10 of 10" in output  # the engine's ten deletions at a time
    assert "Fleet/RuntimeCleanup: finished, all 2 stages deleted; 0 of 40 jobs left" in output
    assert output.splitlines()[-1].startswith(
        "Stack Fleet: every cleanup finished; the stack is deleted. Watched for 2m"
    )
    assert endpoint.existing() == {"cfg-1", "wave-1", "wave-2"}  # the engine's work; watch deleted nothing
    assert recorded.mutating() == []
    assert {"DescribeStacks", "ListStackResources", "GetTemplate", "ListJobs"} <= set(recorded.operations)


def test_the_rate_and_the_time_left_follow_the_jobs_left(
    endpoint: Endpoint, stacks: dict[str, list[dict[str, Any]]]
) -> None:
    """Jobs deleted between refreshes by the test: none for the first 20 s (the stage has not
    got to them), then 5 every 10 s, which is 30 a minute: the rate counts from the last refresh
    before the decrease began, not from the watch's start."""
    for n in range(20):
        endpoint.job(f"ota-{n:02d}")
    put_fleet(stacks, "DELETE_IN_PROGRESS", {STAGE_1: "DELETE_IN_PROGRESS", WAVES: "DELETE_COMPLETE"})
    remaining = [f"ota-{n:02d}" for n in range(20)]

    refreshes = 0

    def sleep(seconds: float) -> None:
        nonlocal refreshes
        if seconds < 10:  # a call waiting its turn (IoT's rate per operation), not the watch's pause
            endpoint.clock.sleep(seconds)
            return
        refreshes += 1
        if refreshes == 6:
            raise KeyboardInterrupt
        if refreshes >= 3:
            for _ in range(5):  # deleted by someone, and gone
                endpoint.lifecycle.remove_job(remaining.pop())
        endpoint.clock.sleep(seconds)

    code, output = watch(endpoint, sleep=sleep)

    assert code == 130
    assert left_counts(output) == [20, 20, 20, 15, 10, 5]
    lines = [line for line in output.splitlines() if "] Fleet/RuntimeCleanup" in line]
    assert all("deleted per minute not known yet, time left unknown" in line for line in lines[:3])
    # The first refresh looks at 20 jobs: at IoT's 10 a second per operation, it takes a second.
    assert lines[3] == (
        "[0m31s] Fleet/RuntimeCleanup: stage 1 of 2 running; 15 of 20 jobs left, 0 deleting; 30 jobs "
        "deleted per minute, about 0m30s left; deletion slots in use 0 of 10"
    )
    assert "5 of 20 jobs left, 0 deleting; 30 jobs deleted per minute, about 0m10s left" in lines[5]
    assert "] Waves: finished; deletion slots in use 0 of 10" in output


def test_counts_agree_with_their_nouns(endpoint: Endpoint, stacks: dict[str, list[dict[str, Any]]]) -> None:
    endpoint.job("ota-00")
    endpoint.job("wave-1")
    put_fleet(stacks, "DELETE_IN_PROGRESS", {STAGE_1: "DELETE_IN_PROGRESS"})
    endpoint.lifecycle.start_deletion("wave-1", 600)  # a slot in use, by someone

    code, output = watch(endpoint, sleep=ctrl_c_after(endpoint.clock, 0))

    assert code == 130
    assert "Fleet/RuntimeCleanup: stage 1 of 2 running; 1 of 1 job left, 0 deleting;" in output
    assert "Waves: waiting for CloudFormation to start stage 1 of 1; 1 of 1 job left, 1 deleting;" in output
    assert "deletion slots in use 1 of 10" in output
    assert [jobs(0), jobs(1), jobs(2)] == ["0 jobs", "1 job", "2 jobs"]
    assert [per_minute(1 / 60), per_minute(0.5 / 60), per_minute(12 / 60)] == ["1 job", "0.5 jobs", "12 jobs"]


def test_a_cleanup_of_an_older_template_is_its_own_resource_and_a_retained_one_is_kept(
    endpoint: Endpoint, stacks: dict[str, list[dict[str, Any]]]
) -> None:
    template = fleet_template()
    template["Resources"][WAVES]["DeletionPolicy"] = "Retain"
    template["Resources"]["Old"] = cleanup_resource({"JobIds": ["old-1"]})  # no Cleanup, no Stage
    endpoint.job("old-1")
    endpoint.job("wave-1")
    stack = put_fleet(stacks, "DELETE_IN_PROGRESS", {"Old": "DELETE_IN_PROGRESS"}, template)

    def sleep(seconds: float) -> None:  # CloudFormation finishes Old, skips Waves, deletes the stages
        endpoint.clock.sleep(seconds)
        endpoint.lifecycle.remove_job("old-1")
        for logical_id in ("Old", STAGE_1, STAGE_2):
            stack.resource(logical_id, "DELETE_COMPLETE")
        stack.resource(WAVES, "DELETE_SKIPPED")

    code, output = watch(endpoint, sleep=sleep)

    assert code == 0, output
    assert "] Old: stage 1 of 1 running; 1 of 1 job left" in output
    assert "] Old: finished; 0 of 1 job left" in output
    assert "] Waves: kept (DeletionPolicy Retain): its jobs stay;" in output
    assert "Stack Fleet: every cleanup finished; CloudFormation goes on deleting the stack's other" in output
    assert endpoint.existing() == {"wave-1"}


def test_a_stack_that_no_longer_exists_after_being_watched_had_every_cleanup_finish(
    endpoint: Endpoint, stacks: dict[str, list[dict[str, Any]]]
) -> None:
    endpoint.job("ota-00")
    stack = put_fleet(stacks, "DELETE_IN_PROGRESS", {STAGE_1: "DELETE_IN_PROGRESS"})

    def sleep(seconds: float) -> None:
        endpoint.clock.sleep(seconds)
        endpoint.lifecycle.remove_job("ota-00")
        stack.gone()

    code, output = watch(endpoint, sleep=sleep)

    assert code == 0, output
    assert "Stack Fleet: gone (no longer exists)\n" in output
    assert "] Fleet/RuntimeCleanup: finished, all 2 stages deleted; 0 of 1 job left" in output
    assert output.splitlines()[-1] == (
        "Stack Fleet: every cleanup finished; the stack no longer exists. Watched for 0m10s."
    )


# --------------------------------------------------------------------------- failures


def test_a_failed_stage_exits_1_naming_the_cleanup_and_what_to_do(
    endpoint: Endpoint, stacks: dict[str, list[dict[str, Any]]]
) -> None:
    for n in range(3):
        endpoint.job(f"ota-{n:02d}")
    stack = put_fleet(stacks, "DELETE_IN_PROGRESS", {STAGE_1: "DELETE_IN_PROGRESS"})

    def sleep(seconds: float) -> None:  # stage 1 hands on; stage 2 fails
        endpoint.clock.sleep(seconds)
        stack.resource(STAGE_1, "DELETE_COMPLETE")
        stack.resource(STAGE_2, "DELETE_FAILED", "Jobs left: ota-02 is IN_PROGRESS.\nSet force=True.")

    code, output = watch(endpoint, sleep=sleep)

    assert code == 1, output
    assert "] Fleet/RuntimeCleanup: stage 1 of 2 running" in output
    assert (
        "] Fleet/RuntimeCleanup: stage 2 of 2 FAILED: Jobs left: ota-02 is IN_PROGRESS. Set force=True."
        in output
    )
    assert output.splitlines()[-1] == (
        "Fleet/RuntimeCleanup failed: stage 2 of 2 is DELETE_FAILED: Jobs left: ota-02 is IN_PROGRESS. "
        "Set force=True. 3 of 3 jobs left. Run iot-job-cleanup resume --stack Fleet to finish its jobs, "
        "then delete the stack again (cdk destroy)."
    )
    assert endpoint.existing() == {"ota-00", "ota-01", "ota-02"}


def test_a_stack_whose_deletion_failed_elsewhere_exits_1_naming_the_cleanups_not_finished(
    endpoint: Endpoint, stacks: dict[str, list[dict[str, Any]]]
) -> None:
    endpoint.job("ota-00")
    put_fleet(stacks, "DELETE_FAILED", {"Bucket": "DELETE_FAILED", WAVES: "DELETE_COMPLETE"})

    code, output = watch(endpoint)

    assert code == 1, output
    assert output.splitlines()[-1] == (
        "Stack Fleet is DELETE_FAILED: its deletion stopped before Fleet/RuntimeCleanup finished. Run "
        "iot-job-cleanup resume --stack Fleet to finish them, then delete the stack again (cdk destroy)."
    )
    assert "Fleet/RuntimeCleanup: waiting for CloudFormation to start stage 1 of 2; 1 of 1 job left" in output


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (
            None,
            "iot-job-cleanup: Stack Fleet does not exist in us-east-1. Check --stack (the stack's name or "
            "id; a deleted stack is found by its id only), --region and --profile.",
        ),
        (
            "CREATE_COMPLETE",
            "iot-job-cleanup: Stack Fleet is CREATE_COMPLETE: watch follows a stack being deleted "
            "(DELETE_IN_PROGRESS) or whose deletion failed (DELETE_FAILED). Start its deletion (cdk "
            "destroy), then run iot-job-cleanup watch --stack Fleet.",
        ),
        (
            "UPDATE_ROLLBACK_COMPLETE",
            "iot-job-cleanup: Stack Fleet is UPDATE_ROLLBACK_COMPLETE: watch follows a stack being deleted",
        ),
        (
            "no cleanup",
            "iot-job-cleanup: Stack Fleet has no IotJobCleanup resource (Custom::IotJobCleanup): nothing to "
            "watch. Check --stack (a nested stack's cleanups are watched by its own name).",
        ),
    ],
    ids=["missing", "create-complete", "rolled-back", "no-cleanup"],
)
def test_a_stack_that_cannot_be_watched_is_one_line_and_exit_2(
    endpoint: Endpoint,
    stacks: dict[str, list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    status: str | None,
    message: str,
) -> None:
    if status == "no cleanup":
        put_fleet(stacks, "DELETE_IN_PROGRESS", {}, {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}})
    elif status is not None:
        put_fleet(stacks, status, {})

    code, output = watch(endpoint)

    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert "Traceback" not in err and output == ""


def test_an_interval_below_a_second_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["watch", "--stack", "Fleet", "--interval", "0.5"], out=io.StringIO(), stdin=io.StringIO(""))

    assert exited.value.code == 2
    assert "argument --interval: '0.5': write a number of seconds, at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(("failures", "code"), [(2, 0), (3, 1)])
def test_refreshes_aws_refuses_are_said_and_three_in_a_row_stop_the_watch(
    endpoint: Endpoint,
    stacks: dict[str, list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    failures: int,
    code: int,
) -> None:
    endpoint.job("ota-00")
    stack = put_fleet(stacks, "DELETE_IN_PROGRESS", {STAGE_1: "DELETE_IN_PROGRESS", WAVES: "DELETE_COMPLETE"})
    clients = Recorded().clients(endpoint)

    def sleep(seconds: float) -> None:
        if not endpoint.clock.sleeps:  # after the first refresh, DescribeStacks is refused
            fail_calls(clients.cloudformation, "DescribeStacks", "AccessDenied", 403, failures)
            for logical_id in (STAGE_1, STAGE_2):
                stack.resource(logical_id, "DELETE_COMPLETE")
        endpoint.clock.sleep(seconds)

    out = io.StringIO()
    exit_code = cli.main(
        ["watch", "--stack", "Fleet"],
        out=out,
        stdin=io.StringIO(""),
        clock=endpoint.clock,
        sleep=sleep,
        clients=clients,
    )

    assert exit_code == code, out.getvalue()
    refused = "AWS refused DescribeStacks: AccessDenied: injected AccessDenied."
    assert out.getvalue().count(f"refresh failed: {refused}") == min(failures, 2)
    assert "Trying again in 10 s." in out.getvalue()
    err = capsys.readouterr().err
    if code:
        assert err.startswith(f"iot-job-cleanup: {refused}") and "The watch stopped after 3 refreshes" in err
    else:
        assert err == "" and "Stack Fleet: every cleanup finished" in out.getvalue()


# --------------------------------------------------------------------------- read-only


def test_watch_makes_no_mutating_call_whatever_the_jobs_are_doing(
    endpoint: Endpoint, stacks: dict[str, list[dict[str, Any]]]
) -> None:
    endpoint.job("ota-running", status="IN_PROGRESS")  # deleting it would need force
    endpoint.job("ota-scheduled", status="SCHEDULED")
    endpoint.job("ota-done")
    endpoint.job("ota-deleting")
    endpoint.job("wave-1")
    endpoint.lifecycle.start_deletion("ota-deleting", 600)  # by someone else
    before = endpoint.lifecycle.snapshot()
    calls_before = dict(endpoint.lifecycle.calls)
    put_fleet(stacks, "DELETE_IN_PROGRESS", {STAGE_1: "DELETE_IN_PROGRESS"})
    recorded = Recorded()

    code, output = watch(endpoint, sleep=ctrl_c_after(endpoint.clock, 3), recorded=recorded)

    assert code == 130, output
    assert len(left_counts(output)) == 4  # four refreshes watched
    assert recorded.mutating() == []
    assert {"DescribeStacks", "ListStackResources", "GetTemplate", "ListJobs", "DescribeJob"} <= set(
        recorded.operations
    )  # the hook saw the calls: a DeleteJob would have been seen too
    served = {name: count - calls_before.get(name, 0) for name, count in endpoint.lifecycle.calls.items()}
    assert not {name for name, count in served.items() if count and not name.startswith(READ_ONLY_PREFIXES)}
    assert endpoint.lifecycle.snapshot() == before  # the clock did not move: nothing changed at all


# --------------------------------------------------------------------------- Ctrl-C and the terminal


def test_ctrl_c_prints_what_was_last_seen_and_exits_130(
    endpoint: Endpoint, stacks: dict[str, list[dict[str, Any]]]
) -> None:
    endpoint.job("ota-00")
    endpoint.job("ota-01")
    put_fleet(stacks, "DELETE_IN_PROGRESS", {STAGE_1: "DELETE_IN_PROGRESS"})

    code, output = watch(endpoint, "--interval", "30", sleep=ctrl_c_after(endpoint.clock, 1))

    assert code == 130
    last_seen = output.split("Last seen, 0m30s into the watch:\n")[1].splitlines()
    assert last_seen[0].startswith("Stack Fleet: DELETE_IN_PROGRESS; deletion slots in use 0 of 10")
    assert last_seen[1] == (
        "  Fleet/RuntimeCleanup: stage 1 of 2 running; 2 of 2 jobs left, 0 deleting; deleted per minute "
        "not known yet, time left unknown"
    )
    assert last_seen[-1] == (
        "Interrupted: the watch stopped; it changed nothing, and CloudFormation goes on with Fleet. Run "
        "iot-job-cleanup watch --stack Fleet to follow it again."
    )
    assert endpoint.clock.sleeps == [30.0]
    assert endpoint.existing() == {"ota-00", "ota-01"}


def test_on_a_terminal_one_block_is_redrawn_in_place(
    endpoint: Endpoint, stacks: dict[str, list[dict[str, Any]]]
) -> None:
    endpoint.job("ota-00")
    stack = put_fleet(stacks, "DELETE_IN_PROGRESS", {STAGE_1: "DELETE_IN_PROGRESS"})
    refreshes = []

    def sleep(seconds: float) -> None:
        refreshes.append(seconds)
        endpoint.clock.sleep(seconds)
        if len(refreshes) == 2:
            for logical_id in (STAGE_1, STAGE_2, WAVES):
                stack.resource(logical_id, "DELETE_COMPLETE")

    terminal = Terminal()
    code, output = watch(endpoint, sleep=sleep, out=terminal)

    assert code == 0, output
    assert output.count("\x1b[3F\x1b[J") == 3  # a block of 3 lines, drawn 3 times, redrawn over itself
    assert "[0m" not in output  # no log lines
    final = output.rsplit("\x1b[J", 1)[1].splitlines()
    assert final[0].startswith("Stack Fleet: DELETE_IN_PROGRESS; deletion slots in use 0 of 10")
    assert final[1].startswith("  Fleet/RuntimeCleanup: finished, all 2 stages deleted; 1 of 1 job left")
    assert final[-1].startswith("Stack Fleet: every cleanup finished;")


# --------------------------------------------------------------------------- a real process


def start(endpoint: Endpoint, *argv: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": PYTHONPATH,
        "PYTHONUNBUFFERED": "",  # the command flushes its own lines
    }
    return subprocess.Popen(
        [sys.executable, "-m", "iot_job_cleanup", "watch", "--stack", "Fleet", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_real_process_follows_the_deletion_to_its_end(
    endpoint: Endpoint, stacks: dict[str, list[dict[str, Any]]]
) -> None:
    endpoint.job("ota-00")
    endpoint.job("ota-01")
    stack = put_fleet(stacks, "DELETE_IN_PROGRESS", {STAGE_1: "DELETE_IN_PROGRESS", WAVES: "DELETE_COMPLETE"})
    process = start(endpoint, "--endpoint-url", endpoint.url, "--region", REGION, "--interval", "1")
    lines = lines_of(process)
    seen = []
    try:
        while "Fleet/RuntimeCleanup" not in (line := lines.get(timeout=60)):
            seen.append(line)
        seen.append(line)
        for job_id in ("ota-00", "ota-01"):  # between two refreshes: the jobs are deleted...
            endpoint.lifecycle.remove_job(job_id)
        for logical_id in (STAGE_1, STAGE_2):  # ...and CloudFormation deletes the stack
            stack.resource(logical_id, "DELETE_COMPLETE")
        stack.status("DELETE_COMPLETE")
        while line := lines.get(timeout=60):
            seen.append(line)
        code = process.wait(timeout=60)
    finally:
        process.kill()
        process.wait()
    output = "".join(seen)
    assert process.stderr is not None
    assert code == 0, output + process.stderr.read()
    assert "Fleet/RuntimeCleanup: stage 1 of 2 running; 2 of 2 jobs left" in output
    assert "Fleet/RuntimeCleanup: finished, all 2 stages deleted; 0 of 2 jobs left" in output
    assert output.splitlines()[-1].startswith("Stack Fleet: every cleanup finished; the stack is deleted.")
    assert endpoint.lifecycle.calls["DeleteJob"] == 0  # the test's deletions are not calls


@pytest.mark.parametrize(
    ("stage_1", "code", "said"),
    [
        ("DELETE_FAILED", 1, "Fleet/RuntimeCleanup failed: stage 1 of 2 is DELETE_FAILED: Jobs left."),
        (None, 2, "iot-job-cleanup: Stack Fleet does not exist in us-east-1."),
    ],
    ids=["failed", "missing"],
)
def test_a_real_process_exits_with_the_code_and_no_traceback(
    endpoint: Endpoint, stacks: dict[str, list[dict[str, Any]]], stage_1: str | None, code: int, said: str
) -> None:
    if stage_1 is not None:
        stack = put_fleet(stacks, "DELETE_IN_PROGRESS", {})
        stack.resource(STAGE_1, stage_1, "Jobs left.")
    process = start(endpoint, "--endpoint-url", endpoint.url, "--region", REGION)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == code, out + err
    assert said in out + err
    assert "Traceback" not in out + err
