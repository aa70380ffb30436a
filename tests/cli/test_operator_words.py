"""The command line in the operator's words (issue 15): what an operator reads, and the exit code.

Most tests run the real program, ``python -m iot_job_cleanup ...`` (or a console script as pip
writes it), in a subprocess against moto's server on loopback with the emulator's DeletionJob
lifecycle on the real clock (deletions take half a second). Where the point is time (a line every
10 s while the jobs are found) the command runs in this process on the emulator's simulated
clock, as in ``test_cli``.
"""

from __future__ import annotations

import http.server
import io
import os
import pty
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from iot_job_cleanup import cli
from iot_job_cleanup.engine import load_engine, naming_rules
from iot_job_cleanup.rehearse import free_port
from support import PYTHONPATH, REGION, Endpoint, Stacks, cleanup_resource, put_stack

CLIENT_CONFIG = load_engine().CLIENT_CONFIG  # the command's clients' retries and timeouts
PYTHON_M = f"{Path(sys.executable).name} -m iot_job_cleanup"  # the program's name when run as a module
# A number and a noun that do not agree: "1 jobs", "2 job", and the "(s)" that dodges the question.
ONE_PLURAL = re.compile(
    r"(?<![\d.])1 (jobs|resources|cleanups|devices|seconds|deletions|tags|times|IoT calls|calls|stages|"
    r"refreshes|keys|characters)\b"
)
MANY_SINGULAR = re.compile(
    r"(?<![\d.])(0|[2-9]|\d\d+) (job|resource|cleanup|device|deletion|tag|time|IoT call|call|stage|refresh|"
    r"key|character)\b"
)


def disagreements(output: str) -> list[str]:
    return [
        *(match.group(0) for match in ONE_PLURAL.finditer(output)),
        *(match.group(0) for match in MANY_SINGULAR.finditer(output)),
        *re.findall(r"\w+\(s\)", output),
    ]


# --------------------------------------------------------------------------- the endpoints


