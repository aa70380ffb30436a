"""Helpers for snapshot tests of your own stacks that contain ``IotJobCleanup``.

A synthesized template names every asset by its hash: the 64 hex characters of the
SHA-256 of its content, in ``"S3Key": "<hash>.zip"``, in ``aws:asset:path`` metadata
(``asset.<hash>``), in image tags and ``Fn::Join`` parts. The cleanup's Lambda handler is
such an asset, so a snapshot holding the raw template breaks with every release that
touches the handler, although nothing in your stack changed. Mask the hashes first::

    from iot_job_cleanup.testing import template_for_snapshot

    def test_my_stack(snapshot):
        assert template_for_snapshot(MyStack(cdk.App(), "MyStack")) == snapshot

This module needs nothing beyond the standard library and ``aws-cdk-lib`` (for
``template_for_snapshot`` only); it imports no test framework.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_cdk import Stack

__all__ = ["ASSET_HASH_PLACEHOLDER", "asset_hashes", "mask_asset_hashes", "template_for_snapshot"]

ASSET_HASH_PLACEHOLDER = "<asset-hash>"
"""What every asset hash becomes in a masked template."""

# Exactly 64 lowercase hex digits (CDK writes SHA-256 digests in lowercase), not part of a
# longer run of hex digits: a shorter hex id (a UUID in a logical id) or a longer hex
# string is not an asset hash.
_ASSET_HASH = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def mask_asset_hashes(template: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``template`` with every asset hash replaced by ``"<asset-hash>"``.

    Hashes are replaced wherever they occur: in strings at any depth (``"<hash>.zip"``,
    ``"asset.<hash>"``, parts of ``Fn::Join``) and in mapping keys. ``template`` is a
    synthesized CloudFormation template as a JSON-like structure (dicts, lists, strings,
    numbers, booleans, ``None``), e.g. ``Template.from_stack(stack).to_json()``; it is not
    modified. A template without assets comes back equal to the input: use
    :func:`asset_hashes` to check that the hashes you expect are there.

    :raises ValueError: if two keys of one mapping differ only in their asset hashes, so
        that masking would merge them.
    """
    if not isinstance(template, Mapping):
        raise TypeError(
            f"template is a {type(template).__name__}: pass the template as a dict, "
            "e.g. Template.from_stack(stack).to_json()."
        )
    return _masked(template, "template")


def asset_hashes(template: Mapping[str, Any]) -> set[str]:
    """The distinct asset hashes in ``template`` (strings and mapping keys, at any depth).

    Empty for a template without assets. Useful to assert that the assets you expect
    (such as the cleanup's handler) are referenced before their hashes are masked.
    """
    found: set[str] = set()
    _collect(template, found)
    return found


def template_for_snapshot(stack: Stack) -> dict[str, Any]:
    """``stack``'s synthesized template with its asset hashes masked, ready for a snapshot.

    The same as ``mask_asset_hashes(Template.from_stack(stack).to_json())``.
    """
    from aws_cdk.assertions import Template  # loaded only when a stack is synthesized

    return mask_asset_hashes(Template.from_stack(stack).to_json())


def _mask_text(text: str) -> str:
    return _ASSET_HASH.sub(ASSET_HASH_PLACEHOLDER, text)


def _masked(value: Any, where: str) -> Any:
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, Mapping):
        masked: dict[Any, Any] = {}
        for key, item in value.items():
            new_key = _mask_text(key) if isinstance(key, str) else key
            if new_key in masked:
                raise ValueError(
                    f"{where} has keys that differ only in asset hashes ({new_key!r} after masking): "
                    "masking would merge them. Compare this part of the template without masking."
                )
            masked[new_key] = _masked(item, f"{where}[{key!r}]")
        return masked
    if isinstance(value, list | tuple):
        return [_masked(item, f"{where}[{index}]") for index, item in enumerate(value)]
    return value


def _collect(value: Any, found: set[str]) -> None:
    if isinstance(value, str):
        found.update(_ASSET_HASH.findall(value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _collect(key, found)
            _collect(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)
