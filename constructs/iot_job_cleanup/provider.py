"""The CDK Provider framework, replayed offline (rehearsal, benchmark, tests): standard library only.

As ``custom_resources.Provider`` runs it: ``on_event`` once with the CloudFormation request;
the framework merges its result into the event; the waiter then calls ``is_complete`` with
that event, and again every query interval while it answers ``IsComplete: false``, until
its attempts (total timeout / query interval) run out. An exception from either handler is
the resource's failure reason.

Besides ``replay_delete``: the framework's physical-id rule (``physical_id``), its waiter's
attempts (``waiter_attempts``), and the one driver everyone uses to run a handler module's
entry points as the Provider does (``EntryPoint``, ``handler_keywords``, ``run_request``):
the keywords a handler gets, passed only if it takes them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EntryPoint",
    "ProviderTimeoutError",
    "accepted_keywords",
    "handler_keywords",
    "physical_id",
    "replay_delete",
    "run_request",
    "waiter_attempts",
]

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


# --------------------------------------------------------------------------- the framework's rules


def physical_id(request: Mapping[str, Any], result: Mapping[str, Any] | None) -> str:
    """The physical id the framework reports: on_event's; without one, on Create the request
    id, on Update and Delete the old one stays."""
    return str(
        (result or {}).get("PhysicalResourceId")
        or request.get("PhysicalResourceId")
        or request.get("RequestId", "")
    )


def waiter_attempts(total_timeout: float, query_interval: float) -> int:
    """How many times the waiter retries is_complete: the total timeout over the interval."""
    return int(total_timeout // query_interval)


# --------------------------------------------------------------------------- the one driver


def handler_keywords(
    *,
    client: Any,
    timing: Any,
    cloudformation: Any = None,
    tagging: Any = None,
    remaining_lambda_seconds: float | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    random: Callable[[], float] | None = None,
    **more: Any,
) -> dict[str, Any]:
    """The keywords a handler entry point gets (``client``, ``timing`` and the optional ones
    given; ``None`` leaves the handler's default). ``more``: keywords of later versions."""
    optional = {
        "cloudformation": cloudformation,
        "tagging": tagging,
        "remaining_lambda_seconds": remaining_lambda_seconds,
        "clock": clock,
        "sleep": sleep,
        "random": random,
        **more,
    }
    return {"client": client, "timing": timing, **{k: v for k, v in optional.items() if v is not None}}


def accepted_keywords(function: Callable[..., Any], keywords: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords ``function`` takes: a handler of another version (the rehearsal runs
    handlers of any version from an asset folder) runs as in Lambda, without the others."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(keywords)
    return {key: value for key, value in keywords.items() if key in parameters}


@dataclass(frozen=True)
class EntryPoint:
    """A handler's ``handle_on_event`` or ``handle_is_complete`` with the keywords it gets."""

    function: Callable[..., Mapping[str, Any]]
    keywords: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, module: Any, name: str, **keywords: Any) -> EntryPoint:
        """``module.handle_<name>`` (name: on_event or is_complete) with ``handler_keywords``."""
        return cls(getattr(module, f"handle_{name}"), handler_keywords(**keywords))

    def __call__(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.function(event, **accepted_keywords(self.function, self.keywords))


Invocation = Callable[[str, Callable[[], Mapping[str, Any]]], Mapping[str, Any]]


def _just_call(name: str, call: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
    return call()


def run_request(
    request: Mapping[str, Any],
    on_event: EntryPoint,
    is_complete: EntryPoint,
    *,
    sleep: Callable[[float], None],
    query_interval: float,
    max_attempts: int | None = None,
    invocation: Invocation = _just_call,
) -> str:
    """Run a request (any type) as the Provider does; return the physical id it reports.

    ``invocation(name, call)`` runs each Lambda invocation (name: "on_event" or
    "is_complete"): to count or time them. Raises as ``replay_delete`` does.
    """
    results: list[Mapping[str, Any]] = []

    def first(event: Mapping[str, Any]) -> Mapping[str, Any]:
        results.append(invocation("on_event", lambda: on_event(event)) or {})
        return results[-1]

    replay_delete(
        request,
        first,
        lambda event: invocation("is_complete", lambda: is_complete(event)),
        sleep=sleep,
        query_interval=query_interval,
        max_attempts=max_attempts,
    )
    return physical_id(request, results[0] if results else None)