@pytest.fixture
def not_aws() -> Iterator[str]:
    """A web server that is not AWS: every request answers 404 with an HTML page."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            body = b"<!DOCTYPE HTML><html><body><h1>404 Not Found</body></html>"  # not even well-formed
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = answer  # noqa: N815 (http.server's names)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def command_clients(endpoint: Endpoint) -> cli.Clients:
    """IoT, CloudFormation and Step Functions clients as the command makes them (the engine's
    retries and timeouts), for a test to hook into."""
    iot, cloudformation, states = (
        endpoint.client(service, config=CLIENT_CONFIG)
        for service in ("iot", "cloudformation", "stepfunctions")
    )
    return cli.Clients(iot, None, cloudformation, states)


# --------------------------------------------------------------------------- running the program


def environment(**changes: str | None) -> dict[str, str]:
    """This test's offline environment (conftest's), nothing read from ~/.aws, with ``changes``
    (None removes a variable)."""
    env = {
        **os.environ,
        "PYTHONPATH": PYTHONPATH,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in changes.items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    return env


def program(
    *argv: str, env: dict[str, str] | None = None, via: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m iot_job_cleanup ARGV`` (or ``via`` instead of ``-m iot_job_cleanup``), to its end."""
    return subprocess.run(
        [sys.executable, *(via or ["-m", "iot_job_cleanup"]), *argv],
        env=env or environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def on(endpoint: Endpoint | str) -> list[str]:
    return ["--endpoint-url", endpoint if isinstance(endpoint, str) else endpoint.url, "--region", REGION]


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The program's one line on standard error (and nothing else)."""
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.removesuffix("\n")


def console_script(tmp_path: Path) -> list[str]:
    """``iot-job-cleanup`` as pip writes the console script (``iot_job_cleanup.cli:main``)."""
    script = tmp_path / "iot-job-cleanup"
    script.write_text(
        "import re\nimport sys\nfrom iot_job_cleanup.cli import main\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        "    sys.exit(main())\n"
    )
    return [str(script)]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


# --------------------------------------------------------------------------- 1. configuration errors


NO_CREDENTIALS = (
    "iot-job-cleanup: Unable to locate credentials. Pass --profile, or set AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (aws configure); nothing was changed."
)


@pytest.mark.parametrize(
    "argv",
    [
        ["delete", "--job-id", "ota-1", "--dry-run"],
        ["delete", "--prefix", "ota-", "--yes"],
        ["resume", "--stack", "Fleet"],
        ["watch", "--stack", "Fleet"],
    ],
    ids=["delete-dry-run", "delete", "resume", "watch"],
)
def test_no_credentials_is_one_line_naming_the_fix_and_exit_2(live: Endpoint, argv: list[str]) -> None:
    live.job("ota-1")

    result = program(*argv, *on(live), env=environment(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None))

    assert result.returncode == 2
    assert one_line(result) == NO_CREDENTIALS
    assert result.stdout == ""
    assert live.existing() == {"ota-1"}


@pytest.mark.parametrize(
    ("argv", "env", "line"),
    [
        (
            ["delete", "--job-id", "ota-1", "--dry-run"],
            {"AWS_DEFAULT_REGION": None, "AWS_REGION": None},
            "iot-job-cleanup: You must specify a region. Pass --region, or set AWS_REGION (or give the "
            "profile a region); nothing was changed.",
        ),
        (
            ["delete", "--job-id", "ota-1", "--yes", "--profile", "nosuch"],
            {},
            "iot-job-cleanup: The config profile (nosuch) could not be found. Check --profile or AWS_PROFILE "
            "(aws configure list-profiles names them); nothing was changed.",
        ),
        (
            ["watch", "--stack", "Fleet", "--profile", "nosuch"],
            {},
            "iot-job-cleanup: The config profile (nosuch) could not be found. Check --profile or AWS_PROFILE "
            "(aws configure list-profiles names them); nothing was changed.",
        ),
    ],
    ids=["no-region", "no-profile", "watch-no-profile"],
)
def test_a_local_set_up_error_is_one_line_naming_the_fix_and_exit_2(
    argv: list[str], env: dict[str, str | None], line: str
) -> None:
    result = program(*argv, env=environment(**env))

    assert result.returncode == 2
    assert one_line(result) == line
    assert "Jobs may be left" not in result.stderr


@pytest.mark.parametrize(
    ("command", "tail"), [("resume", "; nothing was changed."), ("watch", ".")], ids=["resume", "watch"]
)
def test_a_stack_that_does_not_exist_is_one_line_and_exit_2(live: Endpoint, command: str, tail: str) -> None:
    extra = ["--yes"] if command == "resume" else []
    result = program(command, "--stack", "NoSuchStack", *extra, *on(live))

    assert result.returncode == 2
    assert one_line(result) == (
        f"iot-job-cleanup: Stack NoSuchStack does not exist in {REGION}. Check --stack (the stack's name or "
        f"id; a deleted stack is found by its id only), --region and --profile{tail}"
    )
    assert "Jobs may be left" not in result.stderr


def two_cleanups(stacks: Stacks) -> None:
    template = {
        "Resources": {
            "First": cleanup_resource({"JobIds": ["one"], "Force": "false"}),
            "Second": cleanup_resource({"JobIds": ["two"], "Force": "false"}),
        }
    }
    put_stack(stacks, "DELETE_FAILED", template, {"First": "DELETE_FAILED", "Second": "DELETE_FAILED"})


@pytest.mark.parametrize(
    ("broken", "code", "became"),
    [("one", 2, "nothing was changed."), ("two", 1, "Jobs may be left: run the same command again.")],
    ids=["before-any-deletion", "after-a-deletion"],
)
def test_jobs_may_be_left_only_once_this_run_started_a_deletion(
    simulated: Endpoint,
    stacks: dict[str, list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    broken: str,
    code: int,
    became: str,
) -> None:
    """The endpoint goes away when a cleanup of the stack looks at its job: before any DeleteJob
    (the first cleanup's), or once the first cleanup deleted its job (the second's). What the
    line says of the jobs is what the run did (its DeleteJob calls), not what the error says."""
    simulated.job("one")
    simulated.job("two")
    two_cleanups(stacks)
    clients = command_clients(simulated)

    def endpoint_gone(request: Any, **_: Any) -> None:
        if request.url.endswith(f"/jobs/{broken}"):
            raise EndpointConnectionError(
                endpoint_url=request.url, error=ConnectionRefusedError(111, "Connection refused")
            )

    clients.iot.meta.events.register("before-send.iot.DescribeJob", endpoint_gone)

    exit_code, output = simulated.run("resume", "--stack", "Fleet", "--yes", clients=clients)

    err = capsys.readouterr().err
    assert exit_code == code, output + err
    assert err == (
        f"iot-job-cleanup: Could not reach the IoT endpoint {simulated.url} (connection refused). Check "
        f"--endpoint-url / AWS_ENDPOINT_URL; {became}\n"
    )
    assert simulated.existing() == ({"one", "two"} if broken == "one" else {"two"})


# --------------------------------------------------------------------------- 2. the endpoint


@pytest.mark.parametrize(
    ("argv", "service"),
    [
        (["delete", "--job-id", "ota-1", "--dry-run"], "IoT"),
        (["delete", "--tag", "fleet=demo", "--yes"], "IoT"),
        (["resume", "--stack", "Fleet", "--yes"], "CloudFormation"),
    ],
    ids=["delete-dry-run", "delete-by-tag", "resume"],
)
def test_an_unreachable_endpoint_is_named_and_exit_2(argv: list[str], service: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"

    result = program(*argv, *on(closed))

    assert result.returncode == 2
    assert one_line(result) == (
        f"iot-job-cleanup: Could not reach the {service} endpoint {closed} (connection refused). Check "
        "--endpoint-url / AWS_ENDPOINT_URL; nothing was changed."
    )


def test_an_unreachable_endpoint_from_aws_endpoint_url_is_named_as_well() -> None:
    closed = f"http://127.0.0.1:{free_port()}"

    result = program("delete", "--prefix", "ota-", "--dry-run", env=environment(AWS_ENDPOINT_URL=closed))

    assert result.returncode == 2
    assert one_line(result) == (
        f"iot-job-cleanup: Could not reach the IoT endpoint {closed} (connection refused). Check "
        "--endpoint-url / AWS_ENDPOINT_URL; nothing was changed."
    )


def test_watch_on_an_unreachable_endpoint_is_named_and_exit_2() -> None:
    closed = f"http://127.0.0.1:{free_port()}"

    result = program("watch", "--stack", "Fleet", *on(closed))

    assert result.returncode == 2
    assert one_line(result) == (
        f"iot-job-cleanup: Could not reach the CloudFormation endpoint {closed} (connection refused). Check "
        "--endpoint-url / AWS_ENDPOINT_URL; nothing is watched."
    )


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["delete", "--prefix", "ota-", "--dry-run"],
            "The IoT endpoint {url} does not answer as IoT does (ListJobs: HTTP 404 with no AWS error).",
        ),
        (
            ["delete", "--job-id", "ota-1", "--yes"],
            "The IoT endpoint {url} does not answer as IoT does (DescribeJob: HTTP 404 with no AWS error).",
        ),
        (
            ["resume", "--stack", "Fleet", "--yes"],
            "The CloudFormation endpoint {url} does not answer as CloudFormation does (DescribeStacks: an "
            "answer that is not AWS's: botocore cannot parse it).",
        ),
    ],
    ids=["listing", "named", "resume"],
)
def test_an_endpoint_that_is_not_aws_is_named_and_exit_2(not_aws: str, argv: list[str], said: str) -> None:
    result = program(*argv, *on(not_aws))

    assert result.returncode == 2
    assert one_line(result) == (
        f"iot-job-cleanup: {said.format(url=not_aws)} Check --endpoint-url / AWS_ENDPOINT_URL; "
        "nothing was changed."
    )
    assert "<html>" not in result.stderr.lower() and "This is a bug" not in result.stderr


