"""iot-job-cleanup: delete AWS IoT jobs from the command line, on the engine the Lambda handler runs.

    iot-job-cleanup delete [--job-id ID ...] [--tag KEY=VALUE ...] [--thing-group NAME ...]
                           [--prefix P] [--namespace-id NS] [--force] [--drain DURATION]
                           [--dry-run] [--yes] [--region R] [--profile P] [--endpoint-url URL]
    iot-job-cleanup resume --stack NAME [--yes] [--dry-run] [--region R] [--profile P]
    iot-job-cleanup watch --stack NAME [--interval SECONDS] [--region R] [--profile P]

The selection is the one IotJobCleanup takes: the jobs named with --job-id, plus the jobs
that match every filter given (--tag AND --thing-group AND --prefix). The same engine as the
Lambda handler deletes them (slot scheduling, backoff, discovery, force and drain), with no
time cap. Exit codes: 0 every selected job is gone (or none matched, or a dry run), 1 jobs
are left (the reason is printed: a job that needs --force refused before any deletion, a
refusal by IoT, jobs left alone that matched after the prompt; or a set-up error once a
deletion or cancel had started: "Jobs may be left"), 2 usage or set-up, with nothing changed
(a bad flag value after the command's usage line; no credentials, no region, an unknown
profile, a stack that does not exist, an endpoint that cannot be reached or does not answer
as AWS does; or a question nobody could answer), 130 interrupted by Ctrl-C, 143 stopped by
SIGTERM (handled as Ctrl-C). Whether a run started a deletion or a cancel is known from its
calls (``clients.Wire``), not from an error's words.
``watch`` changes nothing: it shows each cleanup's stage and progress while the stack is
deleted, and exits 0 when every cleanup finished, 1 when one failed (or AWS kept refusing its
calls), 2 when the stack cannot be watched (it does not exist, or is not being deleted), 130 on
Ctrl-C.

One concern a module, imports in one direction (each only from those above it):

- ``errors``: exit codes, ``UsageError``, interruptions, how failures are worded (an endpoint's
  trouble told from AWS's own answer), and counts with their nouns (``counted``);
- ``arguments``: the parser, ``--drain`` durations, ``--tag`` pairs, and ``delete``'s values
  checked by the engine's naming rules (its ``rules.py`` alone: no boto3, no engine package);
- ``clients``: the boto3 clients (made only when a command runs), seen on the wire (``Wire``:
  the calls sent, answered and failed, and where), and paging;
- ``candidates``: what a selection would delete (the engine's preview) and its listing;
- ``progress``: while the jobs are found, the spinner and log lines from the wire (``Finding``);
  while they are deleted, the bar and log lines from the engine's ``JobCleanup.progress()``;
- ``report``: what a run says at its end: the outcome, every job left and what to do;
- ``run``: one run: confirm, delete, Ctrl-C and SIGTERM;
- ``resume``: a stack's cleanups, their properties from ``cfn``'s evaluator over the live
  source, or from the Delete input of the Provider's waiter;
- ``watch``: a stack's cleanups followed, read-only: their stages from CloudFormation, their
  jobs from the engine's preview, then from ListJobs at each refresh;
- ``command``: ``main``, from the arguments to the exit code.

It uses the engine through ``iot_job_cleanup.engine`` (``load_engine``, typed ``Engine``) and
never imports aws-cdk-lib, so it starts without Node.
"""

from __future__ import annotations

from .arguments import build_parser, parse_duration, parse_tag
from .candidates import Candidate, preview, print_preview
from .clients import Clients, make_clients
from .command import main
from .errors import UsageError
from .progress import Progress
from .resume import stack_cleanups
from .run import Console, Run, run_cleanup

__all__ = [
    "Candidate",
    "Clients",
    "Console",
    "Progress",
    "Run",
    "UsageError",
    "build_parser",
    "main",
    "make_clients",
    "parse_duration",
    "parse_tag",
    "preview",
    "print_preview",
    "run_cleanup",
    "stack_cleanups",
]
