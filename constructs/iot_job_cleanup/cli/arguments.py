"""The command's arguments: the parser (flags, help, epilog), durations, tags, and the checks of
``delete``'s values.

Nothing here loads boto3 or the engine package: ``--help`` and usage errors need neither. The
values are checked with the engine's own naming rules (``iot_job_cleanup.engine.naming_rules``:
its ``rules.py`` alone, standard library only), and said in the command's words: the flag, the
value, the rule, as argparse says its own errors, after the command's usage line.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..engine import naming_rules
from .errors import UsageError, counted

__all__ = [
    "DURATION",
    "DURATION_FORMS",
    "PROGRAM",
    "CommandLine",
    "DeleteValues",
    "build_parser",
    "delete_values",
    "negative_values_joined",
    "parse_duration",
    "parse_interval",
    "parse_tag",
    "program_name",
    "rule_words",
]

PROGRAM = "iot-job-cleanup"  # the console script
DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")
DURATION_FORMS = "90 (seconds), 90s, 10m, 1h or 1h30m"
# Flags whose value may be written with a leading '-' (a mistake the check names): argparse
# takes "-5m" for an option and answers "expected one argument" unless it is joined ("--drain=-5m").
VALUED_FLAGS = ("--drain", "--interval")
LOOKS_NEGATIVE = re.compile(r"-[\d.]")


def program_name() -> str:
    """The program as it was run, for the usage lines: ``python -m iot_job_cleanup`` (or
    ``... iot_job_cleanup.cli``) when run as a module, else the console script's name.

    Python 3.11's argparse names a module run after its file (``__main__.py``); Python 3.14
    says ``python -m <module>``, as here (the interpreter's name as it was started).
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    module = getattr(spec, "name", "") or ""
    if module in ("iot_job_cleanup.__main__", "iot_job_cleanup.cli.__main__"):
        python = os.path.basename(sys.executable) or "python"
        return f"{python} -m {module.removesuffix('.__main__')}"
    return PROGRAM


def parse_duration(text: str) -> float:
    """Seconds in ``text``: 90, 90s, 10m, 1h, 1h30m."""
    written = text.strip()
    if written.startswith("-"):
        raise UsageError(
            f"--drain {text!r}: a drain time cannot be negative; write a duration such as {DURATION_FORMS}."
        )
    match = DURATION.fullmatch(written)
    if not written or not match or not any(match.groups()):
        raise UsageError(f"--drain {text!r}: write a duration such as {DURATION_FORMS}.")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_tag(text: str) -> tuple[str, str]:
    """``--tag KEY=VALUE`` as (key, value); the value may be empty, the key may not."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise UsageError(f"--tag {text!r}: write KEY=VALUE, e.g. --tag fleet=demo-ota.")
    return key, value


def negative_values_joined(argv: Sequence[str]) -> list[str]:
    """``--drain -5m`` as ``--drain=-5m``: the value reaches its check, which names it."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            joined.extend(argv[index:])
            break
        following = argv[index + 1] if index + 1 < len(argv) else None
        if arg in VALUED_FLAGS and following is not None and LOOKS_NEGATIVE.match(following):
            joined.append(f"{arg}={following}")
            index += 2
            continue
        joined.append(arg)
        index += 1
    return joined


RULE = re.compile(r"\[(?P<members>[^\]]+)\](?:\{(?P<low>\d+),(?P<high>\d+)\}|(?P<some>\+))")


def rule_words(pattern: re.Pattern[str]) -> str:
    """An engine naming rule (a character class and its length) in words: ``[a-zA-Z0-9_-]{1,64}``
    is "1 to 64 characters of [a-zA-Z0-9_-]", ``[\\w .:/=+\\-@]{0,256}`` "0 to 256 letters,
    digits, spaces or _.:/=+-@", ``[a-zA-Z0-9_-]+`` "one or more characters of [a-zA-Z0-9_-]"."""
    match = RULE.fullmatch(pattern.pattern)
    if match is None:
        return f"it must match {pattern.pattern}"
    members = match["members"]
    length = "one or more" if match["some"] else f"{match['low']} to {match['high']}"
    if "\\w" not in members:
        return f"{length} characters of [{members}]"
    rest = members.replace("\\w", "")
    kinds = ["letters", "digits"] + (["spaces"] if " " in rest else [])
    marks = "_" + re.sub(r"\\(.)", r"\1", rest.replace(" ", ""))
    return f"{length} {', '.join(kinds)} or {marks}"


def shown(text: str) -> str:
    """A value as a message quotes it, a long one cut short."""
    return repr(text) if len(text) <= 70 else f"{text[:60]!r}... ({counted(len(text), 'character')})"


def checked(flag: str, text: str, pattern: re.Pattern[str], noun: str) -> str:
    if not pattern.fullmatch(text):
        raise UsageError(f"{flag} {shown(text)}: {noun} is {rule_words(pattern)}.")
    return text


@dataclass(frozen=True)
class DeleteValues:
    """``delete``'s selection and drain, checked: what the engine's request is made of."""

    job_ids: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]  # sorted (key, value) pairs
    thing_groups: tuple[str, ...]
    prefix: str | None
    namespace_id: str | None
    drain: float | None  # seconds
    force: bool = False