# ------------------------------------------------------------------ 3. validation, in the flags' words


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--job-id", "bad id!"], "--job-id 'bad id!': a job id is 1 to 64 characters of [a-zA-Z0-9_-]."),
        (["--job-id", "a" * 65], f"--job-id {'a' * 65!r}: a job id is 1 to 64 characters of [a-zA-Z0-9_-]."),
        (
            ["--thing-group", "fleet/eu"],
            "--thing-group 'fleet/eu': a thing group name is 1 to 128 characters of [a-zA-Z0-9:_-].",
        ),
        (["--prefix", "ota 1"], "--prefix 'ota 1': a prefix is 1 to 64 characters of [a-zA-Z0-9_-]."),
        (["--prefix", ""], "--prefix '': a prefix is 1 to 64 characters of [a-zA-Z0-9_-]."),
        (
            ["--tag", "fleet=demo!"],
            "--tag 'fleet=demo!': a tag value is 0 to 256 letters, digits, spaces or _.:/=+-@.",
        ),
        (
            ["--tag", "fleet!=demo"],
            "--tag 'fleet!=demo': a tag key is 1 to 128 letters, digits, spaces or _.:/=+-@.",
        ),
        (
            ["--tag", "aws:stack=x"],
            "--tag 'aws:stack=x': keys starting with 'aws:' are AWS's own; use another key.",
        ),
        (
            ["--tag", "fleet=a", "--tag", "fleet=b"],
            "--tag 'fleet=b': the key 'fleet' is already given as 'fleet=a', and a job carries one value per "
            "key; give each key once.",
        ),
        (
            ["--prefix", "ota-", "--namespace-id", "ns 1"],
            "--namespace-id 'ns 1': a namespace id is one or more characters of [a-zA-Z0-9_-].",
        ),
    ],
    ids=[
        "job-id",
        "job-id-65",
        "thing-group",
        "prefix",
        "empty-prefix",
        "tag-value",
        "tag-key",
        "aws-key",
        "two-values",
        "namespace",
    ],
)
def test_a_bad_value_is_said_in_the_flags_words_after_deletes_usage(
    capsys: pytest.CaptureFixture[str], flags: list[str], error: str
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # were AWS asked, the answer would be about the endpoint

    code = cli.main(["delete", *flags, "--dry-run", *on(closed)], out=io.StringIO(), stdin=io.StringIO(""))

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("usage: iot-job-cleanup delete [-h]"), err  # delete's usage, not the top level's
    assert err.splitlines()[-1].startswith(f"iot-job-cleanup delete: error: {error}"), err
    for engine_words in (
        "JobIds",
        "ThingGroupNames",
        "JobIdPrefix",
        "JobTags",
        "NamespaceId",
        "Fix or remove",
    ):
        assert engine_words not in err


def test_the_flags_are_checked_by_the_engines_own_rules(capsys: pytest.CaptureFixture[str]) -> None:
    """The longest job id the engine's pattern allows passes the check (and reaches AWS: here
    an endpoint that is closed); one character more is a usage error."""
    longest = int(re.search(r"\{1,(\d+)\}", naming_rules().JOB_ID_PATTERN.pattern).group(1))  # type: ignore[union-attr]
    closed = f"http://127.0.0.1:{free_port()}"

    assert cli.main(["delete", "--job-id", "a" * longest, "--dry-run", *on(closed)], out=io.StringIO()) == 2
    assert "Could not reach the IoT endpoint" in capsys.readouterr().err
    assert (
        cli.main(["delete", "--job-id", "a" * (longest + 1), "--dry-run", *on(closed)], out=io.StringIO())
        == 2
    )
    assert f"a job id is 1 to {longest} characters" in capsys.readouterr().err


@pytest.mark.parametrize("run_as", ["module", "console script"])
def test_the_usage_line_names_the_program_as_it_was_run(tmp_path: Path, run_as: str) -> None:
    via = console_script(tmp_path) if run_as == "console script" else None
    prog = "iot-job-cleanup" if via else PYTHON_M

    result = program("delete", "--job-id", "bad id!", "--dry-run", via=via)

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"usage: {prog} delete [-h]"), result.stderr
    assert (
        lines[-1]
        == f"{prog} delete: error: --job-id 'bad id!': a job id is 1 to 64 characters of [a-zA-Z0-9_-]."
    )
    assert "Traceback" not in result.stderr
    assert program("--help", via=via).stdout.startswith(f"usage: {prog} [-h]")


