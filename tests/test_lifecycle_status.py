"""The display status contract (DESIGN.md §4), as tables."""

from __future__ import annotations

import itertools

import pytest

from aod.lifecycle.status import (
    PR_LADDER,
    TERMINATION_STATUS,
    Activity,
    PrFacts,
    SessionFacts,
    Status,
    TerminationReason,
    derive_status,
    pr_status,
)

NOW = 1_000_000.0
STUCK_AFTER = 600.0

# One PR per rung, used to build sessions below.
CI_FAILED = PrFacts("open", ci_state="failing", review_decision="approved", mergeability="mergeable")
CHANGES = PrFacts("open", review_decision="changes_requested", ci_state="passing")
DRAFT = PrFacts("open", draft=True, ci_state="passing")
REVIEW = PrFacts("open", review_decision="review_required", ci_state="passing")
OPEN = PrFacts("open")
APPROVED = PrFacts("open", review_decision="approved", ci_state="pending", mergeability="mergeable")
MERGEABLE = PrFacts("open", review_decision="approved", ci_state="passing", mergeability="mergeable")
CLOSED_FAILING = PrFacts("closed", ci_state="failing", review_decision="changes_requested")
MERGED_PR = PrFacts("merged", ci_state="failing", draft=True)

# (id, pr, expected rung)
PR_CASES: list[tuple[str, PrFacts, Status | None]] = [
    ("closed", CLOSED_FAILING, None),
    ("merged", MERGED_PR, None),
    ("ci-failing-beats-approval", CI_FAILED, Status.CI_FAILED),
    ("ci-failing-beats-draft", PrFacts("open", draft=True, ci_state="failing"), Status.CI_FAILED),
    ("changes", CHANGES, Status.CHANGES_REQUESTED),
    (
        "changes-on-draft",
        PrFacts("open", draft=True, review_decision="changes_requested"),
        Status.CHANGES_REQUESTED,
    ),
    (
        "changes-ci-pending",
        PrFacts("open", review_decision="changes_requested", ci_state="pending"),
        Status.CHANGES_REQUESTED,
    ),
    ("draft", DRAFT, Status.DRAFT),
    ("draft-no-info", PrFacts("open", draft=True), Status.DRAFT),
    (
        "draft-approved",
        PrFacts("open", draft=True, review_decision="approved", mergeability="mergeable"),
        Status.DRAFT,
    ),
    ("review-required", REVIEW, Status.REVIEW_PENDING),
    ("review-required-alone", PrFacts("open", review_decision="review_required"), Status.REVIEW_PENDING),
    ("no-decision-with-ci", PrFacts("open", ci_state="pending"), Status.REVIEW_PENDING),
    ("no-decision-mergeable", PrFacts("open", mergeability="mergeable"), Status.REVIEW_PENDING),
    ("no-decision-conflicting", PrFacts("open", mergeability="conflicting"), Status.REVIEW_PENDING),
    ("no-info", OPEN, Status.PR_OPEN),
    ("no-info-mergeability-unknown", PrFacts("open", mergeability="unknown"), Status.PR_OPEN),
    ("approved-ci-pending", APPROVED, Status.APPROVED),
    (
        "approved-conflicting",
        PrFacts("open", review_decision="approved", ci_state="passing", mergeability="conflicting"),
        Status.APPROVED,
    ),
    (
        "approved-mergeability-unknown",
        PrFacts("open", review_decision="approved", ci_state="passing", mergeability="unknown"),
        Status.APPROVED,
    ),
    (
        "approved-mergeability-none",
        PrFacts("open", review_decision="approved", ci_state="passing"),
        Status.APPROVED,
    ),
    ("mergeable", MERGEABLE, Status.MERGEABLE),
    (
        "mergeable-no-ci",
        PrFacts("open", review_decision="approved", mergeability="mergeable"),
        Status.MERGEABLE,
    ),
]


@pytest.mark.parametrize(("pr", "expected"), [c[1:] for c in PR_CASES], ids=[c[0] for c in PR_CASES])
def test_pr_status(pr: PrFacts, expected: Status | None) -> None:
    assert pr_status(pr) == expected


