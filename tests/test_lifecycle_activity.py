"""Hook event -> activity (DESIGN §4), as tables, and event orders converging (pure, no database)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aod.lifecycle.activity import ActivityState, Transition, apply_event, transition_for
from aod.lifecycle.status import Activity, SessionFacts, Status, TerminationReason, derive_status
from tests.conftest import hook_payload


def t(second: int) -> str:
    return f"2026-11-22T10:00:{second:02d}.000000Z"


ACT, IDL, WAIT, EXIT = Activity.ACTIVE, Activity.IDLE, Activity.WAITING_INPUT, Activity.EXITED

# (id, kind, payload, expected transition)
TRANSITIONS: list[tuple[str, str, dict[str, Any], Transition | None]] = [
    ("start", "SessionStart", {"source": "startup"}, Transition(IDL)),
    ("start-resume", "SessionStart", {"source": "resume"}, Transition(IDL)),
    ("start-clear", "SessionStart", {"source": "clear"}, Transition(IDL)),
    ("start-compact-keeps-working", "SessionStart", {"source": "compact"}, None),
    ("prompt", "UserPromptSubmit", {"prompt": "hi"}, Transition(ACT)),
    ("pre-tool", "PreToolUse", {}, Transition(ACT)),
    ("post-tool", "PostToolUse", {}, Transition(ACT)),
    ("post-tool-failure", "PostToolUseFailure", {}, Transition(ACT)),
    ("subagent-start", "SubagentStart", {}, Transition(ACT)),
    ("permission-request", "PermissionRequest", {}, Transition(WAIT)),
    ("notify-permission", "Notification", {"notification_type": "permission_prompt"}, Transition(WAIT)),
    ("notify-elicitation", "Notification", {"notification_type": "elicitation_dialog"}, Transition(WAIT)),
    ("notify-needs-input", "Notification", {"notification_type": "agent_needs_input"}, Transition(WAIT)),
    ("notify-idle-prompt", "Notification", {"notification_type": "idle_prompt"}, None),
    ("notify-auth", "Notification", {"notification_type": "auth_success"}, None),
    ("notify-untyped", "Notification", {}, None),
    ("stop", "Stop", {}, Transition(IDL)),
    ("stop-empty-tasks", "Stop", {"background_tasks": []}, Transition(IDL)),
    ("stop-running-task", "Stop", {"background_tasks": [{"id": "1", "status": "running"}]}, Transition(ACT)),
    ("stop-task-no-status", "Stop", {"background_tasks": [{"id": "1"}]}, Transition(ACT)),
    ("stop-tasks-all-done", "Stop", {"background_tasks": [{"status": "completed"}, {"status": "failed"}]}, Transition(IDL)),
    ("stop-tasks-one-running", "Stop", {"background_tasks": [{"status": "completed"}, {"status": "running"}]}, Transition(ACT)),
    ("stop-tasks-not-a-list", "Stop", {"background_tasks": "yes"}, Transition(IDL)),
    ("stop-failure", "StopFailure", {"error": "rate_limit"}, Transition(IDL, error="rate_limit")),
    ("stop-failure-bare", "StopFailure", {}, Transition(IDL, error="stop failed")),
    ("end", "SessionEnd", {"reason": "prompt_input_exit"}, Transition(EXIT, ends=True)),
    ("end-logout", "SessionEnd", {"reason": "logout"}, Transition(EXIT, ends=True)),
    ("end-clear-hands-over", "SessionEnd", {"reason": "clear"}, None),
    ("end-resume-hands-over", "SessionEnd", {"reason": "resume"}, None),
    ("subagent-stop", "SubagentStop", {}, None),
    ("pre-compact", "PreCompact", {}, None),
    ("unknown-kind", "CwdChanged", {}, None),
]


@pytest.mark.parametrize(("kind", "payload", "expected"), [c[1:] for c in TRANSITIONS], ids=[c[0] for c in TRANSITIONS])
def test_transition_for(kind: str, payload: dict[str, Any], expected: Transition | None) -> None:
    assert transition_for(kind, payload) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SessionStart", IDL), ("SessionStart.resume", IDL), ("UserPromptSubmit", ACT), ("PreToolUse", ACT),
        ("PostToolUse", ACT), ("PostToolUseFailure", ACT), ("SubagentStart", ACT), ("PermissionRequest", WAIT),
        ("Notification", WAIT), ("Notification.idle", None), ("Stop", ACT), ("SessionEnd", EXIT),
        ("SessionEnd.clear", None), ("SubagentStop", None), ("PreCompact", None),
    ],
)
def test_fixture_payloads(name: str, expected: Activity | None) -> None:
    payload = hook_payload(name)
    change = transition_for(payload["hook_event_name"], payload)
    assert (change.activity if change else None) == expected


def state(activity: str = IDL, at: str | None = None, reason: str | None = None, ended: str | None = None,
          error: str | None = None, error_at: str | None = None) -> ActivityState:
    """An error is stamped by the event that set it, which set the activity too (unless said)."""
    return ActivityState(activity=activity, activity_at=at, error=error, termination_reason=reason, ended_at=ended,
                         error_at=error_at or (at if error else None))


# (id, before, kind, payload, occurred_at, after)
APPLY: list[tuple[str, ActivityState, str, dict[str, Any], str, ActivityState]] = [
    ("first-event", state(), "PreToolUse", {}, t(1), state(ACT, t(1))),
    ("newer-wins", state(ACT, t(1)), "Stop", {}, t(2), state(IDL, t(2))),
    ("older-ignored", state(IDL, t(5)), "PreToolUse", {}, t(4), state(IDL, t(5))),
    ("silent-event-changes-nothing", state(ACT, t(1)), "SubagentStop", {}, t(9), state(ACT, t(1))),
    ("end-marks-exited", state(ACT, t(1)), "SessionEnd", {"reason": "other"}, t(2),
     state(EXIT, t(2), TerminationReason.EXITED, t(2))),
    ("end-clears-error", state(IDL, t(1), error="boom"), "SessionEnd", {}, t(2),
     state(EXIT, t(2), TerminationReason.EXITED, t(2))),
    ("late-event-after-exit-ignored", state(EXIT, t(5), TerminationReason.EXITED, t(5)), "PreToolUse", {}, t(4),
     state(EXIT, t(5), TerminationReason.EXITED, t(5))),
    ("newer-event-revives-exited", state(EXIT, t(5), TerminationReason.EXITED, t(5)), "SessionStart",
     {"source": "resume"}, t(6), state(IDL, t(6))),
    ("killed-stays-killed", state(ACT, t(1), TerminationReason.KILLED, t(2)), "PreToolUse", {}, t(9),
     state(ACT, t(1), TerminationReason.KILLED, t(2))),
    ("merged-stays-merged", state(IDL, t(1), TerminationReason.MERGED, t(2)), "UserPromptSubmit", {}, t(9),
     state(IDL, t(1), TerminationReason.MERGED, t(2))),
    ("lost-revived-by-event-after-loss", state(ACT, t(1), TerminationReason.RUNTIME_LOST, t(5)), "PreToolUse", {},
     t(6), state(ACT, t(6))),
    ("lost-not-revived-by-event-before-loss", state(ACT, t(1), TerminationReason.RUNTIME_LOST, t(5)), "Stop", {},
     t(4), state(ACT, t(1), TerminationReason.RUNTIME_LOST, t(5))),
    ("lost-not-revived-at-loss-instant", state(ACT, t(1), TerminationReason.RUNTIME_LOST, t(5)), "Stop", {},
     t(5), state(ACT, t(1), TerminationReason.RUNTIME_LOST, t(5))),
    ("stop-failure-sets-error", state(ACT, t(1)), "StopFailure", {"error": "overloaded"}, t(2),
     state(IDL, t(2), error="overloaded")),
    ("next-event-clears-error", state(IDL, t(2), error="overloaded"), "UserPromptSubmit", {}, t(3), state(ACT, t(3))),
    ("repeated-error-is-stamped-anew", state(IDL, t(2), error="rate_limit"), "StopFailure", {"error": "rate_limit"},
     t(7), state(IDL, t(7), error="rate_limit")),
    ("plain-notification-keeps-error", state(IDL, t(2), error="rate_limit"), "Notification",
     {"notification_type": "idle_prompt"}, t(8), state(IDL, t(2), error="rate_limit")),
    ("late-older-event-keeps-error", state(IDL, t(5), error="rate_limit"), "PreToolUse", {}, t(4),
     state(IDL, t(5), error="rate_limit")),
    ("question-clears-error", state(IDL, t(2), error="rate_limit"), "PermissionRequest", {}, t(3), state(WAIT, t(3))),
    # Ties at one instant: the state that asks more of the human wins, whatever came first.
    ("tie-waiting-beats-active", state(ACT, t(3)), "PermissionRequest", {}, t(3), state(WAIT, t(3))),
    ("tie-active-loses-to-waiting", state(WAIT, t(3)), "PreToolUse", {}, t(3), state(WAIT, t(3))),
    ("tie-active-beats-idle", state(IDL, t(3)), "PreToolUse", {}, t(3), state(ACT, t(3))),
    ("tie-idle-loses-to-active", state(ACT, t(3)), "Stop", {}, t(3), state(ACT, t(3))),
    ("tie-exit-wins", state(WAIT, t(3)), "SessionEnd", {}, t(3), state(EXIT, t(3), TerminationReason.EXITED, t(3))),
    ("tie-error-beats-plain-idle", state(IDL, t(3)), "StopFailure", {"error": "e"}, t(3), state(IDL, t(3), error="e")),
    ("duplicate-is-idempotent", state(ACT, t(3)), "PreToolUse", {}, t(3), state(ACT, t(3))),
]


@pytest.mark.parametrize(("before", "kind", "payload", "at", "after"), [c[1:] for c in APPLY], ids=[c[0] for c in APPLY])
def test_apply_event(before: ActivityState, kind: str, payload: dict[str, Any], at: str, after: ActivityState) -> None:
    assert apply_event(before, kind, payload, at) == after


def fold(events: list[tuple[str, dict[str, Any], str]], start: ActivityState | None = None) -> ActivityState:
    current = start or ActivityState()
    for kind, payload, at in events:
        current = apply_event(current, kind, payload, at)
    return current


def status_of(s: ActivityState, *, last_event_at: float | None = None) -> Status:
    return derive_status(SessionFacts(s.activity, s.termination_reason, last_event_at), now=1e10, stuck_after=1e12)


def test_fixture_sequence_working_needs_input_working_idle() -> None:
    """ACT turn as Claude Code reports it: each step shows the status a human would expect."""
    steps = [
        ("SessionStart", Status.IDLE), ("UserPromptSubmit", Status.WORKING), ("PreToolUse", Status.WORKING),
        ("PermissionRequest", Status.NEEDS_INPUT), ("Notification", Status.NEEDS_INPUT),
        ("PostToolUse", Status.WORKING), ("SubagentStart", Status.WORKING), ("SubagentStop", Status.WORKING),
    ]
    current = ActivityState()
    for second, (name, expected) in enumerate(steps):
        payload = hook_payload(name)
        current = apply_event(current, payload["hook_event_name"], payload, t(second))
        assert status_of(current) == expected, name
    stop = {**hook_payload("Stop"), "background_tasks": []}
    current = apply_event(current, "Stop", stop, t(20))
    assert status_of(current) == Status.IDLE
    # The fixture's Stop still has a running background task: the agent keeps working.
    assert status_of(apply_event(current, "Stop", hook_payload("Stop"), t(21))) == Status.WORKING
    # ACT late PreToolUse stamped before the Stop does not bring "working" back.
    late = apply_event(current, "PreToolUse", hook_payload("PreToolUse"), t(10))
    assert late == current and status_of(late) == Status.IDLE
    # Nor does a late permission prompt.
    assert status_of(apply_event(current, "PermissionRequest", hook_payload("PermissionRequest"), t(15))) == Status.IDLE


def test_clear_hands_over_without_ending() -> None:
    current = fold([("UserPromptSubmit", {}, t(1)), ("Stop", {}, t(2))])
    current = apply_event(current, "SessionEnd", hook_payload("SessionEnd.clear"), t(3))
    assert current.termination_reason is None and current.activity == IDL
    current = apply_event(current, "SessionStart", {"source": "clear"}, t(3))
    assert status_of(current) == Status.IDLE


def test_resume_double_start_keeps_the_session_alive() -> None:
    ended = fold([("UserPromptSubmit", {}, t(1)), ("SessionEnd", {"reason": "other"}, t(2))])
    assert status_of(ended) == Status.EXITED
    for order in ([{"source": "startup"}, {"source": "resume"}], [{"source": "resume"}, {"source": "startup"}]):
        resumed = fold([("SessionStart", p, t(9)) for p in order], ended)
        assert resumed.termination_reason is None and status_of(resumed) == Status.IDLE


KINDS = [(kind, payload) for _, kind, payload, _ in TRANSITIONS]


@st.composite
def event_lists(draw: st.DrawFn) -> list[tuple[str, dict[str, Any], str]]:
    # Few distinct instants, so ties at one instant are common.
    n = draw(st.integers(1, 12))
    return [(*draw(st.sampled_from(KINDS)), t(draw(st.integers(0, 5)))) for _ in range(n)]


starts = st.sampled_from([
    ActivityState(),
    state(ACT, t(2)),
    state(EXIT, t(3), TerminationReason.EXITED, t(3)),
    state(ACT, t(1), TerminationReason.RUNTIME_LOST, t(3)),
    state(WAIT, t(1), TerminationReason.KILLED, t(2)),
    state(IDL, t(1), TerminationReason.MERGED, t(2)),
])


@settings(max_examples=300, deadline=None)
@given(events=event_lists(), start=starts, seed=st.integers(0, 2**32 - 1), repeat=st.integers(0, 3))
def test_any_order_and_any_duplicates_converge(
    events: list[tuple[str, dict[str, Any], str]], start: ActivityState, seed: int, repeat: int
) -> None:
    expected = fold(events, start)
    shuffled = events + events[:repeat]  # a hook that fired several times
    random.Random(seed).shuffle(shuffled)
    assert fold(shuffled, start) == expected


@settings(max_examples=200, deadline=None)
@given(events=event_lists(), late=event_lists())
def test_older_events_never_move_activity_back(
    events: list[tuple[str, dict[str, Any], str]], late: list[tuple[str, dict[str, Any], str]]
) -> None:
    current = fold(events)
    older = [(k, p, at) for k, p, at in late if current.activity_at is not None and at < current.activity_at]
    assert fold(older, current) == current
