#!/usr/bin/env python3
"""Demo app: an OTA fleet stack whose IoT jobs are deleted when the stack is destroyed.

The stack has a thing group with its things, a job template for a firmware rollout, and
the jobs a fleet really accumulates:

- named jobs, created at deploy time: one snapshot job per rollout wave (finished by
  teardown time: COMPLETED) and a continuous configuration-sync job (never finishes:
  IN_PROGRESS, so its cleanup needs force). They stand for jobs made outside the template
  (a CfnJob would be CloudFormation's to delete): a custom resource calls CreateJob, and
  IotJobCleanup deletes them by id;
- jobs created at runtime by the stack's rollout function, with ids nobody knows at deploy
  time. Their cleanup selects them by filters (the tag the function must put on them, the
  fleet's thing group, the function's id prefix), and grant_create_jobs lets the function
  create only jobs that cleanup selects.

All of them are deleted on `cdk destroy`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# constructs/ is a source root, not a package (it must not shadow the constructs library).
sys.path.insert(0, str(Path(__file__).resolve().parent / "constructs"))

import aws_cdk as cdk
from aws_cdk import aws_iot as iot
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr

from constructs import Construct
from iot_job_cleanup import IotJobCleanup

FLEET = "demo-ota-fleet"
THINGS = [f"demo-sensor-{index:02d}" for index in range(1, 5)]
FIRMWARE = "firmware-2-4-1"
ROLLOUT_WAVES = 12  # more jobs than the 10 deletion slots, so some wait for a slot
# The runtime rollouts: the rollout function tags every job it creates with RUNTIME_TAGS and
# starts its id with RUNTIME_PREFIX; the runtime cleanup selects exactly such jobs.
RUNTIME_TAGS = {"fleet": "demo-ota"}
RUNTIME_PREFIX = "ota-rollout-"
RUNTIME_DRAIN_MINUTES = 2

# The rollout function (inline: it is demo scaffolding). Invoked with {} it starts a rollout
# of the firmware template to the fleet now; with {"startTime": "2026-12-01T02:00"} it
# schedules one (IoT keeps the job SCHEDULED until then).
ROLLOUT_CODE = """\
import json
import os
import uuid

import boto3

iot = boto3.client("iot")


def handler(event, context):
    job_id = os.environ["JOB_ID_PREFIX"] + uuid.uuid4().hex[:12]
    scheduling = {"schedulingConfig": {"startTime": event["startTime"]}} if event.get("startTime") else {}
    iot.create_job(
        jobId=job_id,
        targets=[os.environ["THING_GROUP_ARN"]],
        jobTemplateArn=os.environ["JOB_TEMPLATE_ARN"],
        targetSelection="SNAPSHOT",
        tags=[{"Key": key, "Value": value} for key, value in json.loads(os.environ["JOB_TAGS"]).items()],
        **scheduling,
    )
    return {"jobId": job_id}
"""


BASIC_EXECUTION_ROLE_FINDING = (
    "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
    "service-role/AWSLambdaBasicExecutionRole]"
)


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

        # Rollouts started at runtime: jobs carrying the tag, targeting the fleet, with the
        # function's prefix (every filter must match). At teardown some are still running or
        # scheduled: drain cancels them (a scheduled one never starts) and deletes each once
        # its devices have finished; without force, devices still busy after the drain fail
        # the destroy, naming them, rather than leave firmware half-written.
        runtime_cleanup = IotJobCleanup(
            self,
            "RuntimeRolloutsCleanup",
            tags=RUNTIME_TAGS,
            thing_groups=[group],
            job_id_prefix=RUNTIME_PREFIX,
            drain=cdk.Duration.minutes(RUNTIME_DRAIN_MINUTES),
            # Up to 3 hours in one cdk destroy: three stages of an hour (make demo
            # REHEARSE_ARGS="--scenario long" shows them hand over).
            total_timeout=cdk.Duration.hours(3),
        )
        rollout = lambda_.Function(
            self,
            "RolloutFunction",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_inline(ROLLOUT_CODE),
            timeout=cdk.Duration.seconds(30),
            description="Starts a firmware rollout to the demo fleet: a tagged IoT job with a generated id.",
            environment={
                "JOB_ID_PREFIX": RUNTIME_PREFIX,
                "JOB_TAGS": json.dumps(RUNTIME_TAGS),
                "THING_GROUP_ARN": group.attr_arn,
                "JOB_TEMPLATE_ARN": template.attr_arn,
            },
        )
        # CreateJob only with the cleanup's tags, on job/ota-rollout-*, targeting the fleet;
        # the function now depends on the cleanup, so the destroy removes it first.
        runtime_cleanup.grant_create_jobs(rollout)
        self._acknowledge_rollout_function(rollout)

        creator = self.node.find_child("AWS" + cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace("-", ""))
        cdk.Validations.of(creator).acknowledge(
            cdk.Acknowledgment(
                id=BASIC_EXECUTION_ROLE_FINDING,
                reason="The demo's job creator (CDK's AwsCustomResource singleton) only writes its own "
                "logs with the basic execution role; it is demo scaffolding, not part of the library.",
            )
        )

    def _acknowledge_rollout_function(self, rollout: lambda_.Function) -> None:
        """cdk-nag's findings on the demo's rollout function, with the reason for each."""

        def arn(resource: str) -> str:
            return f"arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:{resource}"

        cdk.Validations.of(rollout).acknowledge(
            cdk.Acknowledgment(
                id=BASIC_EXECUTION_ROLE_FINDING,
                reason="The demo's rollout function only writes its own logs with the basic execution "
                "role; it is demo scaffolding, not part of the library.",
            ),
            cdk.Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{arn(f'job/{RUNTIME_PREFIX}*')}]",
                reason="The rollout function creates jobs with generated ids: grant_create_jobs allows "
                f"CreateJob and TagResource on job/{RUNTIME_PREFIX}* only, and only with the runtime "
                "cleanup's tags, so every job it creates is one the cleanup deletes at teardown.",
            ),
            cdk.Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{arn('jobtemplate/*')}]",
                reason="CreateJob from a job template needs the template in the resources; the grant "
                "covers templates by a wildcard, still conditioned on the cleanup's tags, and the "
                "function only uses the demo's firmware template.",
            ),
        )


def build_app() -> cdk.App:
    app = cdk.App()
    OtaFleetStack(app, "IotJobCleanupDemo")
    return app


if __name__ == "__main__":
    build_app().synth()
