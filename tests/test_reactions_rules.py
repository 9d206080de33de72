"""The reaction rules and conditions as pure functions: no database, no clock, no tmux."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aod.config import ReactionConfig, parse_config
from aod.reactions.conditions import SessionView, conditions, stuck_due_at
from aod.reactions.rules import Condition, Tracker, decide, due_at

NUDGE = ReactionConfig(action="send-to-agent", message="Fix CI.", retries=2, escalate_after=None, priority="urgent")
NOTIFY = ReactionConfig(action="notify", message="Waiting for you.", priority="action")
T0 = 1_000_000.0


def cond(sig: str, brake: str | None = None) -> Condition:
    return Condition(sig, f"detail of {sig}", brake)


# --- decide ---------------------------------------------------------------------------------------


def test_a_first_signature_opens_the_episode_and_nudges_with_the_detail() -> None:
    d = decide(cond("c1"), None, NUDGE, T0)
    assert d is not None and d.escalation is None
    assert d.nudge == "Fix CI.\n\ndetail of c1"
    assert d.tracker == Tracker(attempts=1, first_at=T0, last_at=T0, last_signature="c1")


def test_the_same_signature_again_changes_nothing() -> None:
    tracker = Tracker(attempts=1, first_at=T0, last_at=T0, last_signature="c1")
    assert decide(cond("c1"), tracker, NUDGE, T0 + 500) is None


def test_a_new_signature_nudges_again_until_retries_are_spent_then_escalates() -> None:
    tracker = Tracker(attempts=1, first_at=T0, last_at=T0, last_signature="c1")
    second = decide(cond("c2"), tracker, NUDGE, T0 + 10)
    assert second is not None and second.nudge and second.tracker.attempts == 2
    third = decide(cond("c3"), second.tracker, NUDGE, T0 + 20)
    assert third is not None and third.nudge is None
    assert third.escalation is not None and "still unresolved after 2 nudges" in third.escalation
    assert "detail of c3" in third.escalation
    assert third.tracker.escalated_at == T0 + 20 and third.tracker.first_at == T0
    # After the escalation the episode is quiet, whatever comes.
    assert decide(cond("c4"), third.tracker, NUDGE, T0 + 30) is None


def test_the_ci_brake_escalates_instead_of_nudging() -> None:
    tracker = Tracker(attempts=1, first_at=T0, last_at=T0, last_signature="c1")
    d = decide(cond("c2", brake="unit failed on the last 3 runs"), tracker, replace(NUDGE, retries=10), T0 + 5)
    assert d is not None and d.nudge is None
    assert d.escalation is not None and "(unit failed on the last 3 runs)" in d.escalation


def test_retries_zero_pages_at_once() -> None:
    d = decide(cond("c1"), None, replace(NUDGE, retries=0), T0)
    assert d is not None and d.nudge is None and d.escalation is not None
    assert d.tracker.first_at == T0 and d.tracker.escalated_at == T0


@pytest.mark.parametrize(("elapsed", "escalates"), [(1799.0, False), (1800.0, True), (5000.0, True)])
def test_escalate_after_counts_from_the_episode_start(elapsed: float, escalates: bool) -> None:
    config = replace(NUDGE, escalate_after=1800.0)
    tracker = Tracker(attempts=1, first_at=T0, last_at=T0 + 100, last_signature="c1")
    d = decide(cond("c1"), tracker, config, T0 + elapsed)
    assert (d is not None and d.escalation is not None) == escalates
    if escalates:
        assert d is not None and "unresolved for" in (d.escalation or "")
    assert due_at(tracker, config) == T0 + 1800.0


def test_the_timer_wins_over_a_new_signature() -> None:
    config = replace(NUDGE, escalate_after=60.0)
    tracker = Tracker(attempts=1, first_at=T0, last_signature="c1")
    d = decide(cond("c2"), tracker, config, T0 + 61)
    assert d is not None and d.nudge is None and d.escalation is not None


def test_a_signature_nudged_before_is_not_nudged_again() -> None:
    tracker = Tracker(attempts=2, first_at=T0, last_signature="c2")
    d = decide(cond("c1"), tracker, replace(NUDGE, retries=5), T0 + 1, nudged_before=True)
    assert d is not None and d.nudge is None and d.escalation is None
    assert d.tracker == replace(tracker, last_signature="c1")


def test_a_nudge_that_could_not_reach_the_agent_pages_the_human() -> None:
    tracker = Tracker(attempts=1, first_at=T0, last_signature="c1")
    d = decide(cond("c1"), tracker, NUDGE, T0 + 1, undeliverable="no tmux pane")
    assert d is not None and d.escalation is not None and "could not reach the agent: no tmux pane" in d.escalation


def test_the_condition_clearing_resolves_the_tracker_once() -> None:
    tracker = Tracker(attempts=2, first_at=T0, last_signature="c2")
    d = decide(None, tracker, NUDGE, T0 + 9)
    assert d is not None and d.tracker == replace(tracker, resolved_at=T0 + 9) and not d.nudge and not d.escalation
    assert decide(None, d.tracker, NUDGE, T0 + 10) is None
    assert decide(None, None, NUDGE, T0) is None
    assert due_at(d.tracker, replace(NUDGE, escalate_after=5.0)) is None


def test_the_condition_returning_opens_a_new_episode_with_a_fresh_budget() -> None:
    resolved = Tracker(attempts=2, first_at=T0, last_signature="c2", escalated_at=T0 + 5, resolved_at=T0 + 9)
    d = decide(cond("c3"), resolved, NUDGE, T0 + 100)
    assert d is not None and d.nudge is not None
    assert d.tracker == Tracker(attempts=1, first_at=T0 + 100, last_at=T0 + 100, last_signature="c3")


def test_a_disabled_reaction_does_nothing_and_resolves_what_it_had() -> None:
    off = replace(NUDGE, enabled=False)
    assert decide(cond("c1"), None, off, T0) is None
    open_tracker = Tracker(attempts=1, first_at=T0, last_signature="c1")
    d = decide(cond("c1"), open_tracker, off, T0 + 1)
    assert d is not None and d.tracker.resolved_at == T0 + 1


def test_notify_pages_once_per_episode() -> None:
    d = decide(cond("w1"), None, NOTIFY, T0)
    assert d is not None and d.nudge is None and d.escalation == "Waiting for you.\n\ndetail of w1"
    assert decide(cond("w2"), d.tracker, NOTIFY, T0 + 1) is None


def test_notify_with_escalate_after_waits_for_the_condition_to_last() -> None:
    config = replace(NOTIFY, escalate_after=600.0)
    opened = decide(cond("s1"), None, config, T0)
    assert opened is not None and opened.escalation is None and opened.tracker.first_at == T0
    assert decide(cond("s1"), opened.tracker, config, T0 + 599) is None
    later = decide(cond("s1"), opened.tracker, config, T0 + 600)
    assert later is not None and later.escalation is not None


@given(
    signatures=st.lists(st.sampled_from(["a", "b", "c", "d", "e", None]), max_size=40),
    retries=st.integers(0, 4),
)
def test_budget_invariants_hold_for_any_sequence(signatures: list[str | None], retries: int) -> None:
    """Per episode: at most `retries` nudges, each for a signature not nudged before in it,
    and at most one escalation, after which nothing more happens until it resolves."""
    config = replace(NUDGE, retries=retries)
    tracker: Tracker | None = None
    ever: set[str] = set()  # what the nudges table holds: one row per signature, ever
    nudged, escalations = 0, 0
    for step, sig in enumerate(signatures):
        d = decide(None if sig is None else cond(sig), tracker, config, T0 + step, nudged_before=sig in ever)
        if d is None:
            continue
        if d.tracker.resolved_at is not None:
            nudged, escalations = 0, 0
        if d.nudge is not None:
            assert sig is not None and sig not in ever
            ever.add(sig)
            nudged += 1
            assert d.tracker.attempts == nudged
        if d.escalation is not None:
            escalations += 1
        assert nudged <= retries and escalations <= 1
        assert not (d.nudge and d.escalation)
        tracker = d.tracker


def test_the_defaults_are_complete() -> None:
    reactions = parse_config({}).reactions
    view = SessionView({"id": "s", "activity": "idle", "termination_reason": None})
    assert set(conditions(view, T0, 600.0)) == set(reactions)


# --- conditions -----------------------------------------------------------------------------------


def pr(url: str = "https://gh/pr/1", *, sha: str = "abc", ci: str | None = None, review: str | None = None,
       state: str = "open", checks: list[dict[str, Any]] | None = None, comments: list[dict[str, Any]] | None = None,
       mergeability: str | None = "mergeable") -> dict[str, Any]:
    return {"url": url, "head_sha": sha, "ci_state": ci, "review_decision": review, "state": state, "draft": False,
            "mergeability": mergeability, "checks": checks or [], "comments": comments or []}


def session(**kw: Any) -> dict[str, Any]:
    return {"id": "widget-1", "activity": "idle", "activity_at": None, "termination_reason": None,
            "last_event_at": None, "ended_at": None, **kw}


def test_ci_failed_names_the_failing_checks_and_keys_on_the_commit() -> None:
    checks = [{"name": "unit", "status": "failed", "url": "https://ci/u"},
              {"name": "e2e", "status": "failed", "url": None},
              {"name": "lint", "status": "passed", "url": "https://ci/l"}]
    view = SessionView(session(), [pr(ci="failing", checks=checks)])
    c = conditions(view, T0, 600.0)["ci-failed"]
    assert c is not None and c.signature == "https://gh/pr/1@abc" and c.brake is None
    assert "- unit: https://ci/u" in c.detail and "- e2e" in c.detail and "lint" not in c.detail
    other_commit = SessionView(session(), [pr(ci="failing", checks=checks, sha="def")])
    assert conditions(other_commit, T0, 600.0)["ci-failed"].signature != c.signature  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("runs", "brakes"),
    [(["failed", "failed", "failed"], True), (["failed", "passed", "failed"], False), (["failed", "failed"], False)],
)
def test_the_ci_brake_needs_three_red_runs_in_a_row(runs: list[str], brakes: bool) -> None:
    checks = [{"name": "unit", "status": "failed", "url": None}]
    view = SessionView(session(), [pr(ci="failing", checks=checks)], {("https://gh/pr/1", "unit"): runs})
    c = conditions(view, T0, 600.0)["ci-failed"]
    assert c is not None and (c.brake is not None) == brakes
    if brakes:
        assert c.brake == "unit failed on the last 3 runs"


def test_changes_requested_keys_on_the_unresolved_comment_set_and_quotes_them() -> None:
    comments = [{"comment_id": "c2", "author": "bob", "path": "app.py", "line": 3, "body": "Rename  this", "resolved": False},
                {"comment_id": "c1", "author": "amy", "path": None, "line": None, "body": "Tests?", "resolved": False},
                {"comment_id": "c0", "author": "amy", "path": "x.py", "line": 1, "body": "done", "resolved": True}]
    view = SessionView(session(), [pr(review="changes_requested", comments=comments)])
    c = conditions(view, T0, 600.0)["changes-requested"]
    assert c is not None and c.signature == "https://gh/pr/1#c1,c2"
    assert "- bob on app.py:3: Rename this" in c.detail and "- amy: Tests?" in c.detail and "done" not in c.detail


def test_session_conditions() -> None:
    waiting = SessionView(session(activity="waiting_input", activity_at="2026-01-01T00:00:00.000000Z"))
    assert conditions(waiting, T0, 600.0)["needs-input"].signature == "waiting@2026-01-01T00:00:00.000000Z"  # type: ignore[union-attr]
    last = "2026-01-01T00:00:00.000000Z"
    from aod.timefmt import seconds_from_iso

    active = SessionView(session(activity="active", last_event_at=last))
    at = seconds_from_iso(last)
    assert conditions(active, at + 600.0, 600.0)["stuck"] is None
    assert conditions(active, at + 600.5, 600.0)["stuck"] is not None
    assert stuck_due_at(active, 600.0) == at + 600.0
    lost = SessionView(session(termination_reason="runtime_lost", ended_at=last), [pr(ci="failing")])
    found = conditions(lost, T0, 600.0)
    assert found["exited"] is not None and found["ci-failed"] is None  # an ended session nudges nobody
    killed = SessionView(session(termination_reason="killed"))
    assert conditions(killed, T0, 600.0)["exited"] is None


def test_pr_conditions() -> None:
    ready = SessionView(session(), [pr(review="approved", ci="passing")])
    assert conditions(ready, T0, 600.0)["approved-and-green"] is not None
    pending = SessionView(session(), [pr(review="approved", ci="pending")])
    assert conditions(pending, T0, 600.0)["approved-and-green"] is None
    merged = SessionView(session(termination_reason="merged"), [pr(state="merged")])
    found = conditions(merged, T0, 600.0)
    assert found["merged"] is not None and found["merged"].signature == "https://gh/pr/1"  # type: ignore[union-attr]
    assert found["exited"] is None
