"""What every part of the rehearsal shares: its error, the offline identity, the scaled clock,
the check that the emulator extra is installed, counted nouns (``1 job``, ``2 jobs``) and the
engine's log records kept off the terminal while a rehearsal runs."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..cfn import OFFLINE_ACCOUNT, OFFLINE_REGION

__all__ = [
    "ACCOUNT",
    "BYSTANDER_JOB",
    "CREDENTIALS",
    "EMULATOR_EXTRA",
    "ENGINE_LOGGER",
    "KEPT",
    "REGION",
    "RehearsalError",
    "ScaledClock",
    "counted",
    "engine_log_kept_off_the_terminal",
    "require_emulator",
]

ACCOUNT = OFFLINE_ACCOUNT
REGION = OFFLINE_REGION
CREDENTIALS = {"aws_access_key_id": "rehearsal", "aws_secret_access_key": "rehearsal"}
BYSTANDER_JOB = "bystander-job-not-in-any-cleanup"
EMULATOR_EXTRA = "pip install 'iot-job-cleanup[emulator]'"
KEPT = "kept: DeletionPolicy Retain"
ENGINE_LOGGER = "iot_job_cleanup"  # the handler's logger (its records are the Lambda's log lines)


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


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 job``, ``2 jobs``, ``0 jobs``: a count with its noun agreeing (``plural`` when the
    noun does not just take an s: ``counted(n, "job", "jobs its filters select")``)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


@contextmanager
def engine_log_kept_off_the_terminal() -> Iterator[None]:
    """While a rehearsal runs, the handler's log records (``logging.getLogger("iot_job_cleanup")``,
    a stage's hand-over WARNING among them) go nowhere of their own: in Lambda they are its log
    lines, here the rehearsal's output says what happened. Without a handler of its own Python
    would print them bare on stderr (its last-resort handler), between the rehearsal's lines.
    Handlers the caller configured (``logging.basicConfig``, pytest's capture) still get them."""
    logger = logging.getLogger(ENGINE_LOGGER)
    quiet = logging.NullHandler()
    logger.addHandler(quiet)
    try:
        yield
    finally:
        logger.removeHandler(quiet)
