"""Where the cleanup engine (the Lambda handler package) lives, and loading it.

Light on purpose: neither aws-cdk-lib nor Node is loaded, so the command line starts fast
on an operator's machine. The construct ships the same folder as its Lambda asset.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["HANDLER_MODULE", "handler_directory", "load_engine"]

HANDLER_MODULE = "iot_job_cleanup_handler"


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


def load_engine() -> ModuleType:
    """The engine the Lambda handler runs, for the command line: one implementation."""
    if HANDLER_MODULE in sys.modules:
        return sys.modules[HANDLER_MODULE]
    try:  # installed from the wheel
        return importlib.import_module(f"{__package__}.handler.{HANDLER_MODULE}")
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
    return module
