"""Judging ids as what they are, and the sources of a cleanup's job ids.

- ``Literals``: a string made with ``Fn.join`` over literals (``Fn.join("-", ["ota", "1"])``)
  is judged as the literal it resolves to; any other token (a parameter, a Ref, a Lazy)
  stays a token, checked at deploy time by the handler;
- ``JobIdSources``: ``job_ids`` sorted by kind (literals, string tokens, list tokens), checked,
  and given back as the resource's ``JobIds`` property and as job ARNs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import (
    DefaultTokenResolver,
    Fn,
    IPostProcessor,
    IResolvable,
    IResolveContext,
    Stack,
    StringConcat,
    Token,
    Tokenization,
)

from .arns import job_arn, job_arns_of_list
from .naming import JOB_ID_PATTERN, SettingError, kind

__all__ = ["JobIdSources", "Literals"]

# Fn.join returns a token even over literals (Fn.select and Fn.split of literals give the
# literal itself); such a token shows as ${Token[Fn::Join.<n>]}.
_JOIN_TOKEN = re.compile(r"\$\{Token\[Fn::Join\.\d+\]\}")
_OPAQUE = "\x00unresolved\x00"  # what any other token resolves to while judging a join


class _JoinsOfLiterals(DefaultTokenResolver):
    """Resolves Fn::Join tokens only: any other token (a Lazy, a Ref, a parameter) becomes
    ``_OPAQUE`` unproduced, since a Lazy's producer may depend on constructs added later."""

    def __init__(self) -> None:
        super().__init__(StringConcat())

    def resolve_token(
        self, t: IResolvable, context: IResolveContext, post_processor: IPostProcessor
    ) -> object:
        if _JOIN_TOKEN.fullmatch(t.to_string()):
            return super().resolve_token(t, context, post_processor)
        return _OPAQUE


@dataclass(frozen=True)
class Literals:
    """Judges ids as what they are: a string made of Fn.join over literals (``Fn.join("-",
    ["ota", "1"])``) is the literal it resolves to; any other token stays a token."""

    stack: Stack

    def __call__(self, value: str) -> str:
        if not isinstance(value, str) or not Token.is_unresolved(value):
            return value
        fragments = Tokenization.reverse_string(value)
        if not all(_JOIN_TOKEN.fullmatch(token.to_string()) for token in fragments.tokens):
            return value
        resolved = Tokenization.resolve(value, scope=self.stack, resolver=_JoinsOfLiterals())
        return resolved if isinstance(resolved, str) and _OPAQUE not in resolved else value


@dataclass
class JobIdSources:
    """``job_ids`` sorted by kind: ids known now, and string and list tokens resolved at deploy."""

    scalars: list[str] = field(default_factory=list)  # literals and string tokens, in order
    lists: list[str] = field(default_factory=list)  # list tokens, each encoded as one string
    order: list[tuple[str, str]] = field(default_factory=list)  # ("scalar" | "list", value)

    @classmethod
    def parse(cls, job_ids: object, literal: Literals) -> JobIdSources:
        if isinstance(job_ids, str):
            raise SettingError(
                f"job_ids is {job_ids!r}: it must be a list of job ids. Write job_ids=[{job_ids!r}]."
            )
        if not isinstance(job_ids, Sequence):
            raise SettingError(
                f"job_ids is {kind(job_ids)}: it must be a list of job id strings, e.g. "
                "job_ids=['ota-1'], or string and list tokens."
            )
        sources = cls()
        for job_id in job_ids:
            if not isinstance(job_id, str):
                raise SettingError(
                    f"job_ids contains {kind(job_id)}: every entry must be a job "
                    "id string (1 to 64 characters of letters, digits, '_' and '-') or a CDK token. "
                    "For a list of ids from a parameter write job_ids=[*ids] or job_ids=ids, not "
                    "job_ids=[ids]; write numbers as strings."
                )
            if Tokenization.reverse_list([job_id]) is not None:
                sources.lists.append(job_id)
                sources.order.append(("list", job_id))
                continue
            job_id = literal(job_id)
            if not Token.is_unresolved(job_id) and not JOB_ID_PATTERN.fullmatch(job_id):
                raise SettingError(
                    f"job_ids contains {job_id!r} ({len(job_id)} characters): a job id is 1 to 64 "
                    "characters of letters, digits, '_' and '-'. Fix or remove that id."
                )
            sources.scalars.append(job_id)
            sources.order.append(("scalar", job_id))
        literals = [job_id for job_id in sources.scalars if not Token.is_unresolved(job_id)]
        duplicates = sorted({job_id for job_id in literals if literals.count(job_id) > 1})
        if duplicates:
            raise SettingError(
                f"job_ids names {', '.join(map(repr, duplicates))} more than once: each job may be "
                "listed once. Remove the duplicates."
            )
        return sources

    def property_value(self) -> object:
        """``JobIds`` as CloudFormation gets it: a list, whatever mix of sources made it.

        A list token is a list only as a whole, so with list tokens the ids are joined with
        commas (no job id contains one) and split again; an empty list parameter then gives
        empty strings, which the handler ignores.
        """
        if not self.lists:
            return list(self.scalars)
        if len(self.order) == 1:
            return [self.lists[0]]  # a list token is a one-element list
        parts = [value if source == "scalar" else Fn.join(",", [value]) for source, value in self.order]
        return Fn.split(",", Fn.join(",", parts))

    def arns(self, stack: Stack) -> list[str]:
        """The job ARNs: one per id known now or string token, one list token per list source."""
        arns = [job_arn(stack, job_id) for job_id in self.scalars]
        return arns + [job_arns_of_list(stack, list_token) for list_token in self.lists]
