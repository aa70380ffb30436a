"""iot_job_cleanup.testing: users' snapshot tests survive a release that changes the handler."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

import iot_job_cleanup
import iot_job_cleanup.synth.provider as provider_module
from iot_job_cleanup import HANDLER_MODULE, IotJobCleanup
from iot_job_cleanup.testing import (
    ASSET_HASH_PLACEHOLDER,
    asset_hashes,
    mask_asset_hashes,
    template_for_snapshot,
)

REPO = Path(__file__).resolve().parents[2]
HASH_A = "343c9a7fe004be180bf698ec131b1b07c335cfed311a388c0a802fae4495f3d5"
HASH_B = "e16ffb3b34af185b8b30c88fdb19faa13b6c42bb38580485c4e84b384ee48b63"
MASK = ASSET_HASH_PLACEHOLDER


def a_template() -> dict[str, Any]:
    """Where CDK writes asset hashes: S3 keys, asset metadata, Fn::Join parts, legacy parameter names."""
    return {
        "Parameters": {
            f"AssetParameters{HASH_B}S3Bucket1A2B3C4D": {"Type": "String"},
            "BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk-bootstrap"},
        },
        "Resources": {
            "HandlerF00D1234": {
                "Type": "AWS::Lambda::Function",
                "Metadata": {"aws:asset:path": f"asset.{HASH_A}", "aws:asset:property": "Code"},
                "Properties": {
                    "Code": {"S3Bucket": {"Fn::Sub": "cdk-hnb659fds-assets"}, "S3Key": f"{HASH_A}.zip"},
                    "MemorySize": 256,
                    "Environment": {"Variables": {"DEBUG": False, "NOTHING": None, "RATIO": 0.5}},
                },
            },
            "Image": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "Image": {
                        "Fn::Join": ["", [{"Ref": "AWS::AccountId"}, ".dkr.ecr.amazonaws.com/repo:", HASH_B]]
                    }
                },
            },
        },
    }


def masked_template() -> dict[str, Any]:
    template = a_template()
    parameters = template["Parameters"]
    parameters[f"AssetParameters{MASK}S3Bucket1A2B3C4D"] = parameters.pop(
        f"AssetParameters{HASH_B}S3Bucket1A2B3C4D"
    )
    handler = template["Resources"]["HandlerF00D1234"]
    handler["Metadata"]["aws:asset:path"] = f"asset.{MASK}"
    handler["Properties"]["Code"]["S3Key"] = f"{MASK}.zip"
    template["Resources"]["Image"]["Properties"]["Image"]["Fn::Join"][1][2] = MASK
    return template


# --------------------------------------------------------------------------- the helpers


def test_every_asset_hash_is_masked_in_strings_and_keys_at_any_depth() -> None:
    assert mask_asset_hashes(a_template()) == masked_template()
    assert MASK == "<asset-hash>"  # the demo's stored snapshot holds this placeholder


def test_asset_hashes_lists_each_distinct_hash() -> None:
    assert asset_hashes(a_template()) == {HASH_A, HASH_B}
    assert asset_hashes(mask_asset_hashes(a_template())) == set()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("g" * 64, id="64 letters, not hex"),
        pytest.param(HASH_A[:-1] + "z", id="63 hex and a letter"),
        pytest.param(HASH_A.upper(), id="64 upper-case hex"),
        pytest.param(HASH_A[:63], id="63 hex"),
        pytest.param(HASH_A + "0", id="65 hex"),
        pytest.param(HASH_A + HASH_B, id="128 hex"),
        pytest.param("AWS679f53fac002430cb0da5b7982bd22872D164C4C", id="a logical id with a UUID"),
        pytest.param("da39a3ee5e6b4b0d3255bfef95601890afd80709", id="a SHA-1"),
    ],
)
def test_other_strings_are_left_alone(text: str) -> None:
    template = {"Resources": {text: {"Properties": {"Value": text, "Parts": [text, f"x-{text}.zip"]}}}}

    assert mask_asset_hashes(template) == template
    assert asset_hashes(template) == set()


def test_the_input_is_not_modified_and_shares_nothing_with_the_copy() -> None:
    template = a_template()
    before = copy.deepcopy(template)

    masked = mask_asset_hashes(template)
    masked["Resources"]["HandlerF00D1234"]["Properties"]["Environment"]["Variables"]["DEBUG"] = True
    masked["Resources"]["Image"]["Properties"]["Image"]["Fn::Join"][1].append("more")

    assert template == before


def test_a_template_without_assets_comes_back_as_an_equal_copy() -> None:
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "t"}}}}

    masked = mask_asset_hashes(template)

    assert masked == template
    assert masked is not template
    assert masked["Resources"] is not template["Resources"]


def test_keys_that_would_merge_are_refused() -> None:
    template = {"Parameters": {f"AssetParameters{HASH_A}S3Bucket": 1, f"AssetParameters{HASH_B}S3Bucket": 2}}

    with pytest.raises(ValueError, match=r"differ only in asset hashes.*AssetParameters<asset-hash>S3Bucket"):
        mask_asset_hashes(template)


def test_a_template_object_instead_of_its_dict_is_refused() -> None:
    with pytest.raises(TypeError, match=r"template is a Template: .*to_json\(\)"):
        mask_asset_hashes(Template.from_json(a_template()))  # type: ignore[arg-type]


def test_the_module_declares_its_public_names() -> None:
    import iot_job_cleanup.testing as testing

    assert sorted(testing.__all__) == sorted(
        ["ASSET_HASH_PLACEHOLDER", "asset_hashes", "mask_asset_hashes", "template_for_snapshot"]
    )
    for name in testing.__all__:
        assert getattr(testing, name) is not None
    for function in (asset_hashes, mask_asset_hashes, template_for_snapshot):
        assert function.__doc__, function


def test_importing_it_loads_no_test_framework() -> None:
    code = (
        "import sys, iot_job_cleanup.testing\n"
        "loaded = sorted(m for m in ('pytest', 'syrupy', '_pytest') if m in sys.modules)\n"
        "print(loaded)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "constructs")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


# --------------------------------------------------------------------------- a handler change


def synthesize() -> cdk.Stack:
    stack = cdk.Stack(cdk.App(), "UserStack")
    IotJobCleanup(stack, "Cleanup", job_ids=["ota-1"])
    return stack


def next_release_handler(into: Path) -> Path:
    """A copy of the handler asset as a later release might ship it: one more comment line."""
    shutil.copytree(iot_job_cleanup.handler_directory(), into, ignore=shutil.ignore_patterns("__pycache__"))
    module = into / HANDLER_MODULE / "__init__.py"
    module.write_text(module.read_text() + "# a comment added by the next release\n")
    return into


def test_the_masked_template_does_not_change_when_the_handler_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = Template.from_stack(synthesize()).to_json()
    changed = next_release_handler(tmp_path / "lambda")
    monkeypatch.setattr(provider_module, "handler_directory", lambda: changed)
    after = Template.from_stack(synthesize()).to_json()

    assert before != after, "the changed handler directory was not used: how does the construct find it?"
    assert asset_hashes(before) != asset_hashes(after)
    assert mask_asset_hashes(before) == mask_asset_hashes(after)


def test_template_for_snapshot_is_the_masked_template_of_the_stack() -> None:
    stack = synthesize()

    masked = template_for_snapshot(stack)

    assert masked == mask_asset_hashes(Template.from_stack(stack).to_json())
    assert asset_hashes(masked) == set()
    assert f'"{MASK}.zip"' in json.dumps(masked)


# --------------------------------------------------------------------------- the README's example

MY_STACK = """
import aws_cdk as cdk
from iot_job_cleanup import IotJobCleanup


