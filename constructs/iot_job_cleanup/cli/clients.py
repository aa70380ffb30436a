"""The AWS clients the command uses, made with boto3 only when a command runs.

``Clients`` holds them (tests and the fault harness pass their own); ``make_clients`` makes
them from ``--region`` (or AWS_REGION), ``--profile`` and ``--endpoint-url`` with the engine's retry and
timeout configuration; ``pages`` walks a listing's NextToken pages.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..engine import Engine
from .errors import UsageError

__all__ = ["Clients", "make_clients", "pages"]


@dataclass
class Clients:
    """boto3 clients, or anything that answers as they do."""

    iot: Any
    tagging: Any  # resourcegroupstaggingapi: --tag finds jobs through it
    cloudformation: Any  # resume reads the stack; delete asks nothing of it
    states: Any = None  # stepfunctions: the Provider's waiter, read by resume


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
            raise UsageError(  # boto3's "Invalid endpoint: ..."
                f"{exc}: write --endpoint-url (or AWS_ENDPOINT_URL) as a URL, e.g. http://localhost:5000."
            ) from exc

    return Clients(
        client("iot"), client("resourcegroupstaggingapi"), client("cloudformation"), client("stepfunctions")
    )


def region(args: argparse.Namespace) -> str | None:
    """--region, then AWS_REGION (what Lambda, the CDK CLI and most tools set), then boto3's
    own order: AWS_DEFAULT_REGION, then the profile's region."""
    return args.region or os.environ.get("AWS_REGION") or None


def pages(client: Any, operation: str, key: str, **params: Any) -> Iterator[Any]:
    """Every item under ``key`` of ``operation``'s pages, following NextToken."""
    token = None
    while True:
        page = getattr(client, operation)(**params, **({"NextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return
