"""What a CloudFormation template's cleanup carries, and reading its values (standard library only).

- this module: the resource type every cleanup has, the ``DeletionPolicy`` values that keep
  its jobs, the offline account and region (the rehearsal's, the emulator's, the benchmark's),
  and ``UnresolvableError``;
- ``intrinsics``: **one** evaluator of CloudFormation's intrinsic functions (``Intrinsics``),
  whose values come from a source: ``OfflineValues`` (the rehearsal: parameter defaults,
  ``--parameter``, the assembly's resources) or ``StackValues`` (the command line's
  ``resume``: DescribeStacks parameters and ListStackResources physical ids); and
  ``as_sent``, property values as CloudFormation hands them to a custom resource.
"""

from __future__ import annotations

__all__ = [
    "NO_VALUE",
    "OFFLINE_ACCOUNT",
    "OFFLINE_REGION",
    "RESOURCE_TYPE",
    "RETAIN_POLICIES",
    "Intrinsics",
    "OfflineValues",
    "StackValues",
    "UnresolvableError",
    "as_sent",
]

RESOURCE_TYPE = "Custom::IotJobCleanup"
# DeletionPolicy values that keep a resource, and so its jobs, when its stack is deleted.
RETAIN_POLICIES = frozenset({"Retain", "RetainExceptOnCreate"})
# The account and region of everything offline: the rehearsal, the emulator, the benchmark.
OFFLINE_ACCOUNT = "123456789012"
OFFLINE_REGION = "us-east-1"


class UnresolvableError(Exception):
    """A value a cleanup's properties depend on has no value from the source asked; the message
    names it (and, offline, the way out)."""


from .intrinsics import NO_VALUE, Intrinsics, as_sent  # noqa: E402
from .live import StackValues  # noqa: E402
from .offline import OfflineValues  # noqa: E402
