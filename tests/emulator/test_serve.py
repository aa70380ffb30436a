"""``python -m iot_job_cleanup.emulator``: the offline endpoint as a real process, its demo fleet,
and the tagging API's IoT jobs on the wire."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from iot_job_cleanup.emulator import emulated_tagging, seed_demo
from iot_job_cleanup.rehearse import free_port
from support import ACCOUNT, REGION, Iot, SimClock, lines_of, listed

REPO = Path(__file__).resolve().parents[2]
DELETION_SECONDS = 3.0  # long enough that 10 DeleteJob calls fit inside one deletion on a busy machine
DEMO_WAVES = [f"ota-wave-{n:02d}" for n in range(1, 13)]
BYSTANDERS = ["billing-fw-1", "billing-fw-2", "billing-fw-3", "ota-manual-1"]
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class Served:
    process: subprocess.Popen[str]
    lines: queue.Queue[str]
    first: list[str]  # the lines up to "Serving until Ctrl-C."

    @property
    def url(self) -> str:
        return self.first[0].split(" on ", 1)[1].split(" ", 1)[0]

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, **KEYS)

    def stop(self, signum: int) -> tuple[int, list[str], str]:
        """Send ``signum``; the exit code, the lines after the first ones, and stderr."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=30)
        rest = []
        while line := self.lines.get(timeout=10):
            rest.append(line.rstrip("\n"))
        assert self.process.stderr is not None
        return code, rest, self.process.stderr.read()


