"""What can go wrong, as the cleanup reports it: each message says why and what to do."""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = [
    "CleanupError",
    "CleanupTimeoutError",
    "DrainTimeoutError",
    "ForceRequiredError",
    "InvalidPropertiesError",
    "LookExpiredError",
    "RefusedError",
    "TransientError",
    "counted",
    "shown",
]


class CleanupError(Exception):
    """The cleanup cannot go on; the message says why and what to do."""


class InvalidPropertiesError(CleanupError, ValueError):
    """The resource properties (or the command line's selection) break the contract."""


class ForceRequiredError(CleanupError):
    """A job is not in a terminal state and the cleanup does not allow force."""

    def __init__(self, message: str, *, job_id: str = "", status: str = "") -> None:
        super().__init__(message)
        self.job_id, self.status = job_id, status


class RefusedError(CleanupError):
    """IoT refused a call on a selected job, for a reason the cleanup cannot work around
    (an SCP, a permissions boundary, a namespace that does not match): the job is left."""

    def __init__(self, message: str, *, job_id: str = "", operation: str = "", code: str = "") -> None:
        super().__init__(message)
        self.job_id, self.operation, self.code = job_id, operation, code


class DrainTimeoutError(CleanupError):
    """A job's devices were still busy when its drain time was over, and force is off."""

    def __init__(self, message: str, *, job_id: str = "", devices: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.job_id, self.devices = job_id, devices


class CleanupTimeoutError(CleanupError):
    """The total timeout passed with jobs still not deleted."""


class LookExpiredError(Exception):
    """A call that acts on a job could not be sent while the look it rests on was fresh
    (paced or retried too long): the job is to be looked at again first."""


class TransientError(Exception):
    """Throttling, service unavailable, 5xx or a connection problem: try again later."""

    def __init__(self, message: str, *, throttled: bool = False) -> None:
        super().__init__(message)
        self.throttled = throttled


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 80
_SHORT_REPR.maxlist = 5


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 job``, ``2 jobs``: a count with its noun agreeing."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def shown(value: Any) -> str:
    """A value for a message: its repr, shortened so a message stays small."""
    return _SHORT_REPR.repr(value)
