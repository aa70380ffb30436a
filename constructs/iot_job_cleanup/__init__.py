"""iot-job-cleanup: delete AWS IoT jobs when a CloudFormation stack is torn down.

``IotJobCleanup`` (the construct) loads aws-cdk-lib when first used, so the command line
(``python -m iot_job_cleanup``) starts without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .engine import HANDLER_MODULE, handler_directory

if TYPE_CHECKING:
    from .synth import IotJobCleanup

__all__ = ["HANDLER_MODULE", "IotJobCleanup", "__version__", "handler_directory"]

__version__ = "0.4.0"  # the one source: pyproject.toml reads it, `iot-job-cleanup --version` prints it


def __getattr__(name: str) -> Any:
    if name == "IotJobCleanup":
        from .synth import IotJobCleanup

        return IotJobCleanup
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
