"""The command's arguments: the parser (flags, help, epilog), durations and tags.

Nothing here loads boto3 or the engine: ``--help`` and usage errors need neither.
"""

from __future__ import annotations

import argparse
import re

from .. import __version__
from .errors import UsageError

__all__ = ["DURATION", "build_parser", "parse_duration", "parse_interval", "parse_tag"]

DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: 90, 90s, 10m, 1h, 1h30m."""
    match = DURATION.fullmatch(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise UsageError(f"--drain {text!r}: write a duration such as 600, 90s, 10m or 1h30m.")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_tag(text: str) -> tuple[str, str]:
    """``--tag KEY=VALUE`` as (key, value); the value may be empty, the key may not."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise UsageError(f"--tag {text!r}: write KEY=VALUE, e.g. --tag fleet=demo-ota.")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    """``iot-job-cleanup delete ...``, ``resume --stack NAME`` and ``watch --stack NAME``."""
    parser = argparse.ArgumentParser(
        prog="iot-job-cleanup",
        description="Delete AWS IoT jobs through IoT's 10 deletion slots, waiting until each is gone.",
        epilog="Exit codes: 0 all selected jobs gone (or none matched, or a dry run), 1 jobs left, 2 usage, "
        "130 interrupted (Ctrl-C), 143 stopped by SIGTERM.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    acting = argparse.ArgumentParser(add_help=False)  # the commands that delete
    acting.add_argument("--dry-run", action="store_true", help="list what would be deleted; change nothing")
    acting.add_argument("--yes", action="store_true", help="do not ask before deleting")
    aws = argparse.ArgumentParser(add_help=False)
    aws.add_argument(
        "--region", help="AWS region (default: AWS_REGION, then AWS_DEFAULT_REGION, then the profile's)"
    )
    aws.add_argument("--profile", help="AWS profile")
    aws.add_argument(
        "--endpoint-url", help="IoT/CloudFormation endpoint (default: AWS_ENDPOINT_URL or AWS's)"
    )
    common = [acting, aws]
    commands = parser.add_subparsers(dest="command", required=True)
    delete = commands.add_parser("delete", parents=common, help="delete the jobs a selection covers")
    delete.add_argument(
        "--job-id", action="append", default=[], metavar="ID", help="a job to delete (repeatable)"
    )
    delete.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="jobs carrying this tag (repeatable: all)",
    )
    delete.add_argument(
        "--thing-group", action="append", default=[], metavar="NAME", help="jobs targeting this group (any)"
    )
    delete.add_argument("--prefix", help="jobs whose id starts with this")
    delete.add_argument("--namespace-id", help="the jobs' customer-managed namespace")
    delete.add_argument("--force", action="store_true", help="also delete jobs that are still running")
    delete.add_argument(
        "--drain", metavar="DURATION", help="cancel running jobs and give their devices this long (e.g. 10m)"
    )
    resume = commands.add_parser(
        "resume", parents=common, help="finish a stack's cleanups (stack being deleted or DELETE_FAILED)"
    )
    resume.add_argument("--stack", required=True, help="the stack's name or id")
    watch = commands.add_parser(
        "watch",
        parents=[aws],
        help="follow a stack's deletion: each cleanup's stage and progress (read-only)",
        epilog="Exit codes: 0 every cleanup finished, 1 a cleanup (or the stack's deletion) failed, or "
        "AWS refused the watch's calls, 2 the stack cannot be watched, 130 interrupted (Ctrl-C), "
        "143 stopped by SIGTERM.",
    )
    watch.add_argument("--stack", required=True, help="the stack's name or id")
    watch.add_argument(
        "--interval",
        type=parse_interval,
        default=10.0,
        metavar="SECONDS",
        help="seconds between refreshes (default 10, at least 1)",
    )
    return parser


def parse_interval(text: str) -> float:
    """``--interval SECONDS``: a number of seconds, at least 1 (each refresh pages ListJobs)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds >= 1 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: write a number of seconds, at least 1, e.g. --interval 30"
        )
    return seconds
