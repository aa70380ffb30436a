"""The filters for jobs created at runtime (``tags``, ``thing_groups``, ``job_id_prefix``),
checked with IoT's naming rules.

``Selection.parse`` turns the three options into a ``Selection``: tags sorted by key, each
key a literal (it becomes an IAM condition key), values and names literals or tokens;
``Fn.join`` of literals counts as the literal (``Literals``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Token, Tokenization
from aws_cdk import aws_iot as iot

from .literals import Literals
from .naming import (
    JOB_ID_PATTERN,
    MAX_TAGS,
    TAG_KEY_PATTERN,
    TAG_VALUE_PATTERN,
    THING_GROUP_NAME_PATTERN,
    SettingError,
    kind,
)

__all__ = ["Selection"]


@dataclass
class Selection:
    """The filters for jobs created at runtime, checked with IoT's rules."""

    tags: list[tuple[str, str]] = field(default_factory=list)  # sorted by key
    thing_group_names: list[str] = field(default_factory=list)  # names, or tokens of them
    prefix: str | None = None

    @property
    def filtered(self) -> bool:
        return bool(self.tags or self.thing_group_names or self.prefix is not None)

    @classmethod
    def parse(cls, tags: object, thing_groups: object, prefix: object, literal: Literals) -> Selection:
        return cls(
            tags=_parse_tags(tags, literal) if tags is not None else [],
            thing_group_names=_parse_thing_groups(thing_groups, literal) if thing_groups is not None else [],
            prefix=_parse_prefix(prefix, literal),
        )


def _parse_tags(tags: object, literal: Literals) -> list[tuple[str, str]]:
    if not isinstance(tags, Mapping):
        raise SettingError(
            f"tags is {kind(tags)}: it must be a mapping of tag keys to values, each key once (a "
            "list of pairs could give a key twice, and a job carries each key once, so no job "
            "could match). Write it as a dict, e.g. tags={'fleet': 'demo'}."
        )
    if not tags:
        raise SettingError(
            "tags is empty: it selects the jobs carrying every one of its tags, so it needs one "
            "at least. Give a tag, e.g. tags={'fleet': 'demo'}, or leave tags out."
        )
    if len(tags) > MAX_TAGS:
        raise SettingError(
            f"tags has {len(tags)} tags: an IoT job carries at most {MAX_TAGS}, so no job could "
            f"match. Select with {MAX_TAGS} tags or fewer."
        )
    judged: dict[str, str] = {}
    for given_key, given_value in tags.items():
        key = literal(given_key) if isinstance(given_key, str) else given_key
        if not isinstance(key, str) or Token.is_unresolved(key):
            raise SettingError(
                f"tags has the key {key!r}: a tag key must be a literal string, since it becomes the "
                "IAM condition key aws:ResourceTag/<key>, which CloudFormation cannot compute. "
                "Write the key itself; the value may be a token."
            )
        if not TAG_KEY_PATTERN.fullmatch(key):
            raise SettingError(
                f"tags has the key {key!r} ({len(key)} characters): a tag key is 1 to 128 letters, "
                "digits, spaces or _.:/=+-@. Fix or remove that key."
            )
        if key.lower().startswith("aws:"):
            raise SettingError(
                f"tags has the key {key!r}: keys starting with 'aws:' are reserved for AWS and "
                "cannot be set on a job. Use another key."
            )
        if key in judged:
            raise SettingError(
                f"tags names the key {key!r} more than once (a Fn.join of literals counts as the "
                "literal it resolves to): a job carries each key once, so no job could match. Keep "
                "one of them."
            )
        if not isinstance(given_value, str):
            raise SettingError(
                f"tags gives {key!r} the value {kind(given_value)}: a tag value is "
                "a string (or a string token). Write it as a string."
            )
        value = literal(given_value)
        if not Token.is_unresolved(value) and not TAG_VALUE_PATTERN.fullmatch(value):
            raise SettingError(
                f"tags gives {key!r} the value {value!r} ({len(value)} characters): a tag value "
                "is 0 to 256 letters, digits, spaces or _.:/=+-@. Fix that value."
            )
        judged[key] = value
    return sorted(judged.items())


def _parse_thing_groups(thing_groups: object, literal: Literals) -> list[str]:
    if isinstance(thing_groups, (str, iot.CfnThingGroup)):
        raise SettingError(
            f"thing_groups is {thing_groups!r}: it must be a list of thing groups. Write "
            f"thing_groups=[{thing_groups!r}]."
        )
    if not isinstance(thing_groups, Sequence):
        raise SettingError(
            f"thing_groups is {kind(thing_groups)}: it must be a list of thing groups, each an "
            "aws_iot.CfnThingGroup or a group name, e.g. thing_groups=['demo-fleet']."
        )
    if not thing_groups:
        raise SettingError(
            "thing_groups is empty: it selects the jobs targeting any of its groups, so it needs "
            "one at least. Name a group, or leave thing_groups out."
        )
    names: list[str] = []
    for group in thing_groups:
        if isinstance(group, iot.CfnThingGroup):
            name = group.thing_group_name
            if name is not None:
                name = literal(name)
                if not Token.is_unresolved(name):
                    _check_thing_group_name(name)
            names.append(group.ref)  # the group's name; the cleanup then depends on the group
            continue
        if not isinstance(group, str):
            raise SettingError(
                f"thing_groups contains {kind(group)}: every entry must be "
                "an aws_iot.CfnThingGroup or a thing group name. Pass the group or its name."
            )
        if Tokenization.reverse_list([group]) is not None:
            raise SettingError(
                "thing_groups contains a list token (a list parameter's value_as_list, Fn.split): "
                "each entry must be one group. Pass each group's name (a string token is fine)."
            )
        group = literal(group)
        if not Token.is_unresolved(group):
            _check_thing_group_name(group)
        names.append(group)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SettingError(
            f"thing_groups names {', '.join(map(repr, duplicates))} more than once: each group may "
            "be listed once. Remove the duplicates."
        )
    return names


def _check_thing_group_name(name: str) -> None:
    if not THING_GROUP_NAME_PATTERN.fullmatch(name):
        raise SettingError(
            f"thing_groups contains {name!r} ({len(name)} characters): a thing group name is 1 to "
            "128 characters of letters, digits, ':', '_' and '-'. Fix that name."
        )


def _parse_prefix(prefix: object, literal: Literals) -> str | None:
    if prefix is None:
        return None
    if not isinstance(prefix, str):
        raise SettingError(
            f"job_id_prefix is {kind(prefix)}: it must be a string. "
            "Write it as a string, e.g. job_id_prefix='ota-'."
        )
    prefix = literal(prefix)
    if prefix == "":
        raise SettingError(
            "job_id_prefix is '' (0 characters): a prefix is 1 to 64 characters of letters, digits, "
            "'_' and '-', as a job id is; an empty one would select every job the other filters "
            "reach. Give a prefix, or leave it out."
        )
    if not Token.is_unresolved(prefix) and not JOB_ID_PATTERN.fullmatch(prefix):
        raise SettingError(
            f"job_id_prefix is {prefix!r} ({len(prefix)} characters): a prefix is 1 to 64 "
            "characters of letters, digits, '_' and '-', as a job id is. Fix it, or leave it out."
        )
    return prefix