def test_every_rung_reachable() -> None:
    assert {c[2] for c in PR_CASES} - {None} == set(PR_LADDER)


def s(
    activity: str = "idle", reason: str | None = None, last: float | None = NOW, prs: tuple[PrFacts, ...] = ()
) -> SessionFacts:
    return SessionFacts(activity=activity, termination_reason=reason, last_event_at=last, prs=prs)


LONG_AGO = NOW - 10 * STUCK_AFTER

# (id, facts, expected status)
CASES: list[tuple[str, SessionFacts, Status]] = [
    # Termination reasons, and that they beat everything below them.
    ("merged", s("exited", "merged"), Status.MERGED),
    ("killed", s("exited", "killed"), Status.KILLED),
    ("exited", s("exited", "exited"), Status.EXITED),
    ("lost", s("active", "runtime_lost"), Status.LOST),
    ("terminated-beats-needs-input", s("waiting_input", "killed"), Status.KILLED),
    ("terminated-beats-pr", s("idle", "exited", prs=(CI_FAILED,)), Status.EXITED),
    ("merged-beats-open-pr", s("idle", "merged", prs=(MERGEABLE,)), Status.MERGED),
    ("terminated-beats-stuck", s("active", "runtime_lost", last=LONG_AGO), Status.LOST),
    # needs_input beats PRs and stuck.
    ("needs-input", s("waiting_input"), Status.NEEDS_INPUT),
    ("needs-input-beats-pr", s("waiting_input", prs=(CI_FAILED,)), Status.NEEDS_INPUT),
    ("needs-input-long-silent", s("waiting_input", last=LONG_AGO), Status.NEEDS_INPUT),
    # Each PR rung shows through for an idle session.
    ("ci-failed", s(prs=(CI_FAILED,)), Status.CI_FAILED),
    ("changes-requested", s(prs=(CHANGES,)), Status.CHANGES_REQUESTED),
    ("draft", s(prs=(DRAFT,)), Status.DRAFT),
    ("review-pending", s(prs=(REVIEW,)), Status.REVIEW_PENDING),
    ("pr-open", s(prs=(OPEN,)), Status.PR_OPEN),
    ("approved", s(prs=(APPROVED,)), Status.APPROVED),
    ("mergeable", s(prs=(MERGEABLE,)), Status.MERGEABLE),
    # PR beats stuck and working.
    ("pr-beats-stuck", s("active", last=LONG_AGO, prs=(MERGEABLE,)), Status.MERGEABLE),
    ("pr-beats-working", s("active", prs=(DRAFT,)), Status.DRAFT),
    ("pr-on-exited-activity", s("exited", prs=(REVIEW,)), Status.REVIEW_PENDING),
    # Worst open PR wins, whatever the order.
    ("worst-of-two", s(prs=(MERGEABLE, CHANGES)), Status.CHANGES_REQUESTED),
    ("worst-of-two-reversed", s(prs=(CHANGES, MERGEABLE)), Status.CHANGES_REQUESTED),
    ("worst-of-all", s(prs=(MERGEABLE, APPROVED, OPEN, REVIEW, DRAFT, CHANGES, CI_FAILED)), Status.CI_FAILED),
    ("pr-open-beats-approved", s(prs=(APPROVED, OPEN)), Status.PR_OPEN),
    ("draft-beats-review", s(prs=(REVIEW, DRAFT)), Status.DRAFT),
    # Closed and merged PRs are not on the ladder.
    ("closed-pr-ignored", s(prs=(CLOSED_FAILING,)), Status.IDLE),
    ("merged-pr-ignored", s(prs=(MERGED_PR,)), Status.IDLE),
    ("closed-pr-ignored-active", s("active", prs=(CLOSED_FAILING, MERGED_PR)), Status.WORKING),
    ("closed-pr-not-worst", s(prs=(CLOSED_FAILING, MERGEABLE)), Status.MERGEABLE),
    # Stuck: strictly more than stuck_after of silence, and only when active.
    ("stuck", s("active", last=LONG_AGO), Status.STUCK),
    ("stuck-just-past", s("active", last=NOW - STUCK_AFTER - 0.001), Status.STUCK),
    ("not-stuck-at-boundary", s("active", last=NOW - STUCK_AFTER), Status.WORKING),
    ("not-stuck-just-before", s("active", last=NOW - STUCK_AFTER + 0.001), Status.WORKING),
    ("not-stuck-no-event", s("active", last=None), Status.WORKING),
    ("idle-never-stuck", s("idle", last=LONG_AGO), Status.IDLE),
    # working, idle.
    ("working", s("active"), Status.WORKING),
    ("event-in-future", s("active", last=NOW + 5), Status.WORKING),
    ("idle", s("idle"), Status.IDLE),
    ("idle-no-event", s("idle", last=None), Status.IDLE),
    ("exited-without-reason", s("exited"), Status.IDLE),
]


