"""The rehearsal's values: a template's, known offline (the offline account and region,
parameter defaults and ``--parameter`` values, thing group and thing names, an
AwsCustomResource's CreateJob call, and ``Exports``: the outputs other stacks of the cloud
assembly export, for ``Fn::ImportValue``). Every error names the way out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import OFFLINE_ACCOUNT, OFFLINE_REGION, UnresolvableError
from .intrinsics import Intrinsics, is_list_type

__all__ = ["Exports", "OfflineValues"]


class OfflineValues:
    """A template's values known offline. Parameters: ``given`` first, then the Default; list
    types split on commas. An SSM parameter's Default is the SSM parameter's name, never its
    value: it needs ``given``. ``Fn::ImportValue``: ``given`` first, then ``exports`` (the
    assembly's other stacks). Every error names the way out."""

    def __init__(
        self,
        stack: str,
        template: Mapping[str, Any],
        given: Mapping[str, str] | None = None,
        *,
        account: str = OFFLINE_ACCOUNT,
        region: str = OFFLINE_REGION,
        exports: Exports | None = None,
    ) -> None:
        self.stack, self.template, self.account, self.region = stack, template, account, region
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.parameters: Mapping[str, Any] = template.get("Parameters", {})
        self.given = dict(given or {})
        self.exports = exports

    def pseudo(self) -> dict[str, Any]:
        stack_id = f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.stack}/rehearsal"
        return {
            "AWS::Partition": "aws",
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack,
            "AWS::StackId": stack_id,
            "AWS::NotificationARNs": [],
        }

    def ref(self, name: str, intrinsics: Intrinsics) -> Any:
        pseudo = self.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self._parameter(name)
        if name in self.resources:
            return self._resource_ref(name, intrinsics)
        raise UnresolvableError(f"Ref {name!r} names no parameter or resource of the template.")

    def get_att(self, logical_id: str, attribute: str, intrinsics: Intrinsics) -> str:
        resource = self.resources.get(logical_id, {})
        properties = resource.get("Properties", {})
        if (
            resource.get("Type") == "AWS::IoT::ThingGroup"
            and attribute == "Arn"
            and "ThingGroupName" in properties
        ):
            group = intrinsics.string(intrinsics.render(properties["ThingGroupName"]), "Fn::GetAtt")
            return f"arn:aws:iot:{self.region}:{self.account}:thinggroup/{group}"
        if resource.get("Type") == "Custom::AWS":  # AwsCustomResource: answer from its Create call
            parameters = self._custom_aws_call(logical_id, intrinsics).get("parameters", {})
            if attribute in parameters:
                intrinsics.check(parameters[attribute])
                return str(parameters[attribute])
        raise UnresolvableError(
            f"Fn::GetAtt {logical_id}.{attribute} has no value offline: only literal job ids, "
            "parameters (--parameter NAME=VALUE), Fn::Join/Split/Select/Sub over them and "
            "AwsCustomResource CreateJob calls can be rehearsed."
        )

    def import_value(self, name: str) -> Any:
        if name in self.given:
            return self.given[name]
        if self.exports is not None:
            return self.exports.value(name, self.region)
        raise UnresolvableError(
            f"Fn::ImportValue {name!r} is another stack's export, which has no value offline: "
            f"pass --parameter {name}=VALUE."
        )

    def unsupported(self, function: str, argument: Any) -> UnresolvableError:
        return UnresolvableError(
            f"{function} is not one of the intrinsic functions the rehearsal resolves offline."
        )

    def _parameter(self, name: str) -> Any:
        declared = self.parameters[name]
        parameter_type = str(declared.get("Type", "String"))
        is_list = is_list_type(parameter_type)
        value_hint = f"--parameter {name}=VALUE" + (",VALUE... (comma-separated: a list)" if is_list else "")
        if name in self.given:
            text = self.given[name]
        elif parameter_type.startswith("AWS::SSM::Parameter::Value<"):
            raise UnresolvableError(
                f"parameter {name!r} ({parameter_type}) is read from SSM Parameter Store at deploy "
                f"time; its Default {declared.get('Default')!r} is the SSM parameter's name, not a "
                f"value. Pass {value_hint}."
            )
        elif "Default" in declared:
            text = declared["Default"]
        else:
            raise UnresolvableError(f"parameter {name!r} has no Default: pass {value_hint}.")
        if not is_list:
            return str(text)
        return [str(item) for item in text] if isinstance(text, list) else str(text).split(",")

    def _resource_ref(self, logical_id: str, intrinsics: Intrinsics) -> str:
        resource = self.resources[logical_id]
        properties = resource.get("Properties", {})
        name_property = {"AWS::IoT::ThingGroup": "ThingGroupName", "AWS::IoT::Thing": "ThingName"}
        if resource.get("Type") in name_property and name_property[resource["Type"]] in properties:
            return intrinsics.string(intrinsics.render(properties[name_property[resource["Type"]]]), "Ref")
        if resource.get("Type") == "Custom::AWS":  # AwsCustomResource: its PhysicalResourceId.of(...)
            physical = self._custom_aws_call(logical_id, intrinsics).get("physicalResourceId", {}).get("id")
            if physical is not None:
                intrinsics.check(physical)
                return str(physical)
        raise UnresolvableError(f"Ref {logical_id} (a {resource.get('Type')}) has no value offline.")

    def _custom_aws_call(self, logical_id: str, intrinsics: Intrinsics) -> dict[str, Any]:
        create = self.resources[logical_id].get("Properties", {}).get("Create")
        try:
            call = json.loads(intrinsics.lenient().render(create))
        except (TypeError, ValueError):
            raise UnresolvableError(f"{logical_id}: its Create call cannot be read offline.") from None
        return call if isinstance(call, dict) else {}


