"""The ARNs a cleanup's permissions and grants name: jobs, job patterns and thing groups.

Each is the stack's own ``format_arn`` (partition, region and account as tokens), except
``job_arns_of_list``, whose ARNs CloudFormation builds from a list token of job ids.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Fn, Stack, Token

__all__ = ["create_job_arns", "job_arn", "job_arns_of_list", "job_pattern_arn", "thing_group_arn"]


def job_arn(stack: Stack, job_id: str) -> str:
    return stack.format_arn(service="iot", resource="job", resource_name=job_id)


def job_arns_of_list(stack: Stack, list_token: str) -> str:
    """A list token of job ARNs, one per id of ``list_token`` (a list token of job ids).

    CloudFormation has no map: each id gets its ARN prefix as the delimiter of a Fn::Join,
    and a delimiter must be a literal. So the partition, region and account are the stack's
    own where they are known at synth time, else ``*``: the same job ids, in the role's own
    account (IoT jobs have no resource policies, so no role reaches another account's jobs).
    """

    def known(value: str) -> str:
        return "*" if Token.is_unresolved(value) else value

    prefix = f"arn:{known(stack.partition)}:iot:{known(stack.region)}:{known(stack.account)}:job/"
    return Fn.split(",", Fn.join("", [prefix, Fn.join("," + prefix, [list_token])]))[0]


def job_pattern_arn(stack: Stack, prefix: str | None) -> str:
    """``job/<prefix>*``, or ``job/*`` without a prefix: the jobs a filter may reach."""
    return job_arn(stack, f"{prefix}*" if prefix is not None else "*")


def thing_group_arn(stack: Stack, name: str) -> str:
    return stack.format_arn(service="iot", resource="thinggroup", resource_name=name)


def create_job_arns(
    stack: Stack, prefix: str, thing_group_names: Sequence[str]
) -> tuple[list[str], list[str]]:
    """What ``grant_create_jobs`` names: (the jobs, ``job/<prefix>*``; what else CreateJob
    needs: the cleanup's thing groups, else any thing group and thing, and job templates)."""
    jobs = [job_pattern_arn(stack, prefix)]
    if thing_group_names:
        targets = [thing_group_arn(stack, name) for name in thing_group_names]
    else:
        targets = [
            thing_group_arn(stack, "*"),
            stack.format_arn(service="iot", resource="thing", resource_name="*"),
        ]
    templates = [stack.format_arn(service="iot", resource="jobtemplate", resource_name="*")]
    return jobs, [*targets, *templates]