def start(*argv: str) -> subprocess.Popen[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env["PYTHONPATH"] = str(REPO / "constructs")
    env.pop("PYTHONUNBUFFERED", None)  # the command flushes its own lines
    return subprocess.Popen(
        [sys.executable, "-m", "iot_job_cleanup.emulator", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def serve(process: subprocess.Popen[str]) -> Served:
    """The process's lines as they come (an empty string at its end), read up to the first ones."""
    lines = lines_of(process)
    first: list[str] = []
    while not first or first[-1] != "Serving until Ctrl-C.":
        line = lines.get(timeout=60)
        if not line:
            assert process.stderr is not None
            pytest.fail(f"the endpoint ended early: {first} {process.stderr.read()}")
        first.append(line.rstrip("\n"))
    return Served(process, lines, first)


@contextmanager
def running(*argv: str) -> Iterator[subprocess.Popen[str]]:
    """The command as a process, killed at the end if a test left it running."""
    process = start(*argv)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with running(
        "--port", str(free_port()), "--demo", "--deletion-seconds", str(DELETION_SECONDS)
    ) as process:
        yield serve(process)


def tagged(tagging: Any, **query: Any) -> list[str]:
    page = tagging.get_resources(ResourceTypeFilters=["iot:job"], **query)
    return [mapping["ResourceARN"].rsplit("/", 1)[-1] for mapping in page["ResourceTagMappingList"]]


def code_of(call: Any, **params: Any) -> str | None:
    try:
        call(**params)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return None


# --------------------------------------------------------------------------- a real process


def test_the_endpoint_says_what_to_export_and_the_demo_it_seeded(served: Served) -> None:
    port = served.url.rsplit(":", 1)[1]

    assert served.first[0] == (
        f"Offline IoT endpoint on http://127.0.0.1:{port} (account {ACCOUNT}, region {REGION}). "
        "In another terminal:"
    )
    assert served.first[1] == (
        f"  export AWS_ENDPOINT_URL=http://127.0.0.1:{port} AWS_REGION={REGION} AWS_DEFAULT_REGION={REGION} "
        "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
    )
    assert served.first[2] == "Deletions take 3 s each; at most 10 jobs DELETION_IN_PROGRESS at once."
    assert served.first[3].startswith("Demo fleet: thing group demo-ota-fleet (4 things); 12 jobs")
    assert "ota-wave-01..ota-wave-12 tagged fleet=demo-ota" in served.first[3]
    assert (
        "bystanders to leave alone: billing-fw-1, billing-fw-2, billing-fw-3, ota-manual-1."
        in served.first[3]
    )
    assert len(served.first) == 5


def test_the_demo_fleet_is_listed_by_status_and_group_and_found_by_its_tag(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    iot, tagging = served.client("iot"), served.client("resourcegroupstaggingapi")

    assert listed(iot) == [*DEMO_WAVES, *BYSTANDERS]
    assert listed(iot, status="IN_PROGRESS") == ["ota-wave-11", "ota-wave-12", "billing-fw-3"]
    assert listed(iot, status="COMPLETED") == [
        *DEMO_WAVES[:10],
        "billing-fw-1",
        "billing-fw-2",
        "ota-manual-1",
    ]
    assert listed(iot, thingGroupName="demo-ota-fleet") == [*DEMO_WAVES, "ota-manual-1"]
    assert listed(iot, thingGroupName="billing-meters") == ["billing-fw-1", "billing-fw-2", "billing-fw-3"]
    things = iot.list_things_in_thing_group(thingGroupName="demo-ota-fleet")["things"]
    assert sorted(things) == [f"demo-device-{n}" for n in range(1, 5)]
    # the tagging API answers the IoT jobs, with all their tags, as the engine's discovery asks it
    assert tagged(tagging, TagFilters=[{"Key": "fleet", "Values": ["demo-ota"]}]) == DEMO_WAVES
    assert tagged(tagging, TagFilters=[{"Key": "fleet", "Values": ["billing"]}]) == BYSTANDERS[:3]
    assert len(tagged(tagging, TagFilters=[])) == 16  # the engine's "does it serve IoT jobs at all?"
    first = tagging.get_resources(
        ResourceTypeFilters=["iot:job"],
        TagFilters=[{"Key": "fleet", "Values": ["demo-ota"]}],
        ResourcesPerPage=5,
    )
    assert first["ResourceTagMappingList"][0]["Tags"] == [{"Key": "fleet", "Value": "demo-ota"}]
    assert len(first["ResourceTagMappingList"]) == 5 and first["PaginationToken"]
    # the ordinary AWS_ENDPOINT_URL, as the command line's boto3 reads it: no endpoint_url given
    monkeypatch.setenv("AWS_ENDPOINT_URL", served.url)
    from_environment = boto3.session.Session(region_name=REGION).client("iot")
    assert from_environment.describe_job(jobId="ota-wave-11")["job"]["status"] == "IN_PROGRESS"


def test_deletions_take_their_real_time_and_the_eleventh_at_once_is_refused(served: Served) -> None:
    """Jobs of its own (created over the wire, QUEUED, so deleted with force), all gone at the end."""
    iot = served.client("iot")
    group = iot.describe_thing_group(thingGroupName="demo-ota-fleet")["thingGroupArn"]
    ids = [f"slot-test-{n:02d}" for n in range(11)]
    for job_id in ids:
        iot.create_job(jobId=job_id, targets=[group], document="{}")

    started = time.monotonic()
    for job_id in ids[:10]:
        iot.delete_job(jobId=job_id, force=True)
    eleventh = code_of(iot.delete_job, jobId=ids[10], force=True)
    deleting = listed(iot, status="DELETION_IN_PROGRESS")
    status = iot.describe_job(jobId=ids[0])["job"]["status"]
    while code_of(iot.describe_job, jobId=ids[9]) is None:
        assert time.monotonic() - started < 30, "the deletions never finished"
        time.sleep(0.1)
    took = time.monotonic() - started

    assert eleventh == "LimitExceededException"
    assert (status, deleting) == ("DELETION_IN_PROGRESS", ids[:10])
    assert took >= DELETION_SECONDS - 0.1, took
    assert [code_of(iot.describe_job, jobId=job_id) for job_id in ids[:10]] == [
        "ResourceNotFoundException"
    ] * 10
    iot.delete_job(jobId=ids[10], force=True)  # a slot is free now
    while code_of(iot.describe_job, jobId=ids[10]) is None:
        time.sleep(0.1)
    assert listed(iot) == [*DEMO_WAVES, *BYSTANDERS]  # as the demo left it


def test_sigterm_stops_it_with_exit_0_and_no_traceback(served: Served) -> None:
    code, rest, stderr = served.stop(signal.SIGTERM)

    assert code == 0
    assert rest == ["Stopped (SIGTERM)."]
    assert "Traceback" not in stderr, stderr


def test_ctrl_c_stops_it_with_exit_0_and_without_demo_nothing_is_seeded() -> None:
    with running() as process:  # a free port; deletions of the default 20 s
        endpoint = serve(process)
        jobs = endpoint.client("iot").list_jobs()["jobs"]
        code, rest, stderr = endpoint.stop(signal.SIGINT)

    assert endpoint.first[2] == "Deletions take 20 s each; at most 10 jobs DELETION_IN_PROGRESS at once."
    assert len(endpoint.first) == 4 and jobs == []
    assert (code, rest) == (0, ["Stopped (SIGINT)."])
    assert "Traceback" not in stderr, stderr


def test_a_port_in_use_exits_2_with_one_line_naming_the_port_and_the_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with running("--port", str(port)) as process:
            stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 2
    assert stdout == ""
    assert stderr.splitlines() == [
        f"python -m iot_job_cleanup.emulator: port {port} on 127.0.0.1 is already in use; "
        "pass another --port, or leave --port out for a free one"
    ]


# --------------------------------------------------------------------------- in-process


def test_the_demo_seeds_the_fleet_its_bystanders_and_devices_that_finish(iot: Iot, clock: SimClock) -> None:
    fleet = seed_demo(iot.lifecycle)
    jobs = iot.lifecycle.snapshot()
    group = iot.client.describe_thing_group(thingGroupName="demo-ota-fleet")["thingGroupArn"]

    assert (fleet.selected, fleet.running, fleet.bystanders) == (
        tuple(DEMO_WAVES),
        tuple(DEMO_WAVES[10:]),
        tuple(BYSTANDERS),
    )
    assert list(jobs) == [*DEMO_WAVES, *BYSTANDERS]
    assert {job_id: job.tags for job_id, job in jobs.items()} == {
        **{wave: {"fleet": "demo-ota"} for wave in DEMO_WAVES},
        **{other: {"fleet": "billing"} for other in BYSTANDERS[:3]},
        "ota-manual-1": {},
    }
    assert all(jobs[job_id].targets == (group,) for job_id in [*DEMO_WAVES, "ota-manual-1"])
    assert group not in jobs["billing-fw-1"].targets
    assert [job_id for job_id, job in jobs.items() if job.status == "IN_PROGRESS"] == [
        "ota-wave-11",
        "ota-wave-12",
        "billing-fw-3",
    ]
    assert fleet.summary() == (
        "Demo fleet: thing group demo-ota-fleet (4 things); 12 jobs ota-wave-01..ota-wave-12 tagged "
        "fleet=demo-ota (10 COMPLETED, 2 IN_PROGRESS: ota-wave-11, ota-wave-12, devices finishing in 90 s); "
        "bystanders to leave alone: billing-fw-1, billing-fw-2, billing-fw-3, ota-manual-1."
    )
    assert iot.lifecycle.calls == {}  # seeded as a fleet leaves it: no call of anyone's counted
    # a drain has something to wait for: the running waves' devices finish after 90 s, billing's never
    for job_id in ("ota-wave-11", "billing-fw-3"):
        iot.client.cancel_job(jobId=job_id)
    busy = [
        iot.client.describe_job(jobId=j)["job"]["jobProcessDetails"]["numberOfInProgressThings"]
        for j in ("ota-wave-11", "billing-fw-3")
    ]
    clock.sleep(90)
    later = [
        iot.client.describe_job(jobId=j)["job"]["jobProcessDetails"]["numberOfInProgressThings"]
        for j in ("ota-wave-11", "billing-fw-3")
    ]
    assert (busy, later) == ([1, 1], [0, 1])


def test_the_tagging_api_answers_iot_jobs_on_the_wire_only_while_emulated(iot: Iot) -> None:
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    group = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/fleet"
    iot.lifecycle.create_job("a", targets=[group], tags={"fleet": "demo", "wave": "1"})
    iot.lifecycle.create_job("b", targets=[group], tags={"fleet": "demo", "wave": "2"})
    iot.lifecycle.create_job("c", targets=[group], tags={"fleet": "other"})
    iot.lifecycle.create_job("d", targets=[group])
    iot.lifecycle.create_job("gone", targets=[group], tags={"fleet": "demo"})
    iot.lifecycle.delete_job("gone", force=False, namespace_id=None)
    demo = [{"Key": "fleet", "Values": ["demo"]}]

    before = tagged(tagging, TagFilters=demo)
    with emulated_tagging(iot.lifecycle):
        exact = tagged(tagging, TagFilters=demo)  # "gone" is DELETION_IN_PROGRESS: it still exists
        either = tagged(tagging, TagFilters=[{"Key": "fleet", "Values": ["demo", "other"]}])
        any_value = tagged(tagging, TagFilters=[{"Key": "wave"}])
        both = tagged(tagging, TagFilters=[*demo, {"Key": "wave", "Values": ["2"]}])
        page = tagging.get_resources(ResourceTypeFilters=["iot:job"], TagFilters=demo, ResourcesPerPage=2)
        rest = tagging.get_resources(
            ResourceTypeFilters=["iot:job"], TagFilters=demo, PaginationToken=page["PaginationToken"]
        )
        other_types = tagging.get_resources(ResourceTypeFilters=["ec2:instance"], TagFilters=demo)
        calls = iot.lifecycle.calls["GetResources"]
    after = tagged(tagging, TagFilters=demo)

    assert before == after == []  # moto's own answer: no IoT job (as the rehearsal has it)
    assert exact == ["a", "b", "gone"]
    assert (either, any_value, both) == (["a", "b", "c", "gone"], ["a", "b"], ["b"])
    assert page["ResourceTagMappingList"][0]["Tags"] == [
        {"Key": "fleet", "Value": "demo"},
        {"Key": "wave", "Value": "1"},
    ]
    assert [m["ResourceARN"].rsplit("/", 1)[-1] for m in rest["ResourceTagMappingList"]] == ["gone"]
    assert rest["PaginationToken"] == ""
    assert other_types["ResourceTagMappingList"] == []
    assert calls == 6
