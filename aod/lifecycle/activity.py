"""Hook event -> session activity (DESIGN.md §4), as pure functions.

Events are applied in the order the client stamped them (`occurred_at`), not the order they
arrived: an event older than the one that set the current activity changes nothing.
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


@dataclass(frozen=True)
class ActivityState:
    activity: str = Activity.IDLE
    activity_at: str | None = None  # occurred_at of the event that set `activity`
    error: str | None = None
    termination_reason: str | None = None
    ended_at: str | None = None


@dataclass(frozen=True)
class Transition:
    activity: Activity
    error: str | None = None
    ends: bool = False


def transition_for(kind: str, payload: Mapping[str, Any]) -> Transition | None:
    """What an event of `kind` does to the activity; None when it says nothing about it."""
    if kind == "SessionStart":
        return Transition(Activity.IDLE)
    if kind in ACTIVE_KINDS:
        return Transition(Activity.ACTIVE)
    if kind == "PermissionRequest":
        return Transition(Activity.WAITING_INPUT)
    if kind == "Notification":
        if payload.get("notification_type") in NEEDS_INPUT_NOTIFICATIONS:
            return Transition(Activity.WAITING_INPUT)
        return None
    if kind == "Stop":
        # Background tasks keep the agent working after its turn ended.
        return Transition(Activity.ACTIVE if _running_tasks(payload.get("background_tasks")) else Activity.IDLE)
    if kind == "StopFailure":
        error = payload.get("error") or payload.get("error_type") or payload.get("reason")
        return Transition(Activity.IDLE, error=str(error) if error else "stop failed")
    if kind == "SessionEnd":
        if payload.get("reason") in HANDOVER_END_REASONS:
            return None
        return Transition(Activity.EXITED, ends=True)
    return None


def apply_event(state: ActivityState, kind: str, payload: Mapping[str, Any], occurred_at: str) -> ActivityState:
    """The state after an event stamped `occurred_at` (RFC 3339 fixed-width, so it sorts)."""
    change = transition_for(kind, payload)
    if change is None:
        return state
    if state.activity_at is not None and occurred_at < state.activity_at:
        return state
    if state.termination_reason not in (None, TerminationReason.EXITED):
        return state  # killed, lost or merged sessions stay ended whatever their hooks say
    if change.ends:
        return replace(
            state,
            activity=change.activity,
            activity_at=occurred_at,
            termination_reason=TerminationReason.EXITED,
            ended_at=occurred_at,
        )
    # A newer event after an exit means the agent came back (e.g. --resume on an aod session).
    return ActivityState(activity=change.activity, activity_at=occurred_at, error=change.error)


_FINISHED_TASK_STATES = frozenset({"completed", "failed", "killed", "cancelled", "stopped", "exited", "done"})


def _running_tasks(tasks: object) -> bool:
    if not isinstance(tasks, list):
        return False
    # A task without a status is taken to be running: older versions list only live tasks.
    return any(not isinstance(t, dict) or t.get("status") not in _FINISHED_TASK_STATES for t in tasks)
