"""What a reaction does next: one pure function of (condition, tracker, config, now).

A tracker is the durable budget of one (session, reaction) "episode": it opens when the
condition first holds, counts the nudges sent for it, and closes (resolved_at) when the
condition clears. The same condition coming back later opens a new episode.

For `send-to-agent`, every new signature (a new failing commit, a new set of review comments)
earns one nudge, until `retries` nudges were sent; the next new signature pages the human
instead. The human is paged earlier when the CI brake holds (the same check failed on the
last runs: nudging again will not help), when a nudge could not reach the agent, or when the
condition has held for `escalate_after` since the episode opened. For `notify`, the human is
told once per episode, after `escalate_after` if one is set. After an escalation the episode
asks nothing more of anyone until it resolves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aod.config import ReactionConfig

# The nudge and page texts carry at most this much detail; a huge CI log belongs behind a URL.
MAX_DETAIL = 4000


@dataclass(frozen=True)
class Condition:
    """A reaction's condition holds now.

    `signature` names what one nudge covers; `detail` is what the agent needs to act on it
    (failing checks and their URLs, review comments); `brake` says why a nudge is pointless.
    """

    signature: str
    detail: str = ""
    brake: str | None = None


@dataclass(frozen=True)
class Tracker:
    attempts: int
    first_at: float
    last_at: float | None = None
    last_signature: str | None = None
    escalated_at: float | None = None
    resolved_at: float | None = None


@dataclass(frozen=True)
class Decision:
    """The tracker to store, and at most one side effect, recorded in the same transaction."""

    tracker: Tracker
    nudge: str | None = None
    escalation: str | None = None


def decide(
    condition: Condition | None,
    tracker: Tracker | None,
    config: ReactionConfig,
    now: float,
    *,
    undeliverable: str | None = None,
    nudged_before: bool = False,
) -> Decision | None:
    """The next step, or None when nothing changes.

    `undeliverable` is the error of the nudge sent for the tracker's last signature, when that
    nudge could not reach the agent. `nudged_before` says the condition's signature already had
    its nudge (it came back: a force-push to an old commit, a comment set seen before).
    """
    is_open = tracker is not None and tracker.resolved_at is None
    if condition is None or not config.enabled:
        if is_open:
            assert tracker is not None
            return Decision(replace(tracker, resolved_at=now))
        return None
    current = tracker if is_open and tracker is not None else Tracker(attempts=0, first_at=now)
    started = current is not tracker
    unchanged = None if not started else Decision(current)
    if current.escalated_at is not None:
        return unchanged
    timer_due = config.escalate_after is not None and now - current.first_at >= config.escalate_after

    if config.action == "notify":
        if config.escalate_after is not None and not timer_due:
            return unchanged
        return _escalate(current, condition, config, now, None)

    if timer_due:
        return _escalate(current, condition, config, now, f"unresolved for {_duration(now - current.first_at)}")
    if condition.signature == current.last_signature:
        if undeliverable:
            return _escalate(current, condition, config, now, f"the nudge could not reach the agent: {undeliverable}")
        return unchanged
    if condition.brake:
        return _escalate(current, condition, config, now, condition.brake)
    if nudged_before:
        return Decision(replace(current, last_signature=condition.signature))
    if current.attempts >= config.retries:
        reason = "no nudge configured (retries = 0)" if config.retries == 0 else (
            f"still unresolved after {current.attempts} nudge{'s' if current.attempts != 1 else ''}")
        return _escalate(current, condition, config, now, reason)
    return Decision(
        replace(current, attempts=current.attempts + 1, last_at=now, last_signature=condition.signature),
        nudge=nudge_text(config.message, condition.detail),
    )


def due_at(tracker: Tracker | None, config: ReactionConfig) -> float | None:
    """When the duration timer of an open episode fires, if it has one."""
    if tracker is None or tracker.resolved_at is not None or tracker.escalated_at is not None:
        return None
    if config.escalate_after is None or not config.enabled:
        return None
    return tracker.first_at + config.escalate_after


def _escalate(current: Tracker, condition: Condition, config: ReactionConfig, now: float, reason: str | None) -> Decision:
    return Decision(
        replace(current, escalated_at=now, last_at=now, last_signature=condition.signature),
        escalation=escalation_text(config.message, reason, condition.detail),
    )


def nudge_text(message: str, detail: str) -> str:
    return "\n\n".join(part for part in (message.strip(), _clip(detail)) if part)


def escalation_text(message: str, reason: str | None, detail: str) -> str:
    head = message.strip()
    if reason:
        head = f"{head} ({reason})" if head else reason
    return "\n\n".join(part for part in (head, _clip(detail)) if part)


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