@pytest.mark.parametrize(("facts", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_derive_status(facts: SessionFacts, expected: Status) -> None:
    assert derive_status(facts, now=NOW, stuck_after=STUCK_AFTER) == expected


def test_every_status_has_a_case() -> None:
    assert {c[2] for c in CASES} == set(Status)


def test_enums_and_tables_cover_the_contract() -> None:
    assert {str(a) for a in Activity} == {"active", "idle", "waiting_input", "exited"}
    assert set(TERMINATION_STATUS) == set(TerminationReason)
    assert len(set(PR_LADDER)) == len(PR_LADDER)


def test_plain_strings_are_accepted() -> None:
    # Facts come from SQLite as plain str; the result compares and serialises as its string value.
    status = derive_status(SessionFacts("waiting_input", None, None), now=NOW, stuck_after=STUCK_AFTER)
    assert status == "needs_input"
    assert f"{status}" == "needs_input"


@pytest.mark.parametrize(
    "facts",
    [SessionFacts("idle", "vanished", None), SessionFacts("sleeping", None, None)],
    ids=["unknown-reason", "unknown-activity"],
)
def test_unknown_values_are_refused(facts: SessionFacts) -> None:
    with pytest.raises(ValueError):
        derive_status(facts, now=NOW, stuck_after=STUCK_AFTER)


try:
    from hypothesis import given
    from hypothesis import strategies as st
except ImportError:  # hypothesis is a test extra; the tables above still run without it.
    pass
else:
    pr_facts = st.builds(
        PrFacts,
        state=st.sampled_from(["open", "closed", "merged"]),
        draft=st.booleans(),
        review_decision=st.sampled_from([None, "approved", "changes_requested", "review_required"]),
        mergeability=st.sampled_from([None, "mergeable", "conflicting", "unknown"]),
        ci_state=st.sampled_from([None, "passing", "failing", "pending"]),
    )
    session_facts = st.builds(
        SessionFacts,
        activity=st.sampled_from(list(Activity)),
        termination_reason=st.none() | st.sampled_from(list(TerminationReason)),
        last_event_at=st.none() | st.floats(NOW - 3 * STUCK_AFTER, NOW, allow_nan=False),
        prs=st.lists(pr_facts, max_size=4).map(tuple),
    )

    @given(
        facts=session_facts,
        extra=pr_facts.filter(lambda pr: pr.state != "open"),
        where=st.integers(0, 4),
    )
    def test_non_open_pr_and_order_never_change_status(
        facts: SessionFacts, extra: PrFacts, where: int
    ) -> None:
        expected = derive_status(facts, now=NOW, stuck_after=STUCK_AFTER)
        prs = list(facts.prs)
        prs.insert(min(where, len(prs)), extra)
        with_closed = SessionFacts(facts.activity, facts.termination_reason, facts.last_event_at, tuple(prs))
        assert derive_status(with_closed, now=NOW, stuck_after=STUCK_AFTER) == expected
        for perm in itertools.permutations(facts.prs):
            shuffled = SessionFacts(facts.activity, facts.termination_reason, facts.last_event_at, perm)
            assert derive_status(shuffled, now=NOW, stuck_after=STUCK_AFTER) == expected
