"""What a run says at its end: its outcome, and every job it left undone with what to do.

Each function reads the engine's ``CleanupProgress`` snapshot of the run (``state``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TextIO

from .errors import EXIT_LEFT, agreeing, counted, ids

if TYPE_CHECKING:
    from .progress import Progress

__all__ = ["failed", "going_on", "left_undone", "report_interruption", "report_left"]


def going_on(deleting: tuple[str, ...] | list[str]) -> str:
    """``1 deletion under way goes on in IoT by itself`` / ``2 deletions ... go on ... themselves``."""
    count = len(deleting)
    return (
        f"{counted(count, 'deletion')} under way {agreeing(count, 'goes', 'go')} on in IoT by "
        f"{agreeing(count, 'itself', 'themselves')}: {ids(deleting)}"
    )


def left_undone(state: Any) -> list[str]:
    """Every selected job this run knows is not gone (held-back ones apart)."""
    return sorted({*state.deleting_ids, *state.cancelled_not_deleted, *state.not_started})


def failed(reason: str, state: Any, progress: Progress, title: str, out: TextIO) -> int:
    """A run that stopped on ``reason``: what goes on in IoT by itself, what is left."""
    progress.finish(state)
    out.write(f"{title}: {reason}\n")
    if state.deleting_ids:
        out.write(f"{going_on(state.deleting_ids)}.\n")
    report_left(state, out, again="Once the cause above is dealt with, run the same command again")
    return EXIT_LEFT


def report_left(state: Any, out: TextIO, again: str = "Run the same command again") -> None:
    """Name every job this run left undone: cancelled and not deleted, not started, held back."""
    cancelled = state.cancelled_not_deleted
    not_started = [job_id for job_id in state.not_started if job_id not in cancelled]
    if cancelled:
        count = len(cancelled)
        out.write(
            f"{counted(count, 'job')} this run cancelled {agreeing(count, 'is', 'are')} not deleted: "
            f"{ids(cancelled)}. {again} to delete {agreeing(count, 'it', 'them')}.\n"
        )
    if not_started:
        count = len(not_started)
        out.write(
            f"{counted(count, 'selected job')} not deleted, {agreeing(count, 'its', 'their')} deletion not "
            f"started: {ids(not_started)}. {again} to delete {agreeing(count, 'it', 'them')}.\n"
        )
    if state.held_back:
        count = len(state.held_back)
        them = agreeing(count, "it", "them")
        out.write(
            f"{counted(count, 'job')} matched after you confirmed and {agreeing(count, 'was', 'were')} left "
            f"alone: {ids(state.held_back)}; run the command again to delete {them}.\n"
        )


def report_interruption(name: str, state: Any, filtered: bool, out: TextIO) -> None:
    """What goes on without us, and what is left undone. "No further action needed" only
    when nothing is: no job cancelled and not deleted, none not started, none held back, and
    no filter (``filtered``) whose look for jobs (a whole walk that finds none left) is still
    to make."""
    under_way = state.deleting_ids
    undone = bool(state.cancelled_not_deleted or state.not_started or state.held_back)
    if under_way:
        out.write(f"{name}: no more deletions start. {going_on(under_way)}")
    else:
        out.write(f"{name}: no more deletions start; none is under way")
    out.write("; no further action needed.\n" if not (undone or filtered) else ".\n")
    report_left(state, out)
    if filtered and not state.discovery_finished:
        out.write(
            "The filters' listing had not finished: more jobs may match. Run the same command again "
            "to delete them.\n"
        )
    elif filtered and not undone:
        out.write(
            "The last look for jobs the filters select (it finds jobs created meanwhile) was not made: "
            "run the same command again once these deletions finish to make sure none is left.\n"
        )
