"""The rehearsal end to end: moto's server on loopback, the handler from the asset folder."""

from __future__ import annotations

import io
import socket
import sys
from pathlib import Path

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
    assert Path(loaded.__file__).parent == plan.cleanups[0].is_complete.asset_dir
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
