"""Storing a batch of ingest items: one call inside one write transaction.

Each item runs in a savepoint of its own, so an item that fails (even from a bug) becomes a
dead letter with its error and the others still land.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import apsw
import orjson

from aod.ingest.envelope import Envelope, InvalidItem
from aod.ingest.normalize import EventColumns, content_key, event_columns, stored_payload
from aod.ingest.projects import ProjectLocation
from aod.lifecycle.activity import ActivityState, apply_event
from aod.lifecycle.status import SessionFacts, derive_status
from aod.storage import dead_letters, events, projects, prs, sessions
from aod.timefmt import iso_from_seconds, seconds_from_iso

Outcome = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True)
class IngestSettings:
    max_payload_bytes: int
    dedup_window: float
    stuck_after: float


@dataclass(frozen=True)
class Prepared:
    """An item that parsed, with its project located (file-system work done off the writer)."""

    index: int
    envelope: Envelope
    project: ProjectLocation


@dataclass(frozen=True)
class Rejected:
    index: int
    error: str
    body: str


@dataclass(frozen=True)
class ItemResult:
    index: int
    outcome: Outcome
    error: str | None = None
    event_id: int | None = None
    session_id: str | None = None


def ingest(
    conn: apsw.Connection,
    items: list[Prepared | Rejected],
    settings: IngestSettings,
    *,
    source: str,
    now: str,
) -> list[ItemResult]:
    results = []
    for item in items:
        if isinstance(item, Rejected):
            dead_letters.add(conn, source, item.error, item.body, now)
            results.append(ItemResult(item.index, "rejected", item.error))
            continue
        try:
            with conn:  # a savepoint: a failing item rolls back alone
                results.append(_store(conn, item, settings, now))
        except (InvalidItem, apsw.Error, ValueError, TypeError) as exc:
            error = str(exc) if isinstance(exc, InvalidItem) else f"could not store: {type(exc).__name__}: {exc}"
            body = orjson.dumps(_envelope_json(item.envelope)).decode()
            dead_letters.add(conn, source, error, body, now)
            results.append(ItemResult(item.index, "rejected", error))
    return results


def _store(conn: apsw.Connection, item: Prepared, settings: IngestSettings, now: str) -> ItemResult:
    env = item.envelope
    if events.uid_exists(conn, env.uid):
        return ItemResult(item.index, "duplicate")
    cols = event_columns(env.payload)
    session_id = _resolve_session(conn, env, cols, item.project, now)
    key = content_key(session_id, cols.kind, env.payload)
    window_start = iso_from_seconds(seconds_from_iso(now) - settings.dedup_window)
    if settings.dedup_window > 0 and events.content_seen_since(conn, key, window_start):
        return ItemResult(item.index, "duplicate", session_id=session_id)

    stored = stored_payload(env.payload, settings.max_payload_bytes)
    duration = cols.duration_ms if cols.duration_ms is not None else _paired_duration(conn, session_id, cols, env)
    event_id = events.insert(conn, {
        "uid": env.uid, "session_id": session_id, "agent": env.agent, "kind": cols.kind,
        "tool_name": cols.tool_name, "tool_use_id": cols.tool_use_id, "occurred_at": env.occurred_at,
        "received_at": now, "duration_ms": duration, "ok": cols.ok, "content_key": key,
        "payload": stored.text, "payload_bytes": stored.original_bytes, "trimmed": int(stored.trimmed),
    })
    _update_session(conn, session_id, env, cols, settings, now)
    return ItemResult(item.index, "accepted", event_id=event_id, session_id=session_id)


def _resolve_session(conn: apsw.Connection, env: Envelope, cols: EventColumns, project: ProjectLocation, now: str) -> str:
    """AOD_SESSION_ID wins; else the agent's session id (or any id it was known by); else adopt."""
    session_id = env.session
    if session_id is None and cols.agent_session_id is not None:
        session_id = sessions.by_alias(conn, env.agent, cols.agent_session_id)
    if session_id is None and cols.agent_session_id is None:
        raise InvalidItem("no session: the payload has no session_id and the envelope no session")
    if session_id is None or not sessions.exists(conn, session_id):
        session_id = _create_session(conn, session_id, env, cols, project, now)
    if cols.agent_session_id is not None and sessions.by_alias(conn, env.agent, cols.agent_session_id) != session_id:
        sessions.add_alias(conn, env.agent, cols.agent_session_id, session_id, now)
        # The newest agent id is the one the agent answers to now (after /clear, --resume).
        sessions.update(conn, session_id, {"agent_session_id": cols.agent_session_id})
    return session_id


