#!/usr/bin/env python3
"""Demo app: an OTA fleet stack whose IoT jobs are deleted when the stack is destroyed.

The stack has a thing group with its things, a job template for a firmware rollout, and
the jobs a fleet really accumulates: one snapshot job per rollout wave (finished by
teardown time: COMPLETED) and a continuous configuration-sync job (never finishes:
IN_PROGRESS, so its cleanup needs force). CloudFormation has no AWS::IoT::Job, so the
jobs are created by a custom resource calling CreateJob, and IotJobCleanup deletes them
on `cdk destroy`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# constructs/ is a source root, not a package (it must not shadow the constructs library).
sys.path.insert(0, str(Path(__file__).resolve().parent / "constructs"))

import aws_cdk as cdk
from aws_cdk import aws_iot as iot
from aws_cdk import custom_resources as cr

from constructs import Construct
from iot_job_cleanup import IotJobCleanup

FLEET = "demo-ota-fleet"
THINGS = [f"demo-sensor-{index:02d}" for index in range(1, 5)]
FIRMWARE = "firmware-2-4-1"
ROLLOUT_WAVES = 12  # more jobs than the 10 deletion slots, so some wait for a slot


class CreatedJob(Construct):
    """An IoT job created when the stack is deployed (CreateJob through a custom resource).

    It creates the job only: deleting it is IotJobCleanup's work.
    """

    def __init__(self, scope: Construct, construct_id: str, *, job_id: str, parameters: dict) -> None:
        super().__init__(scope, construct_id)
        call = cr.AwsSdkCall(
            service="Iot",
            action="createJob",
            parameters={"jobId": job_id, **parameters},
            physical_resource_id=cr.PhysicalResourceId.of(job_id),
        )
        stack = cdk.Stack.of(self)
        self.resource = cr.AwsCustomResource(
            self,
            "CreateJob",
            on_create=call,
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(
                resources=[
                    stack.format_arn(service="iot", resource="job", resource_name=job_id),
                    stack.format_arn(service="iot", resource="thinggroup", resource_name=FLEET),
                    stack.format_arn(service="iot", resource="jobtemplate", resource_name=FIRMWARE),
                ]
            ),
            install_latest_aws_sdk=False,
        )
        self.job_id: str = self.resource.get_response_field("jobId")


class OtaFleetStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        group = iot.CfnThingGroup(self, "Fleet", thing_group_name=FLEET)
        for name in THINGS:
            iot.CfnThing(self, f"Thing-{name}", thing_name=name)
        template = iot.CfnJobTemplate(
            self,
            "FirmwareTemplate",
            job_template_id=FIRMWARE,
            description="Firmware 2.4.1 over-the-air update",
            document=json.dumps({"operation": "firmware-update", "version": "2.4.1"}),
        )

        waves = [
            CreatedJob(
                self,
                f"Wave{wave:02d}",
                job_id=f"ota-{FIRMWARE}-wave-{wave:02d}",
                parameters={
                    "targets": [group.attr_arn],
                    "jobTemplateArn": template.attr_arn,
                    "targetSelection": "SNAPSHOT",
                },
            )
            for wave in range(1, ROLLOUT_WAVES + 1)
        ]
        config_sync = CreatedJob(
            self,
            "ConfigSync",
            job_id="fleet-config-sync",
            parameters={
                "targets": [group.attr_arn],
                "document": json.dumps({"operation": "config-sync"}),
                "targetSelection": "CONTINUOUS",
            },
        )

        # Finished rollout waves: deleted without force.
        IotJobCleanup(self, "RolloutJobsCleanup", job_ids=[wave.job_id for wave in waves])
        # A continuous job never reaches a terminal state: deleting it takes force.
        IotJobCleanup(self, "ConfigSyncCleanup", job_ids=[config_sync.job_id], force=True)

        creator = self.node.find_child("AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", ""))
        cdk.Validations.of(creator).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                "service-role/AWSLambdaBasicExecutionRole]",
                reason="The demo's job creator (CDK's AwsCustomResource singleton) only writes its own "
                "logs with the basic execution role; it is demo scaffolding, not part of the library.",
            )
        )


def build_app() -> cdk.App:
    app = cdk.App()
    OtaFleetStack(app, "IotJobCleanupDemo")
    return app


if __name__ == "__main__":
    build_app().synth()
