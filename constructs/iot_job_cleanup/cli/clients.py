"""The AWS clients the command uses, made with boto3 only when a command runs, and seen on the wire.

``Clients`` holds them (tests and the fault harness pass their own); ``make_clients`` makes
them from ``--region`` (or AWS_REGION), ``--profile`` and ``--endpoint-url`` with the engine's retry and
timeout configuration; ``pages`` walks a listing's NextToken pages.

``observed`` wraps each client so that the command sees every call it (or the engine) makes:
``Wire`` counts the calls sent and answered (the jobs ListJobs listed, the tags read), tells its
listeners of each answer (discovery's progress, ``progress.Finding``), and keeps the calls that
failed, with the endpoint and service they went to. That is how the command knows, from the run
itself and not from a message's words, whether this run started a deletion or a cancel
(``Wire.changed``), and which endpoint an error is about (``endpoint_problem``). The engine is
not changed for it: it calls the wrapped client as it would the client.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from ..engine import Engine
from .errors import UsageError, causes, endpoint_trouble

__all__ = [
    "CHANGING_OPERATIONS",
    "Clients",
    "FailedCall",
    "Observed",
    "Wire",
    "endpoint_problem",
    "make_clients",
    "observed",
    "pages",
]

CHANGING_OPERATIONS = ("DeleteJob", "CancelJob")  # the only calls of the command that change a job
SERVICE_NAMES = {"SFN": "Step Functions"}  # botocore's service ids, as a message names them
Listener = Callable[[str, Mapping[str, Any], Any], None]  # (operation, parameters, answer)


@dataclass(frozen=True)
class FailedCall:
    """A call that did not get an answer it could use: where it went, and what came of it."""

    service: str  # "IoT", "CloudFormation"
    endpoint: str  # the client's endpoint URL: "https://iot.us-east-1.amazonaws.com"
    operation: str  # "ListJobs"
    error: BaseException


@dataclass
class Wire:
    """Every call of the command's clients, as it went: sent, answered, refused, failed."""

    sent: Counter[str] = field(default_factory=Counter)  # operation ("ListJobs") -> calls sent
    answered: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # AWS answered with an error (ClientError)
    listed: int = 0  # the jobs in the ListJobs pages answered
    failures: list[FailedCall] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """This run sent a DeleteJob or a CancelJob that AWS did not refuse: it may have started a
        deletion or a cancel (a call whose answer never came counts: it may have arrived)."""
        return any(self.sent[name] > self.refused[name] for name in CHANGING_OPERATIONS)

    def answer(self, operation: str, params: Mapping[str, Any], answer: Any) -> None:
        self.answered[operation] += 1
        if operation == "ListJobs" and isinstance(answer, Mapping):
            self.listed += len(answer.get("jobs", []))
        for listener in list(self.listeners):
            listener(operation, params, answer)

    def failed(self, call: FailedCall, refused: bool) -> None:
        if refused:
            self.refused[call.operation] += 1
        del self.failures[:-20]  # the last ones are enough to tell where an error came from
        self.failures.append(call)

    def where(self, exc: BaseException) -> FailedCall | None:
        """The call ``exc`` (or what caused it) came from, else the last call that failed."""
        chain = list(causes(exc))
        for call in reversed(self.failures):
            if any(call.error is cause for cause in chain):
                return call
        return self.failures[-1] if self.failures else None


def api_name(method: str) -> str:
    """``list_jobs`` as the API names it: ``ListJobs``."""
    return "".join(part.capitalize() for part in method.split("_"))


class Observed:
    """A client whose every call the wire sees; anything else is the client's own (``meta``...)."""

    def __init__(self, client: Any, wire: Wire) -> None:
        self._client, self._wire = client, wire
        meta = getattr(client, "meta", None)
        self._operations: dict[str, str] = dict(getattr(meta, "method_to_api_mapping", None) or {})
        service_id = str(getattr(getattr(meta, "service_model", None), "service_id", "") or "")
        self._service = SERVICE_NAMES.get(service_id, service_id) or "AWS"
        self._endpoint = str(getattr(meta, "endpoint_url", "") or "")

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or name in ("meta", "exceptions") or not callable(attribute):
            return attribute
        if isinstance(attribute, type):
            return attribute
        if self._operations and name not in self._operations:  # get_paginator, close...
            return attribute
        operation = self._operations.get(name) or api_name(name)

        def call(*args: Any, **params: Any) -> Any:
            from botocore.exceptions import ClientError  # loaded with the client

            self._wire.sent[operation] += 1
            try:
                answer = attribute(*args, **params)
            except BaseException as exc:
                # An error answer (ClientError): the call was not carried out. Anything else (no
                # answer, Ctrl-C while waiting for it) may have reached AWS.
                refused = isinstance(exc, ClientError)
                self._wire.failed(FailedCall(self._service, self._endpoint, operation, exc), refused)
                raise
            self._wire.answer(operation, params, answer)
            return answer

        return call


