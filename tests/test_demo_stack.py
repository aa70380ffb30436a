"""The demo stack: a synth snapshot, and cdk-nag's AwsSolutions checks with reasoned acknowledgements."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk.assertions import Template
from syrupy.extensions.json import JSONSnapshotExtension

import app as demo
from iot_job_cleanup import HANDLER_MODULE
from iot_job_cleanup.testing import asset_hashes, mask_asset_hashes


@pytest.fixture(scope="module")
def demo_template() -> dict[str, Any]:
    stack = demo.OtaFleetStack(cdk.App(), "IotJobCleanupDemo")
    return Template.from_stack(stack).to_json()


def test_demo_stack_matches_its_snapshot(demo_template: dict[str, Any], snapshot: Any) -> None:
    # Asset hashes change with every edit of the handler: the snapshot holds "<asset-hash>".
    assert mask_asset_hashes(demo_template) == snapshot(extension_class=JSONSnapshotExtension)


def test_demo_stack_references_the_handler_asset(demo_template: dict[str, Any]) -> None:
    handler_keys = {
        r["Properties"]["Code"]["S3Key"]
        for r in demo_template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Handler"].startswith(f"{HANDLER_MODULE}.")
    }
    assert len(handler_keys) == 1, f"the handler functions should share one code asset: {handler_keys}"
    (handler_hash,) = (key.removesuffix(".zip") for key in handler_keys)
    assert handler_hash in asset_hashes(demo_template)


def test_demo_stack_cleans_up_every_job_it_creates(demo_template: dict[str, Any]) -> None:
    resources = demo_template["Resources"]
    creators = {name for name, r in resources.items() if r["Type"] == "Custom::AWS"}
    cleaned = [
        job_id["Fn::GetAtt"][0]
        for r in resources.values()
        if r["Type"] == "Custom::IotJobCleanup"
        for job_id in r["Properties"]["JobIds"]
    ]
    assert sorted(cleaned) == sorted(creators)
    assert len(cleaned) == demo.ROLLOUT_WAVES + 1


def test_cdk_nag_aws_solutions_finds_nothing_unacknowledged(tmp_path: Any) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = demo.OtaFleetStack(app, "IotJobCleanupDemo")
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))

    app.synth()  # raises ValidationFailed, with the findings, on any unacknowledged one

    acknowledged = {
        rule: reason
        for construct in stack.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:acknowledged-rules"
        for rule, reason in entry.data.items()
    }
    assert acknowledged, "no acknowledgement found: the metadata type may have changed"
    assert all(rule.startswith("AwsSolutions::") for rule in acknowledged)
    short = {rule: reason for rule, reason in acknowledged.items() if len(reason.split()) < 8}
    assert not short, f"every acknowledgement must say why: {short}"
