"""What crosses the Lambda boundary (I4): the event is checked before it is read, and nothing
leaves an entry point but the engine's ``CleanupError``, one message that says what happened
and what to do, never a botocore exception or a Python error.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .aws import error_code, error_message
from .errors import CleanupError, InvalidPropertiesError, TransientError, shown

__all__ = ["checked_event", "no_traceback"]

logger = logging.getLogger("iot_job_cleanup")


def checked_event(event: Any) -> Mapping[str, Any]:
    """The keys the handler reads, there and of the right kind: else a message, not a KeyError."""
    if not isinstance(event, Mapping):
        raise InvalidPropertiesError(f"The event is {shown(event)}: the Provider framework sends a mapping.")
    for key in ("RequestType", "StackId", "LogicalResourceId"):
        if not isinstance(event.get(key), str) or not event[key]:
            raise InvalidPropertiesError(
                f"The event's {key} is {shown(event.get(key))}: CloudFormation always sends it as a "
                "string. Deploy the resource through the IotJobCleanup construct's provider."
            )
    return event


def no_traceback(handler: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """I4's last line: whatever goes wrong reaches CloudFormation as one message that says what
    happened and what to do, never as a botocore exception or a Python error."""

    @functools.wraps(handler)
    def wrapped(event: Mapping[str, Any], **keywords: Any) -> dict[str, Any]:
        try:
            return handler(checked_event(event), **keywords)
        except CleanupError:
            raise
        except ClientError as exc:
            operation = exc.operation_name or "a call"
            raise CleanupError(
                f"AWS refused {operation}: {error_code(exc)}: {error_message(exc)}. Jobs may be left; "
                "check the handler role's permissions and any SCP, then run cdk destroy again."
            ) from exc
        except (BotoCoreError, TransientError) as exc:
            raise CleanupError(
                f"AWS could not be reached ({exc}). Jobs may be left; run cdk destroy again."
            ) from exc
        except Exception as exc:
            logger.exception("unexpected error in the cleanup handler")
            raise CleanupError(
                f"The cleanup stopped on an unexpected error ({type(exc).__name__}: {exc}); jobs may be "
                "left. Run cdk destroy again; if it recurs, report it with the handler's log."
            ) from exc

    return wrapped
