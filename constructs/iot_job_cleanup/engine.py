"""Where the cleanup engine (the Lambda handler package) lives, loading it, and its typed face.

Light on purpose: neither aws-cdk-lib nor Node is loaded, so the command line starts fast
on an operator's machine. The construct ships the same folder as its Lambda asset, and
checks its options with the engine's naming rules (``naming_rules``: its ``rules.py`` alone,
without the engine package and so without botocore).

``Engine`` names what the library uses of the engine (standard library only: the engine's
own types need boto3, so what they are is said in words where ``Any`` stands for them).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

__all__ = ["HANDLER_MODULE", "Engine", "handler_directory", "load_engine", "naming_rules"]

HANDLER_MODULE = "iot_job_cleanup_handler"
# The name naming_rules() loads the engine's rules.py under: its own, never the engine's.
_RULES_MODULE = "_iot_job_cleanup_naming_rules"


class Engine(Protocol):
    """The engine package (``iot_job_cleanup_handler``) as the library uses it: its classes,
    errors, constants and functions. A module satisfies it (PEP 544)."""

    # -- the cleanup
    JobCleanup: Callable[..., Any]  # (iot, request, *, clock, sleep, ...) -> JobCleanup
    IotJobs: Callable[..., Any]  # (client, namespace_id, *, tagging, clock, sleep) -> IotJobs
    CleanupRequest: Any  # a class: CleanupRequest(selection=, force=, drain=), .from_properties(...)
    Selection: Callable[..., Any]  # (job_ids=, tags=, thing_groups=, prefix=, namespace_id=)
    Timing: Callable[..., Any]  # () -> Timing: the handler's poll_interval and query_interval
    CleanupProgress: type[Any]  # what JobCleanup.progress() answers: a frozen snapshot

    # -- the errors
    CleanupError: type[Exception]  # the base of the engine's errors, TransientError apart
    RefusedError: type[Exception]  # IoT refused a call no retry cures
    ForceRequiredError: type[Any]  # a CleanupError carrying the job's job_id and status
    DrainTimeoutError: type[Exception]
    CleanupTimeoutError: type[Exception]
    InvalidPropertiesError: type[Exception]
    TransientError: type[Exception]  # retries used up: running again may succeed

    # -- the constants
    CLIENT_CONFIG: Any  # botocore.config.Config: the engine's retries and timeouts
    DELETION_SLOTS: int  # jobs IoT has in DELETION_IN_PROGRESS at once, per account and region
    RUNNING_STATUSES: frozenset[str]  # the statuses IoT deletes only with force

    # -- the functions
    def devices_busy(self, job: Mapping[str, Any]) -> int: ...

    def stack_status(self, cloudformation: Any, stack_id: str) -> str: ...

    def forget_cached_facts(self) -> None: ...


def handler_directory() -> Path:
    """The handler asset, the folder holding the handler package: lambda/ in this
    repository, iot_job_cleanup/handler/ in the wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "handler", here.parent.parent / "lambda"):
        if (candidate / HANDLER_MODULE / "__init__.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"The handler package {HANDLER_MODULE} is neither in {here / 'handler'} nor in the "
        "repository's lambda/: reinstall iot-job-cleanup."
    )


def load_engine() -> Engine:
    """The engine the Lambda handler runs, for the command line: one implementation."""
    if HANDLER_MODULE in sys.modules:
        return cast(Engine, sys.modules[HANDLER_MODULE])
    try:  # installed from the wheel
        return cast(Engine, importlib.import_module(f"{__package__}.handler.{HANDLER_MODULE}"))
    except ModuleNotFoundError:
        pass
    package = handler_directory() / HANDLER_MODULE  # this repository's lambda/
    spec = importlib.util.spec_from_file_location(
        HANDLER_MODULE, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[HANDLER_MODULE] = module
    spec.loader.exec_module(module)
    return cast(Engine, module)


@functools.cache
def naming_rules() -> ModuleType:
    """IoT's naming rules as the engine checks them (``JOB_ID_PATTERN``, ``MAX_TAGS``...): the
    handler package's ``rules.py`` loaded alone, standard library only, so that the construct
    checks its options with the same patterns without the engine package's ``__init__``
    (which imports botocore)."""
    path = handler_directory() / HANDLER_MODULE / "rules.py"
    spec = importlib.util.spec_from_file_location(_RULES_MODULE, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
