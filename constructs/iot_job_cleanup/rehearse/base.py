"""What every part of the rehearsal shares: its error, the offline identity, the scaled clock,
and the check that the emulator extra is installed."""

from __future__ import annotations

import time

from ..cfn import OFFLINE_ACCOUNT, OFFLINE_REGION

__all__ = [
    "ACCOUNT",
    "BYSTANDER_JOB",
    "CREDENTIALS",
    "EMULATOR_EXTRA",
    "KEPT",
    "REGION",
    "RehearsalError",
    "ScaledClock",
    "require_emulator",
]

ACCOUNT = OFFLINE_ACCOUNT
REGION = OFFLINE_REGION
CREDENTIALS = {"aws_access_key_id": "rehearsal", "aws_secret_access_key": "rehearsal"}
BYSTANDER_JOB = "bystander-job-not-in-any-cleanup"
EMULATOR_EXTRA = "pip install 'iot-job-cleanup[emulator]'"
KEPT = "kept: DeletionPolicy Retain"


class RehearsalError(Exception):
    """The cloud assembly cannot be rehearsed; the message says why."""


def require_emulator() -> None:
    """The endpoint needs the emulator extra; say how to install it instead of a traceback."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401

        from .. import emulator  # noqa: F401
    except ImportError as exc:
        missing = exc.name or str(exc)
        raise RehearsalError(
            f"the rehearsal needs the emulator extra (moto's server and boto3; {missing} is not "
            f"installed): {EMULATOR_EXTRA}"
        ) from None


class ScaledClock:
    """Simulated seconds that run ``factor`` times faster than the wall clock."""

    def __init__(self, factor: float, start: float = 1_800_000_000.0) -> None:
        self.factor = factor
        self.start = start
        self._wall_start = time.monotonic()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._wall_start) * self.factor

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.factor)
