"""The AWS-protocol endpoint the rehearsal plays against: moto's server on a free loopback port,
with an emulated IoT (the DeleteJob lifecycle, its own 10 deletion slots) and CloudFormation's
stack records in each region the stacks are in, and clients of it."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import ACCOUNT, CREDENTIALS, REGION, ScaledClock
from .oracle import JobKey

if TYPE_CHECKING:  # the emulator extra (moto, boto3) is imported only when a rehearsal runs
    from ..emulator import DeletionLifecycle, DeletionTime

__all__ = ["Endpoint", "free_port", "iot_client", "iot_endpoint", "session"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Endpoint:
    """moto's server (``url``) and each region's emulated IoT (``lifecycles``: IoT is per
    account and region, its 10 deletion slots too)."""

    url: str
    lifecycles: dict[str, DeletionLifecycle]

    @property
    def regions(self) -> list[str]:
        return list(self.lifecycles)

    def lifecycle(self, region: str = REGION) -> DeletionLifecycle:
        return self.lifecycles[region]

    def iot(self, region: str = REGION, config: Any = None) -> Any:
        return iot_client(self.url, config, region=region)

    def label(self, key: JobKey) -> str:
        """A job as the summary names it: its id, with its region when there are several."""
        region, job_id = key
        return job_id if len(self.lifecycles) == 1 else f"{region}/{job_id}"

    def calls(self) -> dict[str, int]:
        """The IoT calls answered, by operation, over every region."""
        total: dict[str, int] = {}
        for lifecycle in self.lifecycles.values():
            with lifecycle.locked():
                for operation, count in lifecycle.calls.items():
                    total[operation] = total.get(operation, 0) + count
        return total

    def refusals(self, code: str) -> int:
        total = 0
        for lifecycle in self.lifecycles.values():
            with lifecycle.locked():
                total += lifecycle.refusals[code]
        return total


@contextmanager
def iot_endpoint(
    clock: ScaledClock,
    deletion: DeletionTime,
    list_lag_seconds: float = 0.0,
    regions: Iterable[str] = (REGION,),
) -> Iterator[Endpoint]:
    """moto's server on a free loopback port, with IoT's DeleteJob lifecycle and
    CloudFormation's stack records in each of ``regions``; stopped on exit."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.iot.models import iot_backends
    from moto.server import ThreadedMotoServer

    from ..emulator import emulated_iot

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    regions = list(dict.fromkeys(regions)) or [REGION]
    for region in regions:  # moto's state is per process: start empty
        iot_backends[ACCOUNT][region].reset()
        cloudformation_backends[ACCOUNT][region].reset()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        with ExitStack() as emulated:
            lifecycles = {
                region: emulated.enter_context(
                    emulated_iot(
                        ACCOUNT,
                        region,
                        clock=clock.now,
                        deletion_time=deletion,
                        list_lag_seconds=list_lag_seconds,
                    )
                )
                for region in regions
            }
            host, port = server.get_host_and_port()
            yield Endpoint(f"http://{host}:{port}", lifecycles)
    finally:
        server.stop()


def session() -> Any:
    """A boto3 session of the offline account (clients are made from it, never from the
    environment's credentials)."""
    import boto3

    return boto3.session.Session(region_name=REGION, **CREDENTIALS)


def iot_client(endpoint: str, config: Any = None, *, region: str = REGION) -> Any:
    import boto3

    return boto3.client("iot", endpoint_url=endpoint, region_name=region, config=config, **CREDENTIALS)
