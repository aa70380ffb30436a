"""The CDK Provider framework's Delete lifecycle, replayed offline (rehearsal, benchmark, tests).

As ``custom_resources.Provider`` runs it: ``on_event`` once with the CloudFormation request;
the framework merges its result into the event; the waiter then calls ``is_complete`` with
that event, and again every query interval while it answers ``IsComplete: false``, until
its attempts (total timeout / query interval) run out. An exception from either handler is
the resource's failure reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ProviderTimeoutError", "replay_delete"]

Handler = Callable[[Mapping[str, Any]], Mapping[str, Any]]


class ProviderTimeoutError(Exception):
    """The waiter's attempts ran out (the framework's onTimeout)."""


def replay_delete(
    request: Mapping[str, Any],
    on_event: Handler,
    is_complete: Handler,
    *,
    sleep: Callable[[float], None],
    query_interval: float,
    max_attempts: int | None = None,
) -> None:
    """Return when the Delete completed; raise the handler's error, or ProviderTimeoutError."""
    waiter_input = {**request, **on_event(request)}
    retries = 0
    while not is_complete(waiter_input)["IsComplete"]:
        if max_attempts is not None and retries >= max_attempts:
            raise ProviderTimeoutError("Operation timed out")
        retries += 1
        sleep(query_interval)
