"""CloudFormation's intrinsic functions, evaluated once, over values from a source.

``Intrinsics`` knows the functions: ``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Split``,
``Fn::Select``, ``Fn::Sub``, ``Fn::ImportValue`` and ``AWS::NoValue``; what a name stands for
is the source's answer (``ValueSource``):

- ``offline.OfflineValues`` (the rehearsal): pseudo parameters of the offline account, parameters from
  ``given`` (``--parameter NAME=VALUE``) or their Default, a few resources read from the
  template (thing group and thing names, an AwsCustomResource's CreateJob call);
- ``live.StackValues`` (the command line's ``resume``): a deployed stack's pseudo parameters,
  DescribeStacks parameters and ListStackResources physical ids.

Anything else (``Fn::If``, ``Condition``, ...) is unresolvable: the source words the error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

from . import UnresolvableError

__all__ = ["NO_VALUE", "Intrinsics", "ValueSource", "as_sent", "is_list_type"]


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()
_PLACEHOLDER = re.compile(r"<unresolved-\d+>")
_FUNCTIONS = ("Ref", "Condition")  # besides every Fn::


class ValueSource(Protocol):
    """Where the values of names come from; each raises ``UnresolvableError`` for what it
    does not know. ``intrinsics`` renders what a resource's own properties say."""

    def ref(self, name: str, intrinsics: Intrinsics) -> Any: ...

    def get_att(self, logical_id: str, attribute: str, intrinsics: Intrinsics) -> Any: ...

    def import_value(self, name: str) -> Any: ...

    def unsupported(self, function: str, argument: Any) -> UnresolvableError: ...


def is_list_type(parameter_type: str) -> bool:
    """A list parameter (CommaDelimitedList, List<...>) is a list to Ref."""
    return "CommaDelimitedList" in parameter_type or "List<" in parameter_type


def as_sent(value: Any) -> Any:
    """Property values as CloudFormation hands them to a custom resource: scalars as strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return [as_sent(item) for item in value]
    if isinstance(value, dict):
        return {key: as_sent(item) for key, item in value.items()}
    return value


class Intrinsics:
    """The intrinsic functions over a source's values.

    Strict (a cleanup's properties): anything unknown raises ``UnresolvableError``. Lenient
    (an AwsCustomResource's whole call, only part of which is needed): it becomes a
    placeholder, and using a placeholder raises the original error.
    """

    def __init__(
        self,
        source: ValueSource,
        *,
        strict: bool = True,
        placeholders: dict[str, UnresolvableError] | None = None,
    ) -> None:
        self.source = source
        self.strict = strict
        self._placeholders = {} if placeholders is None else placeholders

    @classmethod
    def offline(
        cls,
        stack: str,
        template: Mapping[str, Any],
        given: Mapping[str, str] | None = None,
        *,
        strict: bool = True,
    ) -> Intrinsics:
        """The rehearsal's: a template's values known offline (see ``offline.OfflineValues``)."""
        from .offline import OfflineValues

        return cls(OfflineValues(stack, template, given), strict=strict)

    def lenient(self) -> Intrinsics:
        """The same values, lenient; its placeholders are this one's too."""
        return Intrinsics(self.source, strict=False, placeholders=self._placeholders)

    def render(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.render(item) for item in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key in _FUNCTIONS or key.startswith("Fn::"):
                try:
                    try:
                        return self._intrinsic(key, argument)
                    except (TypeError, ValueError, AttributeError) as exc:
                        raise UnresolvableError(
                            f"{key} {json.dumps(argument)} is malformed ({exc})."
                        ) from None
                except UnresolvableError as exc:
                    if self.strict:
                        raise
                    token = f"<unresolved-{len(self._placeholders)}>"
                    self._placeholders[token] = exc
                    return token
        rendered = {key: self.render(item) for key, item in value.items()}
        return {key: item for key, item in rendered.items() if item is not NO_VALUE}

    @staticmethod
    def resolved(value: Any) -> bool:
        """Whether a lenient rendering holds no placeholder."""
        return not _PLACEHOLDER.search(json.dumps(value, default=repr))

    # -- shapes

    def check(self, value: Any, *, lenient_too: bool = False) -> None:
        """Using a placeholder is using the value it stands for: raise why it has none. Lenient,
        placeholders pass through strings (only a part of the call may be needed)."""
        if not (self.strict or lenient_too):
            return
        for token in _PLACEHOLDER.findall(json.dumps(value, default=repr)):
            if token in self._placeholders:
                raise self._placeholders[token]

    def string(self, value: Any, where: str) -> str:
        self.check(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        raise UnresolvableError(f"{where} needs a string here, not {value!r}.")

    def _list(self, value: Any, where: str) -> list[Any]:
        self.check(value, lenient_too=isinstance(value, str))  # a placeholder stands for a list
        if not isinstance(value, list):
            raise UnresolvableError(f"{where} needs a list here, not {value!r}.")
        return value

    # -- the functions

    def _intrinsic(self, key: str, argument: Any) -> Any:
        if key == "Ref":
            return self._ref(self.string(argument, "Ref"))
        if key == "Fn::GetAtt":
            logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            return self.source.get_att(logical_id, self.string(self.render(attribute), key), self)
        if key == "Fn::Join":
            separator, parts = argument
            items = self._list(self.render(parts), key)
            return self.string(separator, key).join(self.string(item, key) for item in items)
        if key == "Fn::Split":
            delimiter, source = argument
            return self.string(self.render(source), key).split(self.string(delimiter, key))
        if key == "Fn::Select":
            index_value, items_value = argument
            items = self._list(self.render(items_value), key)
            index_text = self.string(self.render(index_value), key)
            if not index_text.isdigit() or int(index_text) >= len(items):
                raise UnresolvableError(f"Fn::Select index {index_text} is outside the list {items!r}.")
            return items[int(index_text)]
        if key == "Fn::Sub":
            return self._sub(argument)
        if key == "Fn::ImportValue":
            return self.source.import_value(self.string(self.render(argument), key))
        raise self.source.unsupported(key, argument)

    def _ref(self, name: str) -> Any:
        return NO_VALUE if name == "AWS::NoValue" else self.source.ref(name, self)

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self.render(value) for name, value in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return self.string(values[name], "Fn::Sub")
            if "." in name:
                return self.string(self.source.get_att(*name.split(".", 1), self), "Fn::Sub")
            return self.string(self._ref(name), "Fn::Sub")

        return re.sub(r"\$\{([^}]+)\}", substitute, self.string(text, "Fn::Sub"))