# --------------------------------------------------------------------------- 4. durations


FORMS = "write a duration such as 90 (seconds), 90s, 10m, 1h or 1h30m."


@pytest.mark.parametrize(
    ("drain", "said"),
    [
        (["--drain", "-5m"], f"--drain '-5m': a drain time cannot be negative; {FORMS}"),
        (["--drain=-5m"], f"--drain '-5m': a drain time cannot be negative; {FORMS}"),
        (["--drain", "5x"], f"--drain '5x': {FORMS}"),
        (["--drain", ""], f"--drain '': {FORMS}"),
    ],
    ids=["negative", "negative-joined", "unknown-unit", "empty"],
)
def test_a_bad_drain_names_the_flag_and_the_forms_it_takes(
    capsys: pytest.CaptureFixture[str], drain: list[str], said: str
) -> None:
    code = cli.main(["delete", "--prefix", "ota-", *drain, "--yes"], out=io.StringIO(), stdin=io.StringIO(""))

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("usage: iot-job-cleanup delete [-h]")
    assert err.splitlines()[-1] == f"iot-job-cleanup delete: error: {said}"
    assert "expected one argument" not in err


def test_a_negative_drain_reaches_its_message_in_a_real_process() -> None:
    result = program("delete", "--prefix", "ota-", "--drain", "-5m", "--yes")

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"{PYTHON_M} delete: error: --drain '-5m': a drain time cannot be negative; {FORMS}"
    )
    assert "expected one argument" not in result.stderr