class MyStack(cdk.Stack):
    def __init__(self, scope, construct_id):
        super().__init__(scope, construct_id)
        IotJobCleanup(self, "Cleanup", job_ids=["ota-1"])
"""

# The same suite without the helper: its snapshot breaks when the handler changes.
UNMASKED_TEST = """
import aws_cdk as cdk
from aws_cdk.assertions import Template
from syrupy.extensions.json import JSONSnapshotExtension

from my_app.stacks import MyStack


def test_my_stack_matches_its_unmasked_snapshot(snapshot):
    template = Template.from_stack(MyStack(cdk.App(), "MyStack")).to_json()
    assert template == snapshot(extension_class=JSONSnapshotExtension)
"""


def readme_snapshot_example() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n### Snapshot tests of your own stacks\n", 1)
    assert len(section) == 2, "README.md lost its section 'Snapshot tests of your own stacks'"
    example = re.search(r"```python\n(.*?)```", section[1], re.DOTALL)
    assert example, "README.md's section 'Snapshot tests of your own stacks' has no python example"
    return example.group(1)


def library_release(root: Path, handler: Path) -> Path:
    """The library as a user would have it installed: the package, its handler inside (as in the wheel)."""
    package = root / "iot_job_cleanup"
    shutil.copytree(
        REPO / "constructs" / "iot_job_cleanup", package, ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(handler, package / "handler", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def run_user_suite(user: Path, library: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(library), str(user)])}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *options],
        cwd=user,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_readme_example_still_matches_its_snapshot_after_an_upgrade(tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "my_app").mkdir(parents=True)
    (user / "my_app" / "__init__.py").write_text("")
    (user / "my_app" / "stacks.py").write_text(MY_STACK)
    (user / "test_my_stack.py").write_text(readme_snapshot_example())
    (user / "test_unmasked.py").write_text(UNMASKED_TEST)
    this_release = library_release(tmp_path / "release-1", iot_job_cleanup.handler_directory())
    next_release = library_release(tmp_path / "release-2", next_release_handler(tmp_path / "handler-2"))

    recorded = run_user_suite(user, this_release, "--snapshot-update")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    snapshot_file = user / "__snapshots__" / "test_my_stack" / "test_my_stack_matches_its_snapshot.json"
    assert f'"{MASK}.zip"' in snapshot_file.read_text()

    upgraded = run_user_suite(user, next_release)

    output = upgraded.stdout + upgraded.stderr
    assert "1 failed, 1 passed" in output, output
    assert "FAILED test_unmasked.py::test_my_stack_matches_its_unmasked_snapshot" in output, output
