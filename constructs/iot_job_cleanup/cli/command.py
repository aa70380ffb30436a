"""The command: ``main``, from its arguments to its exit code.

It parses the arguments, loads the engine (boto3 only now), makes the runs (``delete``: one
from the flags; ``resume``: one per cleanup of the stack), runs each and turns every failure
into one line and an exit code (see ``errors``). ``watch`` deletes nothing: it follows the
stack until its cleanups are over and gives its own exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from ..engine import Engine, load_engine
from .arguments import CommandLine, DeleteValues, build_parser, delete_values, negative_values_joined
from .clients import Clients, Wire, endpoint_problem, make_clients, observed
from .errors import (
    EXIT_DONE,
    EXIT_LEFT,
    EXIT_USAGE,
    Interrupted,
    UsageError,
    aws_error,
    configuration_errors,
    interruption,
    one_line,
    traceback_file,
)
from .resume import resume_runs
from .run import Console, Run, run_cleanup, sigterm_as_interruption
from .watch import watch_stack

__all__ = ["LOGGER", "ask_on_terminal", "delete_runs", "main"]

LOGGER = "iot_job_cleanup"  # the engine's logger
NOTHING_CHANGED = "nothing was changed"
JOBS_MAY_BE_LEFT = "Jobs may be left: run the same command again"


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    stdin: TextIO | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    clients: Clients | None = None,
) -> int:
    """``iot-job-cleanup``'s exit code; ``clients`` stand in for the ones it would make."""
    out = out or sys.stdout
    quiet = logging.getLogger(LOGGER)  # the engine's log lines are the Lambda's; here the output says it
    if not any(isinstance(handler, logging.NullHandler) for handler in quiet.handlers):
        quiet.addHandler(logging.NullHandler())
    parser = build_parser()
    args = parser.parse_args(negative_values_joined(sys.argv[1:] if argv is None else argv))
    try:
        values = delete_values(args) if args.command == "delete" else None
    except UsageError as exc:  # before anything is loaded: the flag, the value, the rule
        return usage_error(parser, args, exc)
    try:
        engine = load_engine()
    except ModuleNotFoundError as exc:  # the engine talks to AWS with boto3
        print(
            f"iot-job-cleanup: {exc.name} is not installed: pip install 'iot-job-cleanup[cli]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    console = Console(out, ask_on_terminal(stdin or sys.stdin, out), out.isatty(), clock, sleep)
    from botocore.exceptions import (  # the engine has loaded botocore
        BotoCoreError,
        ClientError,
        NoCredentialsError,
        NoRegionError,
        ProfileNotFound,
    )
    from botocore.parsers import ResponseParserError

    wire = Wire()  # every call of this run: whether it started a deletion or a cancel, and where
    codes: list[int] = []  # one per cleanup run to its end

    def what_became(done: str = NOTHING_CHANGED) -> tuple[str, int]:
        """What this run did to the jobs, from the wire (a DeleteJob or CancelJob AWS did not
        refuse), and the exit code that goes with an error of the set-up or the endpoint."""
        if wire.changed:
            return JOBS_MAY_BE_LEFT, EXIT_LEFT
        return done, EXIT_USAGE

    try:
        with sigterm_as_interruption():
            runs = delete_runs(engine, values) if values is not None else None
            clients = observed(clients or make_clients(engine, args), wire)
            if args.command == "watch":
                return watch_stack(engine, clients, args, console)
            if runs is None:
                runs = resume_runs(engine, clients, args, out)
                if isinstance(runs, int):
                    return runs
            for run in runs:
                codes.append(run_cleanup(engine, clients, run, console, dry_run=args.dry_run, yes=args.yes))
    except UsageError as exc:
        return usage_error(parser, args, exc)
    except Interrupted as exc:
        return exc.code
    except KeyboardInterrupt as exc:  # while looking or asking: this cleanup had started nothing
        name, code = interruption(exc)
        nothing = "nothing more was deleted after the cleanups above" if codes else "this run deleted nothing"
        print(f"\niot-job-cleanup: {name[0].lower() + name[1:]}; {nothing}.", file=sys.stderr)
        return code
    except configuration_errors() as exc:  # the local set-up, before any call reached AWS
        hint = (
            "Pass --region, or set AWS_REGION (or give the profile a region)"
            if isinstance(exc, NoRegionError)
            else "Pass --profile, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (aws configure)"
            if isinstance(exc, NoCredentialsError)
            else "Check --profile or AWS_PROFILE (aws configure list-profiles names them)"
            if isinstance(exc, ProfileNotFound)
            else "Check --profile, --region and the AWS configuration (aws configure list)"
        )
        became, code = what_became()
        print(f"iot-job-cleanup: {one_line(exc)} {hint}; {became}.", file=sys.stderr)
        return code
    except (
        ClientError,
        BotoCoreError,
        ResponseParserError,
        engine.CleanupError,
        engine.TransientError,
    ) as exc:
        problem = endpoint_problem(exc, wire, getattr(args, "endpoint_url", None))
        if problem is not None:  # the endpoint, not AWS's answer: the set-up, as above
            became, code = what_became()
            print(f"iot-job-cleanup: {problem}; {became}.", file=sys.stderr)
            return code
        if isinstance(
            exc, engine.CleanupError
        ):  # e.g. a refusal while looking: the engine says what to check
            print(f"iot-job-cleanup: {one_line(exc)}", file=sys.stderr)
            return EXIT_LEFT
        became = (
            JOBS_MAY_BE_LEFT if wire.changed else "Nothing was changed; once that is dealt with, run it again"
        )
        print(f"iot-job-cleanup: {aws_error(exc)} {became}.", file=sys.stderr)
        return EXIT_LEFT
    except Exception as exc:  # a bug: one line here, the traceback in a file to report
        became = "jobs may be left: --dry-run lists them" if wire.changed else NOTHING_CHANGED
        print(
            f"iot-job-cleanup: unexpected {type(exc).__name__}: {one_line(exc)} This is a bug in "
            f"iot-job-cleanup ({traceback_file()}); {became}.",
            file=sys.stderr,
        )
        return EXIT_LEFT
    return max(codes, default=EXIT_DONE)


def usage_error(parser: CommandLine, args: argparse.Namespace, exc: UsageError) -> int:
    """As argparse says its own errors: the command's usage line, then ``PROG COMMAND: error: ...``."""
    command = parser.command(getattr(args, "command", None))
    command.print_usage(sys.stderr)
    print(f"{command.prog}: error: {exc}", file=sys.stderr)
    return EXIT_USAGE


def delete_runs(engine: Engine, values: DeleteValues) -> list[Run]:
    """``delete``'s one run: the selection and options its flags give (checked: ``delete_values``)."""
    selection = engine.Selection(
        job_ids=values.job_ids,
        tags=values.tags,
        thing_groups=values.thing_groups,
        prefix=values.prefix,
        namespace_id=values.namespace_id,
    )
    try:
        selection.check()  # the flags were checked by the same rules: this is the engine's word on it
    except engine.InvalidPropertiesError as exc:
        raise UsageError(str(exc)) from exc
    drain = values.drain
    request = engine.CleanupRequest(selection=selection, force=values.force, drain=drain)
    comment = (
        "Cancelled by iot-job-cleanup (command line); deleted once its devices finish "
        f"(drain {drain or 0:.0f} s)."
    )
    return [Run(request, "iot-job-cleanup", comment)]


def ask_on_terminal(stdin: TextIO, out: TextIO) -> Callable[[str, str], bool | None]:
    """A question asked on the terminal: None when there is none to ask on."""

    def ask(question: str, listing: str = "") -> bool | None:
        """The answer, or None with no terminal to ask on; ``listing`` is shown first."""
        if not stdin.isatty():
            return None
        out.write(listing + question)
        out.flush()
        return stdin.readline().strip().lower() in ("y", "yes")

    return ask
