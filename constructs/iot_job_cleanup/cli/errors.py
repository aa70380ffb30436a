"""How the command line's failures are worded, and its exit codes; counts and their nouns.

Every failure ends as one line on standard error: a usage error names the flag and what to
write instead (after the command's usage line), an AWS error names the call, its code and
IoT's message, an endpoint that cannot be reached (or that does not answer as AWS does) is
named with what went wrong, a bug names where its traceback was written. Interruptions
(Ctrl-C, SIGTERM) have exit codes of their own. Every count the command prints goes through
``counted`` (``1 job``, ``2 jobs``), and the words that agree with it through ``agreeing``.
"""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "EXIT_DONE",
    "EXIT_INTERRUPTED",
    "EXIT_LEFT",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "EndpointTrouble",
    "Interrupted",
    "Terminated",
    "UsageError",
    "agreeing",
    "aws_error",
    "causes",
    "configuration_errors",
    "counted",
    "endpoint_trouble",
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


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """A count with its noun agreeing: ``1 job``, ``2 jobs``, ``0 jobs`` (``plural`` when it is
    not the noun and an s)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def agreeing(count: int, one: str, many: str) -> str:
    """The words that agree with ``count``: ``one`` for 1, else ``many`` (``is``/``are``, ``it``/``them``)."""
    return one if count == 1 else many


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


@dataclass(frozen=True)
class EndpointTrouble:
    """An error about the endpoint itself, not about what AWS answered: it could not be
    reached (``reached`` False: ``words`` say why, e.g. "connection refused"), or what answered
    is not AWS (``words`` say what came instead). ``error`` is botocore's exception."""

    error: BaseException
    reached: bool
    words: str


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what led to it (``raise ... from``, or raised while handling), nearest first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and not any(current is known for known in seen) and len(seen) < 10:
        seen.append(current)
        yield current
        current = current.__cause__ or current.__context__


def endpoint_trouble(exc: BaseException) -> EndpointTrouble | None:
    """What ``exc`` (or its cause) tells of the endpoint: None when the endpoint answered as AWS
    does (a refusal, a throttling: AWS's own answer, said by ``aws_error``)."""
    from botocore.exceptions import ClientError, ConnectionClosedError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.parsers import ResponseParserError

    for cause in causes(exc):
        if isinstance(cause, (BotoConnectionError, HTTPClientError)) and not isinstance(
            cause, ConnectionClosedError
        ):
            return EndpointTrouble(cause, False, unreachable_because(cause))
        if isinstance(cause, ConnectionClosedError):
            return EndpointTrouble(cause, False, "the connection was closed before an answer came")
        if isinstance(cause, ResponseParserError):
            return EndpointTrouble(cause, True, "an answer that is not AWS's: botocore cannot parse it")
        if isinstance(cause, ClientError):
            error = cause.response.get("Error", {})
            code = str(error.get("Code", ""))
            if not code or code.isdigit():  # AWS names its errors: no name, or a bare HTTP status, is not AWS
                status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or code
                return EndpointTrouble(cause, True, f"HTTP {status} with no AWS error")
    return None


def unreachable_because(error: BaseException) -> str:
    """Why a connection failed, in a few words, from botocore's exception and urllib3's under it."""
    from botocore.exceptions import ConnectTimeoutError, ProxyConnectionError, ReadTimeoutError, SSLError

    if isinstance(error, ReadTimeoutError):
        return "no answer within the read timeout"
    if isinstance(error, ConnectTimeoutError):
        return "the connection timed out"
    if isinstance(error, SSLError):
        return "the TLS handshake failed"
    if isinstance(error, ProxyConnectionError):
        return "the proxy could not be reached"
    kwargs = getattr(error, "kwargs", {}) or {}
    text = " ".join(str(part) for part in (error, kwargs.get("error", ""))).lower()
    for clue, words in (
        ("refused", "connection refused"),
        ("name or service not known", "its host name does not resolve"),
        ("nodename nor servname", "its host name does not resolve"),
        ("getaddrinfo failed", "its host name does not resolve"),
        ("failed to resolve", "its host name does not resolve"),
        ("name resolution", "its host name does not resolve"),
        ("timed out", "the connection timed out"),
        ("unreachable", "the network is unreachable"),
        ("reset by peer", "the connection was reset"),
    ):
        if clue in text:
            return words
    return "no connection could be made"