def test_the_forms_the_message_names_are_accepted() -> None:
    assert [cli.parse_duration(text) for text in ("90", "90s", "10m", "1h", "1h30m")] == [
        90,
        90,
        600,
        3600,
        5400,
    ]


# --------------------------------------------------------------------------- 5. saying what discovery does


def finding_lines(output: str) -> list[tuple[float, str]]:
    """(seconds into discovery, line) of each ``Finding jobs (N s): ...`` line."""
    found = []
    for line in output.splitlines():
        match = re.match(r"Finding jobs \((\d+) s\): ", line)
        if match:
            found.append((float(match.group(1)), line))
    return found


def test_in_a_log_discovery_says_what_it_is_doing_every_10_seconds(simulated: Endpoint) -> None:
    for n in range(120):  # each job's tags are read, one call every 0.25 s (IoT's shared rate)
        simulated.job(f"job-{n:03d}", tags={"fleet": "demo"} if n % 2 else {"fleet": "other"})

    code, output = simulated.run("delete", "--tag", "fleet=demo", "--dry-run")

    assert code == 0, output
    took = float(re.search(r"Discovery took (\d+) s", output).group(1))  # type: ignore[union-attr]
    lines = finding_lines(output)
    times = [at for at, _ in lines]
    assert took >= 30 and len(times) >= 3
    # Every 10 s (to the 0.25 s step the tag reads are paced at), none sooner, no silence longer.
    assert all(10 <= later - earlier <= 11 for earlier, later in zip([0.0, *times], times, strict=False)), (
        times
    )
    assert took - times[-1] < 11
    listed = [int(re.search(r"(\d+) jobs? listed", line).group(1)) for _, line in lines]  # type: ignore[union-attr]
    read = [int(re.search(r"(\d+) tags? read", line).group(1)) for _, line in lines]  # type: ignore[union-attr]
    selected = [int(re.search(r"(\d+) selected so far", line).group(1)) for _, line in lines]  # type: ignore[union-attr]
    assert listed == sorted(listed) and read == sorted(read) and selected == sorted(selected)
    assert read[0] > 0 and selected[-1] <= 60 < read[-1]
    assert lines[0][1].endswith("selected so far...")
    assert output.splitlines()[-2] == "Dry run: 60 jobs would be deleted; nothing was changed."
    assert output.splitlines()[-1] == (
        f"Discovery took {took:.0f} s, reading each job's tags; --prefix or --thing-group narrows the "
        "listing and makes it faster."
    )
    assert disagreements(output) == []


