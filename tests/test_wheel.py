"""The library installs as a wheel and works outside this repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import iot_job_cleanup

REPO = Path(__file__).resolve().parent.parent

USER_APP = """
import json

import aws_cdk as cdk
import iot_job_cleanup
from iot_job_cleanup import IotJobCleanup
from iot_job_cleanup.testing import asset_hashes, template_for_snapshot

app = cdk.App(outdir="cdk.out")
stack = cdk.Stack(app, "UserStack")
IotJobCleanup(stack, "Cleanup", job_ids=["ota-2026-11", "ota-2026-12"], force=True)
app.synth()
masked = template_for_snapshot(stack)
assert not asset_hashes(masked) and '"<asset-hash>.zip"' in json.dumps(masked), masked
print(iot_job_cleanup.__file__)
"""


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_a_wheel_installed_in_a_new_venv_synthesizes_a_stack_outside_the_repo(tmp_path: Path) -> None:
    run(sys.executable, "-m", "build", "--wheel", "--outdir", tmp_path / "dist", REPO, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("iot_job_cleanup-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    run(venv / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", wheel, cwd=tmp_path)
    user = tmp_path / "user-app"
    user.mkdir()
    (user / "app.py").write_text(USER_APP)
    # Node 24 from this venv for jsii; nothing of the repository on the path.
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path)}

    installed_at = run(venv / "bin" / "python", "app.py", cwd=user, env=env).strip().splitlines()[-1]

    assert installed_at.startswith(str(venv)), installed_at
    package = Path(installed_at).parent
    assert (package / "py.typed").is_file(), "py.typed is missing: type checkers would ignore our hints"
    assert (package / "testing.py").is_file()
    # The construct is the synth package; its naming rules are the engine's rules.py, shipped.
    assert (package / "synth" / "construct.py").is_file()
    assert (package / "handler" / "iot_job_cleanup_handler" / "rules.py").is_file()
    assert (package / "emulator" / "model.py").is_file()  # the package behind the [emulator] extra
    assert (venv / "bin" / "iot-job-cleanup-rehearse").is_file()
    # The rehearsal and its intrinsic evaluator: packages of their own, shipped; --help needs no extra.
    assert (package / "cfn" / "intrinsics.py").is_file()
    assert (package / "rehearse" / "command.py").is_file()
    rehearse_help = run(venv / "bin" / "iot-job-cleanup-rehearse", "--help", cwd=user, env=env)
    assert rehearse_help.startswith("usage: iot-job-cleanup-rehearse "), rehearse_help
    # The command line: installed, and its engine is the handler package the wheel carries.
    assert (package / "handler" / "iot_job_cleanup_handler" / "scheduling.py").is_file()
    assert "usage: iot-job-cleanup" in run(venv / "bin" / "iot-job-cleanup", "--help", cwd=user, env=env)
    # One version: the wheel's name, --version and __version__ agree.
    version = run(venv / "bin" / "iot-job-cleanup", "--version", cwd=user, env=env).strip()
    assert version == f"iot-job-cleanup {iot_job_cleanup.__version__}"
    assert wheel.name.startswith(f"iot_job_cleanup-{iot_job_cleanup.__version__}-")
    dist_info = package.parent / f"iot_job_cleanup-{iot_job_cleanup.__version__}.dist-info"
    assert {"LICENSE"} & {path.name for path in dist_info.rglob("LICENSE*")}, "the Apache-2.0 text is missing"
    without_boto3 = subprocess.run(
        [venv / "bin" / "iot-job-cleanup", "delete", "--job-id", "ota-1", "--dry-run"],
        cwd=user,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert without_boto3.returncode == 2
    assert "pip install 'iot-job-cleanup[cli]'" in without_boto3.stderr
    template = json.loads((user / "cdk.out" / "UserStack.template.json").read_text())
    (resource,) = [r for r in template["Resources"].values() if r["Type"] == "Custom::IotJobCleanup"]
    assert resource["Properties"]["JobIds"] == ["ota-2026-11", "ota-2026-12"]
    assert resource["Properties"]["Force"] == "true"
    handler_assets = list((user / "cdk.out").glob("asset.*/iot_job_cleanup_handler"))
    assert len(handler_assets) == 1
    source = REPO / "lambda" / "iot_job_cleanup_handler"
    shipped = {path.name: path.read_text() for path in handler_assets[0].glob("*.py")}
    assert shipped == {path.name: path.read_text() for path in source.glob("*.py")}
    assert "__init__.py" in shipped and "discovery.py" in shipped
