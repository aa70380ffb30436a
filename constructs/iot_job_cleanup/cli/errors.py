"""How the command line's failures are worded, and its exit codes.

Every failure ends as one line on standard error: a usage error names the flag and what to
write instead, an AWS error names the call, its code and IoT's message, a bug names where its
traceback was written. Interruptions (Ctrl-C, SIGTERM) have exit codes of their own.
"""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Iterable

__all__ = [
    "EXIT_DONE",
    "EXIT_INTERRUPTED",
    "EXIT_LEFT",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "Interrupted",
    "Terminated",
    "UsageError",
    "aws_error",
    "configuration_errors",
    "ids",
    "interruption",
    "one_line",
    "traceback_file",
]

EXIT_DONE, EXIT_LEFT, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class UsageError(Exception):
    """Bad arguments: the message says which and what to write instead."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, as Ctrl-C's KeyboardInterrupt is."""


class Interrupted(Exception):  # noqa: N818 (what happened, said plainly)
    """Ctrl-C or SIGTERM: what was under way has been said; nothing more starts."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def interruption(exc: KeyboardInterrupt) -> tuple[str, int]:
    """How an interruption is named, and its exit code."""
    if isinstance(exc, Terminated):
        return "Terminated (SIGTERM)", EXIT_TERMINATED
    return "Interrupted", EXIT_INTERRUPTED


def one_line(text: object) -> str:
    """A message on one line, ending as a sentence."""
    line = " ".join(str(text).split())
    return line if line.endswith((".", "!", "?")) else line + "."


def ids(job_ids: Iterable[str]) -> str:
    """Job ids as a message lists them."""
    return ", ".join(job_ids)


def aws_error(exc: Exception) -> str:
    """A botocore error on one line, in words: the call, the code and IoT's message."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return one_line(exc)
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "")) or "an error"
    hint = (
        " Check that the credentials used allow it, and for a service control policy or a permissions "
        "boundary that denies it."
        if "AccessDenied" in code or code == "UnauthorizedOperation"
        else ""
    )
    return one_line(f"AWS refused {exc.operation_name}: {code}: {error.get('Message', '')}") + hint


def configuration_errors() -> tuple[type[Exception], ...]:
    """botocore's errors about the local AWS set-up: raised before any call reaches AWS."""
    from botocore import exceptions

    names = (
        "NoRegionError",
        "NoCredentialsError",
        "PartialCredentialsError",
        "ProfileNotFound",
        "ConfigParseError",
        "ConfigNotFound",
        "InvalidConfigError",
        "InvalidRegionError",
        "InvalidEndpointConfigurationError",
        "UnknownCredentialError",
        "CredentialRetrievalError",
        "SSOTokenLoadError",
        "TokenRetrievalError",
        "UnauthorizedSSOTokenError",
    )
    return tuple(getattr(exceptions, name) for name in names if hasattr(exceptions, name))


def traceback_file() -> str:
    """Where the traceback of the exception being handled was written, for a bug report."""
    try:
        with tempfile.NamedTemporaryFile("w", prefix="iot-job-cleanup-", suffix=".txt", delete=False) as file:
            traceback.print_exc(file=file)
    except OSError as exc:
        return f"its traceback could not be written: {exc}"
    return f"the traceback is in {file.name}"