@dataclass
class Clients:
    """boto3 clients, or anything that answers as they do."""

    iot: Any
    tagging: Any  # resourcegroupstaggingapi: --tag finds jobs through it
    cloudformation: Any  # resume reads the stack; delete asks nothing of it
    states: Any = None  # stepfunctions: the Provider's waiter, read by resume
    wire: Wire | None = None  # what the clients sent and were answered (``observed``)


def observed(clients: Clients, wire: Wire) -> Clients:
    """The same clients, each call seen by ``wire``."""

    def seen(client: Any) -> Any:
        return None if client is None else Observed(client, wire)

    return replace(
        clients,
        iot=seen(clients.iot),
        tagging=seen(clients.tagging),
        cloudformation=seen(clients.cloudformation),
        states=seen(clients.states),
        wire=wire,
    )


def make_clients(engine: Engine, args: argparse.Namespace) -> Clients:
    """The clients for ``args``' region, profile and endpoint."""
    import boto3  # only now: `--help` and usage errors need no AWS SDK

    session = boto3.Session(profile_name=args.profile, region_name=region(args))
    extra = {"endpoint_url": args.endpoint_url} if args.endpoint_url else {}

    def client(service: str) -> Any:
        try:
            return session.client(service, config=engine.CLIENT_CONFIG, **extra)
        except ValueError as exc:
            if type(exc) is not ValueError:  # botocore's own (a region it cannot use): said as it is
                raise
            if args.endpoint_url:  # boto3's "Invalid endpoint: ...": a usage error of the flag
                raise UsageError(
                    f"--endpoint-url {args.endpoint_url!r} is not a URL: write one such as "
                    "http://localhost:5000 (or leave it out for AWS's own endpoints)."
                ) from exc
            raise UsageError(  # from AWS_ENDPOINT_URL or the profile
                f"{exc}: write AWS_ENDPOINT_URL (or the profile's endpoint_url) as a URL, e.g. "
                "http://localhost:5000."
            ) from exc

    return Clients(
        client("iot"), client("resourcegroupstaggingapi"), client("cloudformation"), client("stepfunctions")
    )


def region(args: argparse.Namespace) -> str | None:
    """--region, then AWS_REGION (what Lambda, the CDK CLI and most tools set), then boto3's
    own order: AWS_DEFAULT_REGION, then the profile's region."""
    return args.region or os.environ.get("AWS_REGION") or None


def endpoint_problem(exc: BaseException, wire: Wire | None, endpoint_url: str | None = None) -> str | None:
    """``exc`` as one sentence about the endpoint, when it is about the endpoint (it could not be
    reached, or did not answer as AWS does), naming the endpoint and what to check; None otherwise.
    The caller says what became of the jobs."""
    trouble = endpoint_trouble(exc)
    if trouble is None:
        return None
    call = wire.where(trouble.error) if wire is not None else None
    service = call.service if call is not None else "AWS"
    url = (
        (call.endpoint if call is not None else "")
        or endpoint_url
        or str((getattr(trouble.error, "kwargs", None) or {}).get("endpoint_url", ""))
    )
    host = urlsplit(url).hostname or ""
    aws_own = host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))
    named = f"the {service} endpoint {url}" if url else f"the {service} endpoint"
    if not trouble.reached:
        check = (
            "Check the network connection, any proxy (HTTPS_PROXY) and --region"
            if aws_own
            else "Check --endpoint-url / AWS_ENDPOINT_URL"
        )
        return f"Could not reach {named} ({trouble.words}). {check}"
    check = (
        "Check for a proxy or firewall answering in AWS's place (HTTPS_PROXY)"
        if aws_own
        else "Check --endpoint-url / AWS_ENDPOINT_URL"
    )
    what = service if service != "AWS" else "an AWS service"
    words = f"{call.operation}: {trouble.words}" if call is not None else trouble.words
    return f"{named[0].upper()}{named[1:]} does not answer as {what} does ({words}). {check}"


def pages(client: Any, operation: str, key: str, **params: Any) -> Iterator[Any]:
    """Every item under ``key`` of ``operation``'s pages, following NextToken."""
    token = None
    while True:
        page = getattr(client, operation)(**params, **({"NextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return
