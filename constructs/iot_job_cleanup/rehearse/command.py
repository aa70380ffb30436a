"""Rehearse `cdk deploy`, `cdk deploy` of an update and `cdk destroy` of a CDK app's IotJobCleanup
resources, offline, by CloudFormation's rules.

    python -m iot_job_cleanup.rehearse [--cdk-out cdk.out] [--update-from old.out] ...
    iot-job-cleanup-rehearse [--cdk-out cdk.out] [--update-from old.out] ...

Reads a synthesized cloud assembly, starts an AWS-protocol endpoint on loopback (moto's server:
IoT with the DeleteJob lifecycle, see ``emulator``, and CloudFormation's stack records, which the
handler asks for its stack's status), then plays CloudFormation:

- **deploy**: creates the stacks' thing groups, things and the jobs their cleanup resources
  name, and sends each cleanup resource its Create (stack ``CREATE_IN_PROGRESS``);
- **runtime**: plays the creator of jobs at runtime for every cleanup with filters
  (``JobTags``, ``ThingGroupNames``, ``JobIdPrefix``): jobs with generated ids that match
  every filter, some of them SCHEDULED, and bystanders that miss exactly one filter;
- **update** (``--update-from OLD``: OLD is deployed first): refuses a changed ``ServiceToken``
  as CloudFormation does; sends Create to new cleanup resources and Update to changed ones
  (``UPDATE_IN_PROGRESS``), then Delete to the ones the new template no longer has
  (``UPDATE_COMPLETE_CLEANUP_IN_PROGRESS``), and checks that no job was touched;
- **destroy**: sends every cleanup resource whose ``DeletionPolicy`` is not ``Retain`` its
  Delete in CloudFormation's order (``DELETE_IN_PROGRESS``): a resource once every resource that
  depends on it (``DependsOn``, ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``) is gone, the independent
  ones in parallel; a nested stack as one resource of its parent; a stack once the stacks that
  depend on it (the manifest's ``dependencies``) are gone (cdk destroy deletes unrelated stacks
  one at a time; here they go at once, the harder case for the deletion slots). The stages of a
  cleanup longer than an hour follow from it: stage k depends on stage k + 1, so they run one
  after another, and a stage that runs out of time with jobs left hands them over to the next.

Stacks come from the cloud assembly, its nested cloud assemblies (a ``Stage``'s ``assembly-*``
folders) and nested stacks; each region has its own emulated IoT, with its own 10 deletion
slots. ``--scenario long`` makes the deletions of the jobs of every cleanup of stages slow
enough that it needs more than its first hour (``long``; the other cleanups' deletions take
the usual time, and keep half the slots), and time run faster, so its stages hand over in a
few seconds.

Each request runs the handler code from the asset folder in the cloud assembly (what would
really be uploaded) the way the Provider framework does: ``on_event`` once, then
``is_complete`` every query interval until it is complete, raises, or the waiter's attempts
run out. Time runs faster by a factor, shown on screen. Exits 1 if a job is left that should
be gone, a job was touched that should not be, or a handler failed; 2 if the assembly cannot
be rehearsed (the message says why and what to pass).

Which jobs should go is decided here, not by the handler: the jobs a cleanup names, plus the
jobs whose tags, targets, id and namespace (read from the endpoint) match every filter of a
cleanup. Every other job must be left exactly as it was, neither deleted nor cancelled.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from ..cfn import RESOURCE_TYPE, UnresolvableError
from .assembly import StackPlan, read_assembly
from .base import RehearsalError, ScaledClock, engine_log_kept_off_the_terminal, require_emulator
from .deploy import deploy_phase, provision
from .destroy import Contention, destroy
from .endpoint import Endpoint, iot_endpoint
from .fleet import RuntimeActor
from .handlers import Outcome
from .long import LongDeletions
from .report import Report, print_summary
from .stacks import Hooks, Stacks
from .update import checked_update

__all__ = ["PROG", "SCENARIOS", "SCRIPT", "main", "program_name", "rehearse"]

PROG = "python -m iot_job_cleanup.rehearse"  # run as a module
SCRIPT = "iot-job-cleanup-rehearse"  # the console script
MODULE_MAIN = "iot_job_cleanup.rehearse.__main__"
SCENARIOS = ("calm", "contended", "long")
# Each scenario's time factor, and the deletion time, unless given (long: the jobs of the
# cleanups of stages take longer, see ``long``).
TIME_FACTORS = {"calm": 30.0, "contended": 30.0, "long": 400.0}
DELETION_SECONDS = 60.0


def program_name() -> str:
    """The program as it was run, for the usage line: ``python -m iot_job_cleanup.rehearse``
    when run as a module (``__main__`` is this package's), else the console script,
    ``iot-job-cleanup-rehearse``. Not argparse's guess from ``sys.argv[0]``: Python 3.11's
    names a module after its file (``__main__.py``), and a caller's ``-c`` or test runner is
    no program of ours."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return PROG if getattr(spec, "name", None) == MODULE_MAIN else SCRIPT


def _plans(
    cdk_out: Path, update_from: Path | None, stacks: list[str] | None, given: Mapping[str, str]
) -> tuple[list[StackPlan], list[StackPlan], list[str]]:
    """The stacks to rehearse, the older ones deployed first (an update), and the older stacks
    an update leaves alone (not in the new assembly)."""
    plans = read_assembly(cdk_out, stacks, parameters=given, keep_empty=update_from is not None)
    if update_from is None:
        return plans, [], []
    names = {plan.name for plan in plans}
    old_plans = read_assembly(update_from, stacks, parameters=given, keep_empty=True)
    left_alone = [plan.name for plan in old_plans if plan.name not in names and plan.cleanups]
    old_plans = [plan for plan in old_plans if plan.name in names]
    plans = [plan for plan in plans if plan.cleanups or plan.name in {p.name for p in old_plans}]
    if not any(plan.cleanups for plan in plans + old_plans):
        raise RehearsalError(
            f"No stack in {update_from} or {cdk_out} has an IotJobCleanup ({RESOURCE_TYPE}) resource."
        )
    return plans, old_plans, left_alone


def rehearse(
    cdk_out: Path,
    *,
    stacks: list[str] | None = None,
    update_from: Path | None = None,
    parameters: Mapping[str, str] | None = None,
    scenario: str = "calm",
    time_factor: float | None = None,
    deletion_seconds: float | None = None,
    seconds_per_target: float = 0.0,
    other_stacks_slots: int | None = None,
    out: TextIO | None = None,
    live: bool | None = None,
    refresh_seconds: float = 0.25,
    hooks: Hooks | None = None,
) -> Report:
    """Deploy (OLD first with ``update_from``), update, destroy; the report of what became of
    every job. ``time_factor`` and ``deletion_seconds``: the scenario's unless given.
    ``hooks``: where a test steps in (see ``Hooks``)."""
    require_emulator()
    from ..emulator import DeletionTime

    if scenario not in SCENARIOS:
        raise RehearsalError(f"--scenario {scenario}: there is no such scenario ({', '.join(SCENARIOS)}).")
    plans, old_plans, left_alone = _plans(cdk_out, update_from, stacks, dict(parameters or {}))
    slow: LongDeletions | None = None  # the long scenario's: its cleanups of stages take long
    if scenario == "long":
        slow = LongDeletions(plans, DELETION_SECONDS, seconds_per_target)  # refuses none with stages
        if deletion_seconds is not None:
            slow = None  # every deletion takes the time given
    deletion_seconds = DELETION_SECONDS if deletion_seconds is None else deletion_seconds
    time_factor = time_factor if time_factor is not None else TIME_FACTORS[scenario]
    out = out or sys.stdout
    live = out.isatty() if live is None else live
    contended = scenario == "contended"
    held = other_stacks_slots if other_stacks_slots is not None else (10 if contended else 0)
    contention = Contention(held, deletion_seconds, racing=contended)
    list_lag = 5.0 if contended else 0.0
    phases = "deploy, update and destroy" if update_from is not None else "deploy and destroy"
    out.write(
        f"Rehearsing {phases} of {', '.join(p.name for p in plans)} against an IoT endpoint on "
        f"loopback.\nTime runs x{time_factor:g}: 1 s on screen is {time_factor:g} s simulated. A deletion "
        f"takes {deletion_seconds:g} s + {seconds_per_target:g} s per target. Scenario: {scenario}"
        f"{f', other stacks hold {held} of the 10 slots' if held else ''}"
        f"{f', ListJobs lags {list_lag:g} s behind' if list_lag else ''}.\n"
    )
    if left_alone:
        out.write(
            f"update: {', '.join(left_alone)} not in {cdk_out}: cdk deploy leaves it alone; not rehearsed\n"
        )
    regions = list(dict.fromkeys(plan.region for plan in old_plans + plans))
    if len(regions) > 1:
        out.write(f"Regions: {', '.join(regions)}, each with its own IoT and its own 10 deletion slots.\n")
    if scenario == "long":
        slowed = (
            f"the jobs of each cleanup of stages take long enough to delete that it needs more than "
            f"its first hour: {slow.describe()}; every other deletion takes {deletion_seconds:g} s"
            if slow is not None
            else f"every deletion takes the {deletion_seconds:g} s given"
        )
        out.write(
            f"The long scenario: {slowed}. A stage that runs out of time hands its jobs over to the next.\n"
        )
    clock = ScaledClock(time_factor)
    deletion = slow or DeletionTime(deletion_seconds, seconds_per_target)
    with engine_log_kept_off_the_terminal(), iot_endpoint(clock, deletion, list_lag, regions) as endpoint:
        record = Stacks(endpoint, clock, out, hooks, plans=old_plans + plans)
        actor = RuntimeActor(endpoint, record.say)
        report = _phases(record, actor, plans, old_plans, cdk_out, update_from)
        if not report.stopped:
            destroyed = destroy(
                record,
                actor,
                plans,
                old_plans,
                contention,
                live=live,
                refresh_seconds=refresh_seconds,
                slow=slow,
            )
            report = _with_update(destroyed, report)
    print_summary(report, out)
    return report


def _phases(
    record: Stacks,
    actor: RuntimeActor,
    plans: list[StackPlan],
    old_plans: list[StackPlan],
    cdk_out: Path,
    update_from: Path | None,
) -> Report:
    """Deploy, the runtime actor, the update: a report of the update (``stopped``: why the
    rehearsal stops before the destroy)."""
    endpoint = record.endpoint
    first = old_plans if update_from is not None else plans
    provision(first, endpoint)
    deployed, stopped = deploy_phase(record, first, update_from or cdk_out)
    if not stopped:
        actor.play(first)  # while the stack lives, jobs are created at runtime
    update_outcomes: list[Outcome] = []
    touched: list[str] = []
    delete_calls = 0
    if not stopped and update_from is not None:
        update_outcomes, stopped, touched, delete_calls = checked_update(record, old_plans, plans, cdk_out)
        if not stopped:
            actor.play(plans)  # for cleanups the update added or whose filters it changed
    if stopped:
        return _stopped(endpoint, [o for o in deployed + update_outcomes if o.state != "complete"], stopped)
    return Report(
        outcomes=[],
        jobs_left=[],
        bystanders_touched=[],
        iot_calls={},
        limit_exceeded=0,
        simulated_seconds=0.0,
        update_outcomes=update_outcomes,
        update_touched=touched,
        update_delete_calls=delete_calls,
    )


def _stopped(endpoint: Endpoint, outcomes: list[Outcome], stopped: str) -> Report:
    return Report(
        outcomes=[],
        jobs_left=[],
        bystanders_touched=[],
        iot_calls=endpoint.calls(),
        limit_exceeded=endpoint.refusals("LimitExceededException"),
        simulated_seconds=0.0,
        update_outcomes=outcomes,
        stopped=stopped,
    )


def _with_update(destroyed: Report, update: Report) -> Report:
    destroyed.update_outcomes = update.update_outcomes
    destroyed.update_touched = update.update_touched
    destroyed.update_delete_calls = update.update_delete_calls
    return destroyed


def _parameter(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command's arguments; ``prog``: the program name its usage shows (default: the one
    that was run, ``program_name``)."""
    parser = argparse.ArgumentParser(prog=prog or program_name(), description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cdk-out", type=Path, default=Path("cdk.out"), help="the synthesized cloud assembly"
    )
    parser.add_argument(
        "--update-from",
        type=Path,
        metavar="OLD_CDK_OUT",
        help="deploy this older cloud assembly first, then update it to --cdk-out, then destroy",
    )
    parser.add_argument(
        "--parameter",
        type=_parameter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter's value (comma-separated for a list), or an Fn::ImportValue's "
        "(repeatable); needed for SSM parameters and parameters without a Default",
    )
    parser.add_argument("--stack", action="append", dest="stacks", help="only these stacks (repeatable)")
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="calm",
        help="contended: other stacks' cleanups hold every slot and race ours for each freed one; "
        "long: the jobs of the cleanups of stages so slow to delete that each takes more than an "
        "hour, handing over between its stages (time x400)",
    )
    parser.add_argument(
        "--time-factor", type=float, help="simulated seconds per wall second (30; the long scenario: 400)"
    )
    parser.add_argument(
        "--deletion-seconds",
        type=float,
        help="how long one deletion takes (60; given with the long scenario, every deletion "
        "takes it, the jobs of the cleanups of stages too)",
    )
    parser.add_argument(
        "--seconds-per-target", type=float, default=0.0, help="extra deletion time per target"
    )
    parser.add_argument("--other-stacks-slots", type=int, help="slots other stacks hold at the start (0-10)")
    parser.add_argument("--no-live", action="store_true", help="print progress lines instead of a live view")
    return parser


def main(
    argv: list[str] | None = None, *, run: Callable[..., Report] = rehearse, prog: str | None = None
) -> int:
    arguments = parser(prog)
    args = arguments.parse_args(argv)
    if (args.time_factor is not None and args.time_factor <= 0) or not 0 <= (
        args.other_stacks_slots or 0
    ) <= 10:
        arguments.error("--time-factor must be positive and --other-stacks-slots between 0 and 10")
    try:
        report = run(
            args.cdk_out,
            stacks=args.stacks,
            update_from=args.update_from,
            parameters=dict(args.parameter),
            scenario=args.scenario,
            time_factor=args.time_factor,
            deletion_seconds=args.deletion_seconds,
            seconds_per_target=args.seconds_per_target,
            other_stacks_slots=args.other_stacks_slots,
            live=False if args.no_live else None,
        )
    except (RehearsalError, UnresolvableError) as exc:
        print(f"rehearse: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nrehearse: interrupted; the IoT endpoint is stopped.", file=sys.stderr)
        return 130
    return 0 if report.ok else 1
