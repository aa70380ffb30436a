"""The command line's values (``resume``): a deployed stack's, as CloudFormation tells them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import UnresolvableError
from .intrinsics import Intrinsics

__all__ = ["StackValues"]


@dataclass
class StackValues:
    """A deployed stack's values, as CloudFormation tells them: its name and id, the region
    asked, DescribeStacks parameters (list types as lists) and ListStackResources physical ids.
    ``Fn::GetAtt``, ``Fn::ImportValue`` and conditions are not told: unresolvable."""

    name: str
    stack_id: str
    region: str
    parameters: Mapping[str, str | list[str]]
    physical_ids: Mapping[str, str]

    def pseudo(self, name: str) -> str | None:
        """A pseudo parameter's value: the region asked, and the rest from the stack id."""
        arn = self.stack_id.split(":")
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": arn[4] if len(arn) > 4 else "",
            "AWS::Partition": arn[1] if len(arn) > 1 else "aws",
            "AWS::StackName": self.name,
            "AWS::StackId": self.stack_id,
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def resolve(self, value: Any) -> Any:
        """``value`` with its intrinsic functions evaluated (strict)."""
        return Intrinsics(self).render(value)

    def ref(self, name: str, intrinsics: Intrinsics) -> Any:
        for answer in (self.pseudo(name), self.parameters.get(name), self.physical_ids.get(name)):
            if answer is not None:
                return answer
        raise UnresolvableError(f"Ref {name}")

    def get_att(self, logical_id: str, attribute: str, intrinsics: Intrinsics) -> Any:
        raise self.unsupported("Fn::GetAtt", [logical_id, attribute])

    def import_value(self, name: str) -> Any:
        raise self.unsupported("Fn::ImportValue", name)

    def unsupported(self, function: str, argument: Any) -> UnresolvableError:
        return UnresolvableError(f"{function} {json.dumps(argument)[:80]}")
