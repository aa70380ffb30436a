"""The synth wing: the ``IotJobCleanup`` construct and everything it decides at synth time
(aws-cdk-lib and constructs, the standard library, and the library's stdlib-only ``engine``
and ``cfn``; never boto3, the emulator, the rehearsal or the command line).

One concern a module, each importing only those above it:

- ``naming``: IoT's naming rules (the engine's own ``rules.py``, loaded by
  ``engine.naming_rules()`` without botocore), and ``SettingError``, how a check refuses;
- ``arns``: the ARNs of jobs, job patterns and thing groups, and a list token's job ARNs;
- ``literals``: ``Fn.join`` of literals judged as the literal (``Literals``), and the job id
  sources (``JobIdSources``): literals, string tokens, list tokens, as ``JobIds``;
- ``selection``: the filters for jobs created at runtime (tags, thing groups, id prefix);
- ``nag``: cdk-nag's acknowledgements, each wildcard with its reason;
- ``statements``: the actions on jobs, a filtered cleanup's own statements and their size
  as IAM counts it, its ``SelectionPolicy``;
- ``options``: the remaining option checks (force, durations, namespace, removal policy),
  ``Settings`` over all of them, and the resource properties they become;
- ``policies``: each cleanup's ``Permissions``, and their layout into at most 10 managed
  policies on the shared handler role (as they always were, else packed by size);
- ``provider``: the stack's one shared provider (``CleanupProvider``: its construct and
  logical ids are a compatibility promise), which lays out the policies at synthesis;
- ``construct``: ``IotJobCleanup`` itself, its constructor a short sequence of those steps,
  and ``grant_create_jobs``.
"""

from __future__ import annotations

from .construct import IotJobCleanup

__all__ = ["IotJobCleanup"]
