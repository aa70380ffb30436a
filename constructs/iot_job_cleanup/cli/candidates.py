"""What a selection would delete: the candidates and their listing (``--dry-run``, the prompt).

``preview`` asks the engine, which finds and judges jobs as it does before it acts (its guard:
every filter, the namespace, a refusal by I3), and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from ..engine import Engine
from .errors import counted

__all__ = ["LISTED_BEFORE_ASKING", "Candidate", "preview", "print_preview"]

LISTED_BEFORE_ASKING = 20  # jobs listed per selector above the prompt; --dry-run lists them all


@dataclass(frozen=True)
class Candidate:
    """A job the selection covers, as the preview found it."""

    job_id: str
    status: str
    selector: str  # "named" or the listing that found it
    running: bool  # IoT deletes it only with force
    devices_busy: int

    @classmethod
    def of(cls, engine: Engine, job: Mapping[str, Any], selector: str) -> Candidate:
        status = job["status"]
        return cls(
            job["jobId"], status, selector, status in engine.RUNNING_STATUSES, engine.devices_busy(job)
        )

    def needs_force(self, request: Any) -> bool:
        """Running, and the run may neither force its deletion nor cancel it to drain."""
        return self.running and not request.force and request.drain is None

    def note(self, request: Any) -> str:
        """What will happen to it beyond a deletion, if anything."""
        if request.drain is not None and (self.running or self.devices_busy):
            return "cancelled first, deleted once its devices finish" + (
                "" if request.force else " (fails if they do not within the drain time)"
            )
        if self.needs_force(request):
            return "needs --force (or --drain)"
        return ""


def preview(engine: Engine, iot: Any, request: Any, clock: Callable[[], float]) -> list[Candidate]:
    """Every job the selection covers now, found and judged as the engine does before it acts
    (its guard: every filter, the namespace, a refusal by I3): changes nothing."""
    cleanup = engine.JobCleanup(iot, request, clock=clock, marker="preview")
    return [Candidate.of(engine, look.job, listing) for look, listing in cleanup.candidates()]


def print_preview(candidates: list[Candidate], request: Any, out: TextIO, limit: int | None = None) -> None:
    """The candidates by selector; past ``limit`` a selector's jobs are counted, not listed."""
    by_selector: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        by_selector.setdefault(candidate.selector, []).append(candidate)
    filters = request.selection.describe()
    for selector, members in by_selector.items():
        title = "named with --job-id" if selector == "named" else f"found in {selector}, matching {filters}"
        out.write(f"{counted(len(members), 'job')} {title}:\n")
        listed = members if limit is None else members[:limit]
        for candidate in listed:
            note = candidate.note(request)
            out.write(f"  {candidate.job_id:<40} {candidate.status:<22} {note}\n".rstrip() + "\n")
        if len(members) > len(listed):
            out.write(f"  ... and {len(members) - len(listed)} more (--dry-run lists every one)\n")