def delete_values(args: argparse.Namespace) -> DeleteValues:
    """``delete``'s flags checked by the engine's naming rules, before anything is asked of AWS:
    ``UsageError`` names the flag, the value and the rule."""
    rules = naming_rules()
    if not (args.job_id or args.tag or args.thing_group or args.prefix is not None):
        raise UsageError("select jobs with --job-id, --tag, --thing-group or --prefix (any mix).")
    job_ids = tuple(
        dict.fromkeys(checked("--job-id", text, rules.JOB_ID_PATTERN, "a job id") for text in args.job_id)
    )
    groups = tuple(
        dict.fromkeys(
            checked("--thing-group", text, rules.THING_GROUP_NAME_PATTERN, "a thing group name")
            for text in args.thing_group
        )
    )
    tags: dict[str, tuple[str, str]] = {}  # key -> (value, as written)
    for text in args.tag:
        key, value = parse_tag(text)
        if not rules.TAG_KEY_PATTERN.fullmatch(key):
            raise UsageError(f"--tag {shown(text)}: a tag key is {rule_words(rules.TAG_KEY_PATTERN)}.")
        if key.lower().startswith("aws:"):
            raise UsageError(
                f"--tag {shown(text)}: keys starting with 'aws:' are AWS's own; use another key."
            )
        if not rules.TAG_VALUE_PATTERN.fullmatch(value):
            raise UsageError(f"--tag {shown(text)}: a tag value is {rule_words(rules.TAG_VALUE_PATTERN)}.")
        if key in tags and tags[key][0] != value:
            raise UsageError(
                f"--tag {shown(text)}: the key {key!r} is already given as {tags[key][1]!r}, and a job "
                "carries one value per key; give each key once."
            )
        tags[key] = (value, text)
    if len(tags) > rules.MAX_TAGS:
        raise UsageError(
            f"--tag is given {counted(len(tags), 'key')}: a job carries at most {rules.MAX_TAGS} tags."
        )
    prefix = (
        None if args.prefix is None else checked("--prefix", args.prefix, rules.JOB_ID_PATTERN, "a prefix")
    )
    namespace = (
        None
        if args.namespace_id is None
        else checked("--namespace-id", args.namespace_id, rules.NAMESPACE_ID_PATTERN, "a namespace id")
    )
    drain = parse_duration(args.drain) if args.drain is not None else None
    return DeleteValues(
        job_ids=job_ids,
        tags=tuple(sorted((key, value) for key, (value, _) in tags.items())),
        thing_groups=groups,
        prefix=prefix,
        namespace_id=namespace,
        drain=drain,
        force=bool(args.force),
    )


class CommandLine(argparse.ArgumentParser):
    """The top-level parser, with its commands' parsers by name (``commands``): a usage error
    found after parsing is said with the usage line of the command it is about."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def command(self, name: str | None) -> argparse.ArgumentParser:
        return self.commands.get(name or "", self)


def build_parser(prog: str | None = None) -> CommandLine:
    """``iot-job-cleanup delete ...``, ``resume --stack NAME`` and ``watch --stack NAME``; ``prog``
    is the program's name in the usage lines (by default, as it was run: ``program_name``)."""
    parser = CommandLine(
        prog=prog or program_name(),
        description="Delete AWS IoT jobs through IoT's 10 deletion slots, waiting until each is gone.",
        epilog="Exit codes: 0 all selected jobs gone (or none matched, or a dry run), 1 jobs left, 2 usage "
        "or set-up (credentials, region, profile, stack, endpoint) with nothing changed, 130 interrupted "
        "(Ctrl-C), 143 stopped by SIGTERM.",
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
        "--drain",
        metavar="DURATION",
        help="cancel running jobs and give their devices this long: 90 (seconds), 90s, 10m, 1h or 1h30m",
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
    parser.commands.update(delete=delete, resume=resume, watch=watch)
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
