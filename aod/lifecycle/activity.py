"""Hook event -> session activity (DESIGN.md §4), as pure functions.

Events are applied in the order the client stamped them (`occurred_at`), not the order they
arrived: an event older than the one that set the current activity changes nothing. Events
stamped at the same instant are ordered by what they say (see `_tie_key`), so the same set of
events gives the same state whatever order they arrive in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from aod.lifecycle.status import Activity, TerminationReason

ACTIVE_KINDS = frozenset({"UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure", "SubagentStart"})
NEEDS_INPUT_NOTIFICATIONS = frozenset({"permission_prompt", "elicitation_dialog", "agent_needs_input"})
# SessionEnd with these reasons hands the conversation over to a new agent session id.
HANDOVER_END_REASONS = frozenset({"clear", "resume"})
# A compaction (automatic ones happen in the middle of a turn) starts no new conversation: the
# agent goes on with what it was doing, so it must not read as idle.
SILENT_START_SOURCES = frozenset({"compact"})
# Ended by a person or by the PR: no hook can bring these back.
FINAL_REASONS = frozenset({TerminationReason.KILLED, TerminationReason.MERGED})

# Ties at one instant: the state that asks more of the human wins (an exit over a question over
# work over rest), so no arrival order can hide it.
_RANK = {Activity.IDLE: 0, Activity.ACTIVE: 1, Activity.WAITING_INPUT: 2, Activity.EXITED: 3}


@dataclass(slots=True)
class ActivityState:
    activity: str = Activity.IDLE
    activity_at: str | None = None  # occurred_at of the event that set `activity`
    error: str | None = None
    termination_reason: str | None = None
    ended_at: str | None = None
    error_at: str | None = None  # occurred_at of the event that set `error`


@dataclass(frozen=True, slots=True)
class Transition:
    activity: Activity
    error: str | None = None
    ends: bool = False


# The transitions that carry no error, made once (transition_for runs for every event).
_TO_IDLE = Transition(Activity.IDLE)
_TO_ACTIVE = Transition(Activity.ACTIVE)
_TO_WAITING = Transition(Activity.WAITING_INPUT)
_TO_EXITED = Transition(Activity.EXITED, ends=True)


def transition_for(kind: str, payload: Mapping[str, Any]) -> Transition | None:
    """What an event of `kind` does to the activity; None when it says nothing about it."""
    if kind == "SessionStart":
        return None if payload.get("source") in SILENT_START_SOURCES else _TO_IDLE
    if kind in ACTIVE_KINDS:
        return _TO_ACTIVE
    if kind == "PermissionRequest":
        return _TO_WAITING
    if kind == "Notification":
        if payload.get("notification_type") in NEEDS_INPUT_NOTIFICATIONS:
            return _TO_WAITING
        return None
    if kind == "Stop":
        # Background tasks keep the agent working after its turn ended.
        return _TO_ACTIVE if _running_tasks(payload.get("background_tasks")) else _TO_IDLE
    if kind == "StopFailure":
        error = payload.get("error") or payload.get("error_type") or payload.get("reason")
        return Transition(Activity.IDLE, error=str(error) if error else "stop failed")
    if kind == "SessionEnd":
        if payload.get("reason") in HANDOVER_END_REASONS:
            return None
        return _TO_EXITED
    return None


def apply_event(state: ActivityState, kind: str, payload: Mapping[str, Any], occurred_at: str) -> ActivityState:
    """The state after an event stamped `occurred_at` (RFC 3339 fixed-width, so it sorts)."""
    change = transition_for(kind, payload)
    if change is None or state.termination_reason in FINAL_REASONS:
        return state
    if state.termination_reason == TerminationReason.RUNTIME_LOST and (
        state.ended_at is None or occurred_at <= state.ended_at
    ):
        # The reaper found the runtime gone; only an event stamped after that proves it wrong.
        return state
    if state.activity_at is not None:
        if occurred_at < state.activity_at:
            return state
        if occurred_at == state.activity_at and _tie_key(change.activity, change.error) <= _tie_key(
            state.activity, state.error
        ):
            return state
    if change.ends:
        return replace(
            state,
            activity=change.activity,
            activity_at=occurred_at,
            error=None,
            error_at=None,
            termination_reason=TerminationReason.EXITED,
            ended_at=occurred_at,
        )
    # A newer event after an exit (or a lost runtime) means the agent came back (e.g. --resume).
    # The error, if any, is this event's: any other change of activity clears the last one.
    return ActivityState(activity=change.activity, activity_at=occurred_at, error=change.error,
                         error_at=occurred_at if change.error else None)


def _tie_key(activity: str, error: str | None) -> tuple[int, str]:
    return _RANK[Activity(activity)], error or ""


_FINISHED_TASK_STATES = frozenset({"completed", "failed", "killed", "cancelled", "stopped", "exited", "done"})


def _running_tasks(tasks: object) -> bool:
    if not isinstance(tasks, list):
        return False
    # A task without a status is taken to be running: older versions list only live tasks.
    return any(not isinstance(t, dict) or t.get("status") not in _FINISHED_TASK_STATES for t in tasks)