class Exports:
    """The exports of a cloud assembly's stacks (``Outputs.<id>.Export.Name``), for
    ``Fn::ImportValue``: an export's value is its output's ``Value``, evaluated offline by the
    exporting stack's own values when it is imported. As in CloudFormation, an import reads
    the exports of its own region only (the account is the offline one)."""

    def __init__(self) -> None:
        # (region, export name) -> (the exporting stack's values, output id, the output's Value)
        self._outputs: dict[tuple[str, str], tuple[OfflineValues, str, Any]] = {}
        self._importing: list[tuple[str, str]] = []  # the imports being evaluated, innermost last

    def add(self, source: OfflineValues) -> None:
        """The exports of ``source``'s template (an export whose name has no value offline
        cannot be found by name, offline or not: it is left out)."""
        intrinsics = Intrinsics(source)
        for output_id, output in source.template.get("Outputs", {}).items():
            export = output.get("Export") if isinstance(output, Mapping) else None
            if not isinstance(export, Mapping) or "Name" not in export:
                continue
            try:
                name = intrinsics.string(intrinsics.render(export["Name"]), "Export.Name")
            except UnresolvableError:
                continue
            self._outputs[(source.region, name)] = (source, output_id, output.get("Value"))

    def value(self, name: str, region: str) -> Any:
        """The value of the export ``name`` in ``region``; UnresolvableError naming the way out
        when no stack of the assembly exports it there."""
        key = (region, name)
        if key not in self._outputs:
            elsewhere = sorted(
                f"{source.stack} exports it in {where}"
                for (where, other), (source, _, _) in self._outputs.items()
                if other == name
            )
            hint = f" ({'; '.join(elsewhere)}: an import reads its own region's exports only)"
            raise UnresolvableError(
                f"Fn::ImportValue {name!r}: no stack of the cloud assembly exports it in {region}"
                f"{hint if elsewhere else ''}, "
                f"so it has no value offline: pass --parameter {name}=VALUE."
            )
        if key in self._importing:
            cycle = " -> ".join(export for _, export in [*self._importing[self._importing.index(key) :], key])
            raise UnresolvableError(f"Fn::ImportValue {name!r}: the exports import each other ({cycle}).")
        source, output_id, value = self._outputs[key]
        self._importing.append(key)
        try:
            return Intrinsics(source).render(value)
        except UnresolvableError as exc:
            raise UnresolvableError(
                f"Fn::ImportValue {name!r} is {source.stack}'s output {output_id}, which has no value "
                f"offline: {exc}"
            ) from None
        finally:
            self._importing.pop()
