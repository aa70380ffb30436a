"""``python -m iot_job_cleanup.emulator``: the emulated IoT jobs endpoint, served until stopped.

moto's ``ThreadedMotoServer`` on 127.0.0.1 with ``emulated_iot`` (the DeleteJob lifecycle:
``DELETION_IN_PROGRESS`` for ``--deletion-seconds`` in real time, 10 slots,
``LimitExceededException``, tags, ListJobs' filters) and ``emulated_tagging`` (the Resource
Groups Tagging API's GetResources answers the IoT jobs), in the offline account and region.
It prints what to export for another terminal, then serves until Ctrl-C or SIGTERM (exit 0
on either). A port that cannot be listened on exits 2 with one line naming it and the fix.

``--demo`` seeds a fleet (``seed_demo``): rollout jobs a cleanup selecting
``--tag fleet=demo-ota`` deletes (two still running, their devices finishing in 90 s, for
``--drain``), and bystanders it must leave alone.
"""

from __future__ import annotations

import argparse
import errno
import logging
import math
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from ..cfn import OFFLINE_ACCOUNT, OFFLINE_REGION
from .model import DeletionLifecycle

__all__ = [
    "ACCOUNT",
    "CREDENTIALS",
    "DEFAULT_DELETION_SECONDS",
    "DEMO_DEVICES_FINISH_SECONDS",
    "DEMO_GROUP",
    "DEMO_TAG",
    "PROG",
    "REGION",
    "DemoFleet",
    "main",
    "seed_demo",
]

PROG = "python -m iot_job_cleanup.emulator"
ACCOUNT = OFFLINE_ACCOUNT
REGION = OFFLINE_REGION
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
DEFAULT_DELETION_SECONDS = 20.0

DEMO_GROUP = "demo-ota-fleet"
DEMO_TAG = ("fleet", "demo-ota")
DEMO_WAVES = 12
DEMO_RUNNING_WAVES = (11, 12)  # still IN_PROGRESS: a device of each is still flashing
DEMO_DEVICES_FINISH_SECONDS = 90.0
DEMO_THINGS = 4
OTHER_TEAM_GROUP = "billing-meters"
OTHER_TEAM_TAG = ("fleet", "billing")


# --------------------------------------------------------------------------- the demo fleet


@dataclass(frozen=True)
class DemoFleet:
    """What ``seed_demo`` made: the jobs a cleanup selecting the demo tag deletes, and the rest."""

    group: str
    things: tuple[str, ...]
    selected: tuple[str, ...]  # tagged fleet=demo-ota, in the demo group
    running: tuple[str, ...]  # of those, IN_PROGRESS
    bystanders: tuple[str, ...]  # another team's jobs, and an untagged one in the demo group
    devices_seconds: float = DEMO_DEVICES_FINISH_SECONDS  # when the running waves' devices finish

    def summary(self) -> str:
        key, value = DEMO_TAG
        return (
            f"Demo fleet: thing group {self.group} ({len(self.things)} things); "
            f"{len(self.selected)} jobs {self.selected[0]}..{self.selected[-1]} tagged {key}={value} "
            f"({len(self.selected) - len(self.running)} COMPLETED, {len(self.running)} IN_PROGRESS: "
            f"{', '.join(self.running)}, devices finishing in {self.devices_seconds:g} s); "
            f"bystanders to leave alone: {', '.join(self.bystanders)}."
        )


def _group(lifecycle: DeletionLifecycle, name: str, things: Sequence[str]) -> str:
    """A thing group with its things, in moto's backend (the lifecycle's); its ARN."""
    backend = lifecycle.backend
    _, arn, _ = backend.create_thing_group(name, None, {})
    for thing in things:
        backend.create_thing(thing, None, None)
        backend.add_thing_to_thing_group(name, None, thing, None)
    return str(arn)


def seed_demo(
    lifecycle: DeletionLifecycle, devices_seconds: float = DEMO_DEVICES_FINISH_SECONDS
) -> DemoFleet:
    """A small OTA fleet and its neighbours, created as a fleet leaves them (no call counted).

    - thing group ``demo-ota-fleet`` with 4 things;
    - ``ota-wave-01``..``ota-wave-12`` tagged ``fleet=demo-ota``, targeting the group:
      ``COMPLETED``, except waves 11 and 12, ``IN_PROGRESS`` with their devices finishing
      ``devices_seconds`` from now (a drain waits for them; without force or a drain they
      cannot be deleted);
    - bystanders: ``billing-fw-1``..``3`` tagged ``fleet=billing`` in another team's group
      (``billing-fw-3`` running, never finishing: a drain must not cancel it), and
      ``ota-manual-1``, untagged, in the demo group, with an ``ota-`` id.
    """
    key, value = DEMO_TAG
    things = tuple(f"demo-device-{n}" for n in range(1, DEMO_THINGS + 1))
    with lifecycle.locked():
        demo = _group(lifecycle, DEMO_GROUP, things)
        other = _group(lifecycle, OTHER_TEAM_GROUP, ["billing-meter-1"])
        selected, running = [], []
        for wave in range(1, DEMO_WAVES + 1):
            job_id = f"ota-wave-{wave:02d}"
            status = "IN_PROGRESS" if wave in DEMO_RUNNING_WAVES else "COMPLETED"
            lifecycle.create_job(
                job_id,
                targets=[demo],
                status=status,
                tags={key: value},
                executions_finish_in=devices_seconds if status == "IN_PROGRESS" else math.inf,
            )
            selected.append(job_id)
            if status == "IN_PROGRESS":
                running.append(job_id)
        bystanders = []
        for n in (1, 2, 3):
            job_id = f"billing-fw-{n}"
            status = "IN_PROGRESS" if n == 3 else "COMPLETED"
            lifecycle.create_job(job_id, targets=[other], status=status, tags=dict([OTHER_TEAM_TAG]))
            bystanders.append(job_id)
        lifecycle.create_job("ota-manual-1", targets=[demo])
        bystanders.append("ota-manual-1")
    return DemoFleet(DEMO_GROUP, things, tuple(selected), tuple(running), tuple(bystanders), devices_seconds)