def test_the_hint_is_for_a_selection_by_tags_alone(simulated: Endpoint) -> None:
    simulated.job("ota-1", tags={"fleet": "demo"})

    for selection in (["--tag", "fleet=demo", "--prefix", "ota-"], ["--tag", "fleet=demo", "--job-id", "x"]):
        code, output = simulated.run("delete", *selection, "--dry-run")
        assert code == 0, output
        assert output.splitlines()[-1].startswith("Discovery took ") and output.endswith(".\n")
        assert "reading each job's tags" not in output


def test_a_line_comes_on_time_while_one_call_waits_for_its_answer(
    simulated: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timer thread: ListJobs takes 2 s (real time) to answer, and lines come every 0.5 s
    meanwhile (the interval made short for the test; it is 10 s)."""
    monkeypatch.setattr(cli.progress, "FINDING_LINE_SECONDS", 0.5)
    simulated.job("ota-1")
    iot = simulated.client("iot", config=CLIENT_CONFIG)
    iot.meta.events.register("before-send.iot.ListJobs", lambda **_: time.sleep(2))
    clients = cli.Clients(iot, None, None)

    code, output = simulated.run(
        "delete", "--prefix", "ota-", "--dry-run", clients=clients, clock=time.monotonic, sleep=time.sleep
    )

    assert code == 0, output
    lines = [line for _, line in finding_lines(output.replace("(under a second)", "(0 s)"))]
    waiting = [line for line in lines if "0 jobs listed" in line]  # said while the one call was out
    assert len(waiting) >= 2, output


def test_on_a_terminal_a_spinner_is_redrawn_in_place_then_taken_away(simulated: Endpoint) -> None:
    simulated.job("ota-1", tags={"fleet": "demo"})
    out = Tty()

    code, output = simulated.run("delete", "--tag", "fleet=demo", "--dry-run", out=out)

    assert code == 0, output
    assert re.search(
        r"\r\x1b\[2K[|/\\-] Finding jobs \(under a second\): \d+ jobs? listed, \d+ tags? read, ", output
    )
    spinner_end = output.rindex("\r\x1b[2K")
    assert "Finding jobs" not in output[spinner_end:]  # taken off before the listing
    assert output[spinner_end:].startswith("\r\x1b[2K1 job found in all jobs, matching tags fleet=demo:")


def test_a_real_terminal_sees_the_spinner(live: Endpoint) -> None:
    live.job("ota-1", tags={"fleet": "demo"})
    live.job("ota-2", tags={"fleet": "demo"})
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "iot_job_cleanup", "delete", "--tag", "fleet=demo", "--dry-run", *on(live)],
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    try:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            seen += chunk
        code = process.wait(timeout=60)
    finally:
        process.kill()
        os.close(leader)
    output = seen.decode()
    assert code == 0, output
    assert "Finding jobs (" in output and "\r\x1b[2K" in output
    assert "Dry run: 2 jobs would be deleted; nothing was changed." in output


def test_resume_says_which_cleanup_is_finding_jobs_and_its_hint_is_the_constructs(
    simulated: Endpoint, stacks: dict[str, list[dict[str, Any]]]
) -> None:
    for n in range(60):
        simulated.job(f"job-{n:02d}", tags={"fleet": "demo"})
    tagged = cleanup_resource({"JobTags": [{"Key": "fleet", "Value": "demo"}], "Force": "false"})
    put_stack(stacks, "DELETE_FAILED", {"Resources": {"Tagged": tagged}}, {"Tagged": "DELETE_FAILED"})
    clients = command_clients(simulated)

    code, output = simulated.run("resume", "--stack", "Fleet", "--dry-run", clients=clients)

    assert code == 0, output
    assert re.search(
        r"^Fleet/Tagged: finding jobs \(10 s\): \d+ jobs listed, \d+ tags read, \d+ selected so far",
        output,
        re.M,
    )
    assert "Dry run: 60 jobs would be deleted; nothing was changed." in output
    assert output.splitlines()[-1].endswith(
        "reading each job's tags; a job_id_prefix or thing_groups on the cleanup narrows the listing and "
        "makes it faster."
    )
    assert disagreements(output) == []


# --------------------------------------------------------------------------- 6. counts and their nouns


def test_the_noun_check_catches_what_it_is_for() -> None:
    assert disagreements("1 jobs left; 2 job left; 3 job(s); 1 IoT calls; 0 deletion") == [
        "1 jobs",
        "1 IoT calls",
        "2 job",
        "3 job",
        "0 deletion",
        "job(s)",
    ]
    assert disagreements("1 job, 2 jobs, 0 jobs, 0.5 jobs, 1 of 2 jobs left, 10 deletions, 1 IoT call") == []


def test_counts_agree_with_their_nouns_in_what_the_program_says(
    live: Endpoint, stacks: dict[str, list[dict[str, Any]]]
) -> None:
    said = []
    live.job("one-1", tags={"fleet": "demo"})
    for argv in (["--job-id", "one-1", "--dry-run"], ["--tag", "fleet=demo", "--dry-run"]):  # 1 job
        said.append(program("delete", *argv, *on(live)))
        assert "Dry run: 1 job would be deleted; nothing was changed." in said[-1].stdout
        assert "1 job named with --job-id:" in said[-1].stdout or "1 job found in all jobs" in said[-1].stdout
    live.job("two-1")
    live.job("two-2")
    said.append(program("delete", "--prefix", "two-", "--dry-run", *on(live)))  # 2 jobs
    assert "2 jobs found in all jobs, matching id prefix 'two-':" in said[-1].stdout
    assert "Dry run: 2 jobs would be deleted; nothing was changed." in said[-1].stdout
    said.append(program("delete", "--prefix", "two-", *on(live)))  # asks, and has no terminal to ask on
    assert (
        "2 jobs would be deleted, and there is no terminal to ask on. Pass --yes to delete them"
        in said[-1].stdout
    )
    said.append(program("delete", "--job-id", "one-1", *on(live)))
    assert (
        "1 job would be deleted, and there is no terminal to ask on. Pass --yes to delete it"
        in said[-1].stdout
    )
    said.append(program("delete", "--job-id", "one-1", "--yes", *on(live)))  # delete 1 job
    assert re.search(
        r"every selected job is gone after \dm\d\ds; \d+ IoT calls?, LimitExceededException 0 times\.",
        said[-1].stdout,
    )
    assert "[####################] 1/1 gone, 0 deleting, 0 waiting" in said[-1].stdout

    live.job("wave-1")
    waves = cleanup_resource({"JobIds": ["wave-1"], "Force": "false"})
    stack = put_stack(stacks, "DELETE_FAILED", {"Resources": {"Waves": waves}}, {"Waves": "DELETE_FAILED"})
    said.append(program("resume", "--stack", "Fleet", "--dry-run", *on(live)))
    assert "Dry run: 1 job would be deleted; nothing was changed." in said[-1].stdout
    said.append(program("resume", "--stack", "Fleet", "--yes", *on(live)))
    assert "Fleet/Waves: every selected job is gone" in said[-1].stdout

    live.job("wave-1")  # watch: the stack's deletion followed, then over
    stack.status("DELETE_IN_PROGRESS")
    stack.resource("Waves", "DELETE_IN_PROGRESS")
    watching = subprocess.Popen(
        [sys.executable, "-m", "iot_job_cleanup", "watch", "--stack", "Fleet", "--interval", "1", *on(live)],
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watching.stdout is not None
        lines = [watching.stdout.readline() for _ in range(2)]  # the stack's status, then the cleanup's line
        assert "] Waves: stage 1 of 1 running; 1 of 1 job left, 0 deleting;" in lines[1], lines
        live.lifecycle.remove_job("wave-1")
        stack.resource("Waves", "DELETE_COMPLETE")
        stack.status("DELETE_COMPLETE")
        rest, err = watching.communicate(timeout=60)
    finally:
        watching.kill()
        watching.wait()
    assert watching.returncode == 0, rest + err
    watched = "".join(lines) + rest
    assert "Stack Fleet: every cleanup finished; the stack is deleted." in watched

    everything = "".join(result.stdout + result.stderr for result in said) + watched
    assert "Traceback" not in everything
    assert disagreements(everything) == []
