"""The display `status` of a session: one pure function of its facts (DESIGN.md §4).

Nothing here reads the clock or the database; callers pass the facts and `now`, so the same
facts always give the same status and the rules can be tested as a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal


class Activity(StrEnum):
    ACTIVE = "active"
    IDLE = "idle"
    WAITING_INPUT = "waiting_input"
    EXITED = "exited"


class TerminationReason(StrEnum):
    EXITED = "exited"
    KILLED = "killed"
    RUNTIME_LOST = "runtime_lost"
    MERGED = "merged"


class Status(StrEnum):
    MERGED = "merged"
    KILLED = "killed"
    EXITED = "exited"
    LOST = "lost"
    NEEDS_INPUT = "needs_input"
    CI_FAILED = "ci_failed"
    CHANGES_REQUESTED = "changes_requested"
    DRAFT = "draft"
    REVIEW_PENDING = "review_pending"
    PR_OPEN = "pr_open"
    APPROVED = "approved"
    MERGEABLE = "mergeable"
    STUCK = "stuck"
    WORKING = "working"
    IDLE = "idle"


PrState = Literal["open", "closed", "merged"]
ReviewDecision = Literal["approved", "changes_requested", "review_required"]
Mergeability = Literal["mergeable", "conflicting", "unknown"]
CiState = Literal["passing", "failing", "pending"]

TERMINATION_STATUS: dict[str, Status] = {
    TerminationReason.MERGED: Status.MERGED,
    TerminationReason.KILLED: Status.KILLED,
    TerminationReason.EXITED: Status.EXITED,
    TerminationReason.RUNTIME_LOST: Status.LOST,
}

# Worst first: among several open PRs the one needing the most attention speaks for the session.
PR_LADDER: tuple[Status, ...] = (
    Status.CI_FAILED,
    Status.CHANGES_REQUESTED,
    Status.DRAFT,
    Status.REVIEW_PENDING,
    Status.PR_OPEN,
    Status.APPROVED,
    Status.MERGEABLE,
)
_PR_RANK: dict[Status, int] = {status: rank for rank, status in enumerate(PR_LADDER)}


@dataclass(frozen=True)
class PrFacts:
    state: PrState
    draft: bool = False
    review_decision: ReviewDecision | None = None
    mergeability: Mergeability | None = None
    ci_state: CiState | None = None


def pr_facts(rows: Iterable[Mapping[str, Any]]) -> tuple[PrFacts, ...]:
    """`prs` rows (as `aod.storage.prs.status_rows` returns them) as the facts status reads."""
    return tuple(
        PrFacts(state=r["state"], draft=bool(r["draft"]), review_decision=r["review_decision"],
                mergeability=r["mergeability"], ci_state=r["ci_state"])
        for r in rows
    )


@dataclass(frozen=True)
class SessionFacts:
    activity: Activity | str
    termination_reason: TerminationReason | str | None = None
    last_event_at: float | None = None
    prs: tuple[PrFacts, ...] = ()


def pr_status(pr: PrFacts) -> Status | None:
    """The ladder rung of one PR, or None when the PR is closed or merged (it asks nothing of anyone).

    Rungs are checked in ladder order, so each PR lands on the worst rung it qualifies for:
    - ci_failed: CI failing, whatever else holds (a red build blocks even an approved PR).
    - changes_requested: a reviewer asked for changes (CI not failing).
    - draft: the author has not asked for review yet; a draft with changes requested already had
      a review round, so that rung wins above.
    - review_pending: review is required, or nobody has decided yet while GitHub reports other
      facts (CI or mergeability), i.e. the PR is known and waits for a reviewer.
    - pr_open: open with no decision, no CI and no known mergeability ("unknown" is GitHub still
      computing it, so it counts as no information): all we know is that the PR exists.
    - approved: approved but not ready to land yet: CI pending or mergeability not confirmed
      (conflicting, unknown or not reported).
    - mergeable: approved, CI passing or absent (repos without CI), and GitHub says mergeable.
    """
    if pr.state != "open":
        return None
    if pr.ci_state == "failing":
        return Status.CI_FAILED
    if pr.review_decision == "changes_requested":
        return Status.CHANGES_REQUESTED
    if pr.draft:
        return Status.DRAFT
    if pr.review_decision == "review_required":
        return Status.REVIEW_PENDING
    if pr.review_decision is None:
        if pr.ci_state is None and pr.mergeability in (None, "unknown"):
            return Status.PR_OPEN
        return Status.REVIEW_PENDING
    if pr.ci_state == "pending" or pr.mergeability != "mergeable":
        return Status.APPROVED
    return Status.MERGEABLE


def worst_pr_status(prs: tuple[PrFacts, ...]) -> Status | None:
    """The worst rung among the open PRs, or None if none is open."""
    rungs = [rung for rung in map(pr_status, prs) if rung is not None]
    return min(rungs, key=_PR_RANK.__getitem__, default=None)


def derive_status(facts: SessionFacts, *, now: float, stuck_after: float) -> Status:
    """The display status; the contract's precedence, first match wins."""
    if facts.termination_reason is not None:
        # TerminationReason(...) refuses an unknown reason instead of silently showing it as idle.
        return TERMINATION_STATUS[TerminationReason(facts.termination_reason)]
    activity = Activity(facts.activity)
    if activity is Activity.WAITING_INPUT:
        return Status.NEEDS_INPUT
    pr = worst_pr_status(facts.prs)
    if pr is not None:
        return pr
    if activity is Activity.ACTIVE:
        # Exactly stuck_after of silence is still working; a session with no event yet has no
        # silence to measure, so it is never stuck.
        if facts.last_event_at is not None and now - facts.last_event_at > stuck_after:
            return Status.STUCK
        return Status.WORKING
    # idle, and exited without a termination reason (the reaper has not concluded yet).
    return Status.IDLE
