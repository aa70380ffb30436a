"""The README's offline session, run as written: the endpoint started with its flags, the
export line it prints, then each command through a shell, as ``iot-job-cleanup`` (a console
script as pip writes one). Every line the README shows must come, in order (numbers and the
port may differ; ``...`` stands for lines left out), with the exit code it shows."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- session: run by tests/cli/test_readme_session.py -->"


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)
    exit_code: int | None = None


def session() -> list[Step]:
    text = (ROOT / "README.md").read_text()
    block = text.split(MARKER, 1)[1].split("```\n", 1)[1].split("\n```", 1)[0]
    steps: list[Step] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append(Step(line[2:]))
        elif (code := re.fullmatch(r"\(exit (\d+)\)", line)) is not None:
            steps[-1].exit_code = int(code[1])
        elif line.strip():
            steps[-1].expected.append(line)
    return steps


def pattern(line: str) -> re.Pattern[str]:
    """A README line as a pattern: any number where it shows one, any port for PORT."""
    parts = re.split(r"(\d+|PORT)", line)
    return re.compile("".join(r"\d+" if re.fullmatch(r"\d+|PORT", p) else re.escape(p) for p in parts))


def assert_shown(expected: list[str], output: list[str], command: str) -> None:
    """Each expected line matches an output line, in order; '...' skips any lines."""
    lines: Iterator[str] = iter(output)
    for line in expected:
        if line.strip() == "...":
            continue
        wanted = pattern(line)
        if not any(wanted.fullmatch(actual) for actual in lines):
            raise AssertionError(f"{command!r} did not print {line!r}; it printed:\n" + "\n".join(output))


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """PATH with an ``iot-job-cleanup`` console script, the package importable, no AWS set-up."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "iot-job-cleanup"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom iot_job_cleanup.cli import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(str(ROOT / part) for part in ("constructs", "lambda")),
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        PYTHONUNBUFFERED="1",
    )
    return env


def test_the_readmes_offline_session_prints_what_it_shows(shell_env: dict[str, str]) -> None:
    start, export, *commands = session()
    assert start.command.startswith("python -m iot_job_cleanup.emulator") and start.command.endswith(" &")
    assert export.command.startswith("export AWS_ENDPOINT_URL=")
    argv = [sys.executable, *shlex.split(start.command.removesuffix(" &"))[1:]]
    server = subprocess.Popen(
        argv, env=shell_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert server.stdout is not None
        banner = []
        while not banner or banner[-1] != "Serving until Ctrl-C.":
            line = server.stdout.readline()
            assert line, f"the endpoint stopped: {server.stderr.read() if server.stderr else ''}"
            banner.append(line.rstrip("\n"))
        assert_shown(start.expected, banner, start.command)
        (printed_export,) = [line.strip() for line in banner if line.strip().startswith("export ")]
        assert pattern(export.command).fullmatch(printed_export)
        for assignment in shlex.split(printed_export)[1:]:
            name, value = assignment.split("=", 1)
            shell_env[name] = value

        for step in commands:
            ran = subprocess.run(
                ["bash", "-c", step.command],
                env=shell_env,
                capture_output=True,
                text=True,
                timeout=120,
                cwd=ROOT,
            )
            output = (ran.stdout + ran.stderr).splitlines()
            assert "Traceback" not in ran.stderr, ran.stderr
            assert ran.returncode == step.exit_code, (step.command, ran.returncode, output)
            assert_shown(step.expected, output, step.command)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode == 0
