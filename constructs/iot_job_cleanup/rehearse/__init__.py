"""Rehearse `cdk deploy`, `cdk deploy` of an update and `cdk destroy` of a CDK app's IotJobCleanup
resources, offline, by CloudFormation's rules (``python -m iot_job_cleanup.rehearse``,
``iot-job-cleanup-rehearse``; what it does and its exit codes: ``command``).

Needs the emulator extra (moto's server, boto3) and the engine; never aws-cdk-lib nor Node.
Its modules, in the order a rehearsal uses them (each imports only those above it):

- ``base``: ``RehearsalError``, the offline account and region, ``ScaledClock``, ``counted``
  nouns, the engine's log kept off the terminal;
- ``oracle``: which jobs should go (a cleanup's ``Filters``, judged apart from the handler's);
- ``assembly``: reading a cloud assembly: stacks (of nested assemblies and nested stacks too,
  each with its region and dependencies), cleanup resources (a cleanup's stages) and their
  properties (intrinsic functions by ``cfn``, imports of the assembly's exports), the handler
  functions behind a ServiceToken;
- ``order``: CloudFormation's deletion order: what must be gone before each cleanup resource;
- ``endpoint``: moto's server on loopback, with an emulated IoT and stack records per region;
- ``handlers``: handler modules loaded from the asset folder, one request run with them as
  the Provider does (``provider.run_request``), its ``Outcome``;
- ``stacks``: what CloudFormation keeps between the phases and how it sends requests;
  ``Hooks``, the seam tests use;
- ``fleet``: thing groups, things and jobs, the runtime actor and its bystanders;
- ``deploy``, ``update``: the phases before the destroy;
- ``teardown``: the destroy's requests sent in CloudFormation's order, the stacks' parts;
- ``long``: the long scenario's deletion time (the jobs of the cleanups of stages take long);
- ``view``: the destroy's live view; ``report``: the ``Report`` and its summary;
- ``destroy``: the destroy phase, judged;
- ``command``: ``rehearse()``, the scenarios, argument parsing and ``main``; ``__main__``:
  ``python -m``.
"""

from __future__ import annotations

from typing import Any

from .assembly import CleanupResource, HandlerFunction, StackPlan, read_assembly
from .base import ACCOUNT, REGION, RehearsalError, ScaledClock
from .command import main, rehearse
from .deploy import provision
from .endpoint import Endpoint, free_port, iot_client, iot_endpoint
from .fleet import RuntimeJob, runtime_statuses
from .handlers import HandlerRequest, Outcome, load_handler
from .oracle import Filters, JobFacts
from .order import DeletionOrder
from .report import Report, print_summary
from .stacks import Hooks

__all__ = [
    "ACCOUNT",
    "REGION",
    "CleanupResource",
    "DeletionOrder",
    "Endpoint",
    "Filters",
    "HandlerFunction",
    "HandlerRequest",
    "Hooks",
    "JobFacts",
    "Outcome",
    "RehearsalError",
    "Report",
    "RuntimeJob",
    "ScaledClock",
    "StackPlan",
    "free_port",
    "iot_client",
    "iot_endpoint",
    "load_handler",
    "main",
    "print_summary",
    "provision",
    "read_assembly",
    "rehearse",
    "runtime_statuses",
]


def __getattr__(name: str) -> Any:
    """``rehearse.DeletionTime`` and friends, imported from the emulator when first used."""
    if name in ("DeletionLifecycle", "DeletionTime", "emulated_iot"):
        from .. import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