def _create_session(
    conn: apsw.Connection, wanted_id: str | None, env: Envelope, cols: EventColumns, project: ProjectLocation, now: str
) -> str:
    project_id = projects.ensure(conn, project.path, project.name, project.origin_url, now)
    session_id = wanted_id
    while session_id is None or sessions.exists(conn, session_id):
        session_id = f"{project_id}-{projects.take_session_number(conn, project_id)}"
    # The runtime handle is filled in by _update_session, which runs for every event.
    sessions.create(conn, {
        "id": session_id, "project_id": project_id, "agent": env.agent,
        "agent_session_id": cols.agent_session_id, "workspace_path": cols.cwd,
        "created_at": now, "updated_at": now,
    })
    return session_id


def _paired_duration(conn: apsw.Connection, session_id: str, cols: EventColumns, env: Envelope) -> int | None:
    """A Post's duration from its Pre; a late Pre fills in the duration of its Post instead."""
    if cols.tool_use_id is None:
        return None
    if cols.kind in ("PostToolUse", "PostToolUseFailure"):
        pre = events.tool_use_partner(conn, session_id, cols.tool_use_id, ("PreToolUse",))
        if pre is not None:
            return _ms_between(pre["occurred_at"], env.occurred_at)
    elif cols.kind == "PreToolUse":
        post = events.tool_use_partner(conn, session_id, cols.tool_use_id, ("PostToolUse", "PostToolUseFailure"))
        if post is not None and post["duration_ms"] is None:
            events.set_duration(conn, post["id"], _ms_between(env.occurred_at, post["occurred_at"]))
    return None


def _ms_between(start: str, end: str) -> int:
    return max(0, round((seconds_from_iso(end) - seconds_from_iso(start)) * 1000))


def _update_session(
    conn: apsw.Connection, session_id: str, env: Envelope, cols: EventColumns, settings: IngestSettings, now: str
) -> None:
    row = sessions.get(conn, session_id)
    assert row is not None
    before = ActivityState(row["activity"], row["activity_at"], row["error"], row["termination_reason"], row["ended_at"])
    after = apply_event(before, cols.kind, env.payload, env.occurred_at)
    last_event_at = max(filter(None, (row["last_event_at"], env.occurred_at)))
    facts = SessionFacts(
        activity=after.activity,
        termination_reason=after.termination_reason,
        last_event_at=seconds_from_iso(last_event_at),
        prs=prs.facts_for_session(conn, session_id),
    )
    fields: dict[str, Any] = {
        "activity": after.activity, "activity_at": after.activity_at, "error": after.error,
        "termination_reason": after.termination_reason, "ended_at": after.ended_at,
        "last_event_at": last_event_at, "updated_at": now,
        "status": derive_status(facts, now=seconds_from_iso(now), stuck_after=settings.stuck_after),
    }
    if row["workspace_path"] is None and cols.cwd:
        fields["workspace_path"] = cols.cwd
    prompt = env.payload.get("prompt")
    if row["title"] is None and cols.kind == "UserPromptSubmit" and isinstance(prompt, str) and prompt.strip():
        fields["title"] = " ".join(prompt.split())[:120]
    if row["runtime"] is None and env.tmux_pane:
        fields.update({"runtime": "tmux", "runtime_handle": env.tmux_pane, "pid": env.pid})
    elif row["runtime"] is None and env.pid:
        fields.update({"runtime": "process", "runtime_handle": str(env.pid), "pid": env.pid})
    sessions.update(conn, session_id, fields)


def _envelope_json(env: Envelope) -> dict[str, Any]:
    return {
        "uid": env.uid, "agent": env.agent, "occurred_at": env.occurred_at, "session": env.session,
        "runtime": {"tmux_pane": env.tmux_pane, "pid": env.pid}, "payload": env.payload,
    }