# --------------------------------------------------------------------------- the command


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: stop serving (exit 0). A BaseException, as KeyboardInterrupt is, so no
    ``except Exception`` on the way (moto's, werkzeug's) takes it for an error."""


def _stop(signum: int, _frame: object) -> None:
    """The first Ctrl-C or SIGTERM stops the server; more while it stops are ignored."""
    for each in (signal.SIGTERM, signal.SIGINT):
        signal.signal(each, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds: {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535: {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    parsed = argparse.ArgumentParser(
        prog=PROG,
        description="An offline AWS IoT jobs endpoint (moto plus the DeleteJob lifecycle), "
        "served on 127.0.0.1 until Ctrl-C or SIGTERM.",
    )
    parsed.add_argument("--port", type=_port, help="the port to listen on (default: a free one)")
    parsed.add_argument(
        "--demo",
        action="store_true",
        help=f"seed a demo fleet: jobs tagged {'='.join(DEMO_TAG)} in thing group {DEMO_GROUP}, "
        "and bystanders",
    )
    parsed.add_argument(
        "--deletion-seconds",
        type=_seconds,
        default=DEFAULT_DELETION_SECONDS,
        metavar="S",
        help="how long a job stays DELETION_IN_PROGRESS, in real seconds "
        f"(default {DEFAULT_DELETION_SECONDS:g})",
    )
    parsed.add_argument(
        "--devices-seconds",
        type=_seconds,
        default=DEMO_DEVICES_FINISH_SECONDS,
        metavar="S",
        help="with --demo: when the running waves' devices finish, in real seconds from start "
        f"(default {DEMO_DEVICES_FINISH_SECONDS:g})",
    )
    return parsed


def port_problem(port: int) -> str | None:
    """Why ``port`` cannot be listened on at 127.0.0.1 (None: it can), tried as the server's
    socket is bound (werkzeug reuses addresses: a port in TIME_WAIT is free to it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"port {port} on 127.0.0.1 is already in use; pass another --port, "
                    "or leave --port out for a free one"
                )
            return (
                f"cannot listen on port {port} on 127.0.0.1 ({exc.strerror or exc}); pass another "
                "--port, or leave --port out for a free one"
            )
    return None


@contextmanager
def endpoint(port: int, deletion_seconds: float) -> Iterator[tuple[str, DeletionLifecycle]]:
    """moto's server on 127.0.0.1:``port`` (0: a free one) with IoT's DeleteJob lifecycle and
    the tagging API's IoT jobs in the offline account and region; stopped on exit."""
    from moto.server import ThreadedMotoServer

    from .jobs import DeletionTime
    from .tagging import emulated_tagging
    from .wire import emulated_iot

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        with (
            emulated_iot(
                ACCOUNT, REGION, clock=time.time, deletion_time=DeletionTime(base_seconds=deletion_seconds)
            ) as lifecycle,
            emulated_tagging(lifecycle),
        ):
            host, bound = server.get_host_and_port()
            yield f"http://{host}:{bound}", lifecycle
    finally:
        server.stop()


def banner(url: str, deletion_seconds: float) -> list[str]:
    exports = {"AWS_ENDPOINT_URL": url, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, **CREDENTIALS}
    return [
        f"Offline IoT endpoint on {url} (account {ACCOUNT}, region {REGION}). In another terminal:",
        "  export " + " ".join(f"{name}={value}" for name, value in exports.items()),
        f"Deletions take {deletion_seconds:g} s each; at most 10 jobs DELETION_IN_PROGRESS at once.",
    ]


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Serve until Ctrl-C or SIGTERM: 0 then; 2 for a port that cannot be used, bad options or
    no moto."""
    out, err = out or sys.stdout, err or sys.stderr
    previous = {each: signal.signal(each, _stop) for each in (signal.SIGTERM, signal.SIGINT)}
    try:
        args = parser().parse_args(argv)
        try:
            import moto.server  # noqa: F401
        except ImportError as exc:
            err.write(
                f"{PROG}: the endpoint needs moto's server ({exc.name or exc} is not installed): "
                "pip install 'iot-job-cleanup[emulator]'\n"
            )
            return 2
        if args.port is not None and (problem := port_problem(args.port)):
            err.write(f"{PROG}: {problem}\n")
            return 2
        with endpoint(args.port or 0, args.deletion_seconds) as (url, lifecycle):
            lines = banner(url, args.deletion_seconds)
            if args.demo:
                lines.append(seed_demo(lifecycle, args.devices_seconds).summary())
            lines.append("Serving until Ctrl-C.")
            out.write("\n".join(lines) + "\n")
            out.flush()
            while True:
                time.sleep(3600)
    except Interrupted as stopped:  # the server is stopped by now
        out.write(f"Stopped ({stopped}).\n")
        out.flush()
        return 0
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)
