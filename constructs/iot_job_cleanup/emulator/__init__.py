"""An offline AWS IoT jobs endpoint: moto, plus the DeleteJob lifecycle moto lacks.

In moto's spirit (``iot/models.py`` keeps the state, ``responses.py`` the wire), the state
is apart from the ways in:

- ``jobs``: IoT's job statuses and errors (``IotApiError``), ``DeletionTime``,
  ``JobSnapshot``, the execution counts;
- ``state``: ``LifecycleState``, what moto does not keep, time passing (``settle``), the
  transitions every part uses, the read API;
- ``operations``: ``IotOperations``, the IoT calls the cleanup makes, counted, rate
  limited, with IoT's errors;
- ``model``: ``DeletionLifecycle``, the whole model (its docstring lists what it adds to
  moto), with the other actors' moves (jobs created, finished, cancelled, slots held);
- ``wire``: ``emulated_iot()``, moto's IoT responses patched to answer from a lifecycle;
- ``clients``: ``LifecycleClient`` and ``TaggingClient``, the same calls in-process, with
  the same errors and no HTTP;
- ``stacks``: CloudFormation's stack records, ``emulated_stack``, ``set_stack_status``,
  ``StackStatusClient``;
- ``tagging``: ``emulated_tagging(lifecycle)``, ``emulated_iot``'s sibling: moto's Resource
  Groups Tagging API answers the lifecycle's IoT jobs (off unless asked for: whether AWS's
  does is unconfirmed);
- ``serve``: ``python -m iot_job_cleanup.emulator``, the endpoint as a command (moto's
  server on 127.0.0.1 until Ctrl-C or SIGTERM), and ``seed_demo``, its ``--demo`` fleet.

Two ways in: ``emulated_iot()`` patches moto's IoT responses, so real boto3 clients talk
to it through ``mock_aws`` or a ``ThreadedMotoServer``; ``LifecycleClient`` calls the same
lifecycle in-process, with the same errors, for simulations that make millions of calls.

Read the state through the lifecycle's read API (``locked()``, ``snapshot()``,
``snapshot_of()``, ``execution_statuses()``, ``exists()``, ``job_ids()``, ``thing_group_names()``,
``thing_names()``), not its lock or moto's backend. Reads change nothing; ``settle()`` lets
the simulated time's deletions finish first.

The emulator needs moto (the ``[emulator]`` extra) and never imports the cleanup engine, the
construct, the rehearsal or the command line.
"""

from __future__ import annotations

from .clients import LifecycleClient, TaggingClient
from .jobs import (
    DELETING,
    MAX_PAGE,
    PUBLISHED_RATE_LIMIT,
    RUNNING_STATUSES,
    TERMINAL_STATUSES,
    DeletionTime,
    IotApiError,
    JobSnapshot,
)
from .model import DeletionLifecycle
from .serve import DemoFleet, seed_demo
from .stacks import StackRecord, StackStatusClient, emulated_stack, set_stack_status
from .state import OutsideDeletion, RateLimit
from .tagging import emulated_tagging
from .wire import emulated_iot

__all__ = [
    "DELETING",
    "MAX_PAGE",
    "PUBLISHED_RATE_LIMIT",
    "RUNNING_STATUSES",
    "TERMINAL_STATUSES",
    "DeletionLifecycle",
    "DeletionTime",
    "DemoFleet",
    "IotApiError",
    "JobSnapshot",
    "LifecycleClient",
    "OutsideDeletion",
    "RateLimit",
    "StackRecord",
    "StackStatusClient",
    "TaggingClient",
    "emulated_iot",
    "emulated_stack",
    "emulated_tagging",
    "seed_demo",
    "set_stack_status",
]
