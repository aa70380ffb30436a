"""The AWS-protocol endpoint the rehearsal plays against: moto's server on a free loopback port
(IoT with the DeleteJob lifecycle, and CloudFormation's stack records), and clients of it."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .base import ACCOUNT, CREDENTIALS, REGION, ScaledClock

if TYPE_CHECKING:  # the emulator extra (moto, boto3) is imported only when a rehearsal runs
    from ..emulator import DeletionLifecycle, DeletionTime

__all__ = ["free_port", "iot_client", "iot_endpoint", "session"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def iot_endpoint(
    clock: ScaledClock, deletion: DeletionTime, list_lag_seconds: float = 0.0
) -> Iterator[tuple[str, DeletionLifecycle]]:
    """moto's server on a free loopback port (IoT with the DeleteJob lifecycle, and
    CloudFormation's stack records); stopped on exit."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.iot.models import iot_backends
    from moto.server import ThreadedMotoServer

    from ..emulator import emulated_iot

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    iot_backends[ACCOUNT][REGION].reset()  # moto's state is per process: start empty
    cloudformation_backends[ACCOUNT][REGION].reset()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        with emulated_iot(
            ACCOUNT, REGION, clock=clock.now, deletion_time=deletion, list_lag_seconds=list_lag_seconds
        ) as lifecycle:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}", lifecycle
    finally:
        server.stop()


def session() -> Any:
    """A boto3 session of the offline account (clients are made from it, never from the
    environment's credentials)."""
    import boto3

    return boto3.session.Session(region_name=REGION, **CREDENTIALS)


def iot_client(endpoint: str, config: Any = None) -> Any:
    import boto3

    return boto3.client("iot", endpoint_url=endpoint, region_name=REGION, config=config, **CREDENTIALS)
