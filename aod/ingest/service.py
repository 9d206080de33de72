"""Storing ingest items: one call per write transaction, for any number of requests (the
writer's group commit hands every ingest request of a transaction to one call).

Sessions touched by the batch are read once, updated in memory event by event, and written
once at the end, so a burst of events on one session costs one session UPDATE (and one
change_log row for it), not one per event.

The fast path uses no per-item savepoint: items are validated before they get here, so a
failure is unexpected (a bug, a full disk). Then the writer rolls the whole call back and the
caller retries with `isolate=True`, where every item runs in a savepoint of its own and one
that still fails becomes a dead letter while the others land.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

import apsw

from aod.ingest.envelope import Envelope, InvalidItem
from aod.ingest.normalize import (
    EventColumns,
    content_key,
    dead_letter_text,
    event_columns,
    stored_payload,
)
from aod.ingest.recent_keys import RecentKeys
from aod.lifecycle.activity import ActivityState, apply_event
from aod.lifecycle.liveness import Runtime, runtime_after_event
from aod.lifecycle.resume import PAIR_WINDOW, is_fresh_start, is_resume_start
from aod.sessions.facts import FactWriter
from aod.sessions.projects import ProjectLocation
from aod.storage import dead_letters, events, sessions
from aod.storage.health import classify
from aod.timefmt import iso_from_seconds, seconds_from_iso

# Writes in flight may commit slightly out of received_at order; reloading the window looks this
# much further back so that none of its keys is missed.
_OVERLAP_SLACK = 1.0
# Positions in a pending events row (the column order of events.insert_many).
_SESSION, _KIND, _OCCURRED_AT, _RECEIVED_AT, _DURATION = 1, 3, 6, 7, 8


@dataclass(frozen=True)
class IngestSettings:
    max_payload_bytes: int
    dedup_window: float


@dataclass(slots=True)
class Prepared:
    """An item ready for the writer: everything that needs no database is computed already,
    on the event loop, where it overlaps with the writer's SQLite time instead of adding to it."""

    index: int
    envelope: Envelope
    project: ProjectLocation
    columns: EventColumns
    key: str
    # The events row, built here once; the writer fills in session, received_at and duration.
    row: list[Any]


def prepare(
    index: int, envelope: Envelope, project: ProjectLocation, settings: IngestSettings, *,
    columns: EventColumns | None = None,
) -> Prepared:
    """The item ready for the writer; `columns`, when the caller has read them already."""
    cols = columns if columns is not None else event_columns(envelope.payload, envelope.agent)
    # The content key names the session as the client did (AOD_SESSION_ID, else the agent's
    # id): both firings of one hook carry the same, and it is known before any lookup.
    session_key = f"{envelope.agent}\0{envelope.session or cols.agent_session_id or ''}"
    stored = stored_payload(envelope.payload, settings.max_payload_bytes)
    key = content_key(session_key, cols.kind, envelope.payload)
    row = [
        envelope.uid, None, envelope.agent, cols.kind, cols.tool_name, cols.tool_use_id, envelope.occurred_at,
        None, None, cols.ok, key, stored.text, stored.original_bytes, int(stored.trimmed),
    ]
    return Prepared(index, envelope, project, cols, key, row)


@dataclass(slots=True)
class Rejected:
    index: int
    error: str
    body: str


class Rejection(TypedDict):
    """One refused item of a request's answer: its place in the request and why."""

    index: int
    error: str


@dataclass
class Summary:
    """What one request came to (its answer's body); rejected items by index, in order."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def body(self) -> dict[str, object]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


@dataclass(slots=True)
class Request:
    items: list[Prepared | Rejected]
    source: str
    # The dedup keys this request records belong to it: forgotten if its transaction fails.
    token: object = field(default_factory=object)


def ingest(
    conn: apsw.Connection, requests: list[Request], settings: IngestSettings, facts: FactWriter, *, now: str,
    recent: RecentKeys, isolate: bool = False,
) -> list[Summary]:
    """Store `requests` in the caller's transaction. `recent` is the dedup window; the keys this
    call records in it belong to each request's token, which the caller forgets if the
    transaction fails. Sessions are written through `facts`."""
    batch = _Batch(conn, settings, facts, now, recent)
    try:
        batch.prefetch([i for r in requests for i in r.items if isinstance(i, Prepared)])
        summaries = []
        for request in requests:
            batch.token, summary = request.token, Summary()
            for item in request.items:
                batch.item(item, request.source, isolate, summary)
            summaries.append(summary)
        batch.flush_events()
        batch.flush_sessions()
    except BaseException:
        for request in requests:
            recent.forget(request.token)  # rolled back: none of these keys were stored
        raise
    return summaries


@dataclass
class _SessionState:
    row: dict[str, Any]
    activity: ActivityState
    last_event_at: str | None
    changes: dict[str, Any] = field(default_factory=dict)


class _Batch:
    def __init__(self, conn: apsw.Connection, settings: IngestSettings, facts: FactWriter, now: str,
                 recent: RecentKeys) -> None:
        self.conn = conn
        self.settings = settings
        self.facts = facts
        self.now = now
        self.now_seconds = seconds_from_iso(now)
        self.recent = recent
        self.token: object = None  # the request whose items are being stored
        self.sessions: dict[str, _SessionState] = {}
        self.seen_uids: set[str] = set()
        self.aliases: dict[tuple[str, str], str | None] = {}
        # Rows wait here and go in with one executemany; a tool call's rows are indexed by
        # tool_use_id so a Pre and a Post of the same batch can pair without the database.
        self.rows: list[list[Any]] = []
        self.tool_rows: dict[tuple[str, str], list[int]] = {}
        # Who sent what within this batch (the database answers for earlier ones): the session
        # each agent process worked on last, and sessions just created by a fresh start.
        self.fresh_starts: dict[tuple[str, object], str] = {}
        self.by_process: dict[tuple[str, int], str] = {}
        self.past_start: set[str] = set()  # sessions that had an event other than a fresh start
        self.created: set[str] = set()

    def prefetch(self, items: list[Prepared]) -> None:
        """Which uids the database already has (one query for the batch); a fresh dedup window."""
        self.seen_uids = events.existing_uids(self.conn, [i.envelope.uid for i in items])
        recent, window = self.recent, self.settings.dedup_window
        if window > 0 and not recent.loaded:  # the first write since the daemon started
            since = iso_from_seconds(self.now_seconds - window)
            stop_before = iso_from_seconds(self.now_seconds - window - _OVERLAP_SLACK)
            recent.load(((k, seconds_from_iso(at)) for k, at in events.content_keys_since(self.conn, since, stop_before)),
                        self.now_seconds)
        recent.expire(self.now_seconds)

    def item(self, item: Prepared | Rejected, source: str, isolate: bool, summary: Summary) -> None:
        if isinstance(item, Rejected):
            dead_letters.add(self.conn, source, item.error, item.body, self.now)
            summary.rejected.append({"index": item.index, "error": item.error})
            return
        try:
            if not isolate:
                stored = self._store(item)
            else:
                try:
                    with self.conn:  # a savepoint: a failing item rolls back alone
                        stored = self._store(item)
                        self.flush_events()
                except BaseException:
                    self.recent.discard(item.key, self.token)
                    # Its row rolled back with the savepoint: it must not go in with the next flush.
                    self.rows.clear()
                    self.tool_rows.clear()
                    raise
        except InvalidItem as exc:
            return self._reject(item, source, str(exc), summary)
        except (apsw.Error, ValueError, TypeError, OverflowError) as exc:
            if not isolate or classify(exc) is not None:  # a full disk is not this item's fault
                raise
            return self._reject(item, source, f"could not store: {type(exc).__name__}: {exc}", summary)
        if stored:
            summary.accepted += 1
        else:
            summary.duplicates += 1

    def _reject(self, item: Prepared, source: str, error: str, summary: Summary) -> None:
        dead_letters.add(self.conn, source, error, dead_letter_text(_envelope_json(item.envelope)), self.now)
        summary.rejected.append({"index": item.index, "error": error})

    def _store(self, item: Prepared) -> bool:
        """Stage the item's row; False if it is a duplicate (by uid, or content in the window)."""
        env, cols, key = item.envelope, item.columns, item.key
        if env.uid in self.seen_uids:
            return False
        session_id = self._resolve_session(env, cols, item.project)
        if self.settings.dedup_window > 0:
            if self.recent.seen(key, self.now_seconds):
                return False
            self.recent.add(key, self.now_seconds, self.token)
        self.seen_uids.add(env.uid)
        row = item.row
        row[_SESSION], row[_RECEIVED_AT] = session_id, self.now
        row[_DURATION] = cols.duration_ms if cols.duration_ms is not None else self._paired_duration(session_id, cols, env)
        self.rows.append(row)
        if cols.tool_use_id is not None:
            self.tool_rows.setdefault((session_id, cols.tool_use_id), []).append(len(self.rows) - 1)
        self._apply(session_id, env, cols)
        self._note_start(session_id, env, cols)
        return True

    def flush_events(self) -> None:
        if self.rows:
            events.insert_many(self.conn, self.rows)
            self.rows.clear()
            self.tool_rows.clear()

    def _resolve_session(self, env: Envelope, cols: EventColumns, project: ProjectLocation) -> str:
        """AOD_SESSION_ID wins; else the agent's session id (or any id it was known by); else adopt."""
        conn = self.conn
        alias = None
        if cols.agent_session_id is not None:
            alias_key = (env.agent, cols.agent_session_id)
            if alias_key not in self.aliases:
                self.aliases[alias_key] = sessions.by_alias(conn, env.agent, cols.agent_session_id)
            alias = self.aliases[alias_key]
        session_id = env.session or alias
        if session_id is None and cols.agent_session_id is None:
            raise InvalidItem("no session: the payload has no session_id and the envelope no session")
        # One agent process works on one conversation at a time: a new agent id from a process
        # that already has a live session is that session going on (/clear, --resume; see
        # lifecycle/resume.py), not a new one.
        owner = self._process_session(env) if alias is None and cols.agent_session_id is not None else None
        if env.session is None and owner is not None:
            session_id = owner
        elif env.session is None and alias is not None and is_resume_start(cols.kind, env.payload):
            phantom = self._phantom_start(env, exclude=alias)
            if phantom is not None:
                self._absorb(phantom, alias)
        if session_id is None or (session_id not in self.sessions and not sessions.exists(conn, session_id)):
            session_id = self._create_session(session_id, env, cols, project)
        if cols.agent_session_id is not None and alias != session_id:
            sessions.add_alias(conn, env.agent, cols.agent_session_id, session_id, self.now)
            self.aliases[(env.agent, cols.agent_session_id)] = session_id
            # The newest agent id is the one the agent answers to now (after /clear, --resume),
            # except --resume's throwaway id: a process starts up once, so a second fresh start
            # from a process whose session already has a conversation is that throwaway.
            state = self._state(session_id)
            throwaway = (
                owner == session_id
                and is_fresh_start(cols.kind, env.payload)
                and state.changes.get("agent_session_id", state.row["agent_session_id"]) is not None
            )
            if not throwaway:
                state.changes["agent_session_id"] = cols.agent_session_id
        return session_id

    def _note_start(self, session_id: str, env: Envelope, cols: EventColumns) -> None:
        if env.pid is not None:
            self.by_process[(env.agent, env.pid)] = session_id
        if is_fresh_start(cols.kind, env.payload):
            key = _runtime_key(env)
            if key is not None and session_id in self.created and session_id not in self.past_start:
                self.fresh_starts.setdefault(key, session_id)
            return
        self.past_start.add(session_id)

    def _process_session(self, env: Envelope) -> str | None:
        """The live session the agent process that sent `env` works on, if any."""
        if env.pid is None:
            return None
        found = self.by_process.get((env.agent, env.pid))
        if found is not None:
            return found
        return sessions.live_for_process(self.conn, env.agent, env.pid, pane=env.tmux_pane)

    def _phantom_start(self, env: Envelope, *, exclude: str | None) -> str | None:
        """A session made just now by a fresh start from the same agent process, with nothing else in it."""
        key = _runtime_key(env)
        if key is None:
            return None
        found = self.fresh_starts.get(key)
        if found is not None and found != exclude and found not in self.past_start:
            return found
        since = iso_from_seconds(self.now_seconds - PAIR_WINDOW)
        found = sessions.phantom_start(self.conn, env.agent, pid=env.pid, pane=env.tmux_pane, since=since)
        return None if found == exclude or found in self.past_start else found

    def _absorb(self, phantom: str, into: str) -> None:
        """Fold the throwaway session of a --resume into the session it resumed."""
        self.flush_events()  # the phantom's start may still wait in self.rows
        self.facts.absorb(self.conn, phantom, into, now=self.now)
        self.sessions.pop(phantom, None)
        self.aliases = {k: (into if v == phantom else v) for k, v in self.aliases.items()}
        self.fresh_starts = {k: v for k, v in self.fresh_starts.items() if v != phantom}

    def _create_session(self, wanted_id: str | None, env: Envelope, cols: EventColumns, project: ProjectLocation) -> str:
        session_id = self.facts.adopt(self.conn, wanted_id=wanted_id, agent=env.agent,
                                      agent_session_id=cols.agent_session_id, workspace=cols.cwd, project=project,
                                      now=self.now)
        self.created.add(session_id)
        return session_id

    def _paired_duration(self, session_id: str, cols: EventColumns, env: Envelope) -> int | None:
        """A Post's duration from its Pre; a late Pre fills in the duration of its Post instead."""
        if cols.tool_use_id is None:
            return None
        pending = [self.rows[i] for i in self.tool_rows.get((session_id, cols.tool_use_id), ())]
        if cols.kind in ("PostToolUse", "PostToolUseFailure"):
            pre = next((r for r in pending if r[_KIND] == "PreToolUse"), None)
            started = pre[_OCCURRED_AT] if pre else self._stored_partner_time(session_id, cols.tool_use_id)
            return None if started is None else _ms_between(started, env.occurred_at)
        if cols.kind == "PreToolUse":
            for row in pending:
                if row[_KIND] in ("PostToolUse", "PostToolUseFailure") and row[_DURATION] is None:
                    row[_DURATION] = _ms_between(env.occurred_at, row[_OCCURRED_AT])
            post = events.tool_use_partner(self.conn, session_id, cols.tool_use_id, ("PostToolUse", "PostToolUseFailure"))
            if post is not None and post["duration_ms"] is None:
                events.set_duration(self.conn, post["id"], _ms_between(env.occurred_at, post["occurred_at"]))
        return None

    def _stored_partner_time(self, session_id: str, tool_use_id: str) -> str | None:
        pre = events.tool_use_partner(self.conn, session_id, tool_use_id, ("PreToolUse",))
        return None if pre is None else pre["occurred_at"]

    def _state(self, session_id: str) -> _SessionState:
        state = self.sessions.get(session_id)
        if state is None:
            row = sessions.get(self.conn, session_id)
            assert row is not None
            activity = ActivityState(row["activity"], row["activity_at"], row["error"], row["termination_reason"],
                                     row["ended_at"], row["error_at"])
            state = self.sessions[session_id] = _SessionState(row, activity, row["last_event_at"])
        return state

    def _apply(self, session_id: str, env: Envelope, cols: EventColumns) -> None:
        state = self._state(session_id)
        state.activity = apply_event(state.activity, cols.kind, env.payload, env.occurred_at)
        newest = state.last_event_at is None or env.occurred_at >= state.last_event_at
        if newest:
            state.last_event_at = env.occurred_at
            self._follow_runtime(state, env)
        row, changes = state.row, state.changes
        if row["workspace_path"] is None and cols.cwd and "workspace_path" not in changes:
            changes["workspace_path"] = cols.cwd
        prompt = env.payload.get("prompt")
        if row["title"] is None and "title" not in changes and cols.kind == "UserPromptSubmit" and isinstance(prompt, str) and prompt.strip():
            changes["title"] = " ".join(prompt.split())[:120]

    @staticmethod
    def _follow_runtime(state: _SessionState, env: Envelope) -> None:
        """The newest event names where the agent runs now (a --resume may have moved it)."""
        def now(name: str) -> Any:
            return state.changes.get(name, state.row[name])

        current = Runtime(now("runtime"), now("runtime_handle"), now("pid"))
        new = runtime_after_event(current, tmux_pane=env.tmux_pane, pid=env.pid)
        if new == current:
            return
        state.changes.update({"runtime": new.kind, "runtime_handle": new.handle, "pid": new.pid})
        if (new.kind, new.handle) != (current.kind, current.handle):
            state.changes["is_alive"] = None  # a new handle is unproven until the reaper probes it

    def flush_sessions(self) -> None:
        """One UPDATE per touched session: its final facts, and the status the FactWriter derives from them."""
        for session_id, state in self.sessions.items():
            a = state.activity
            self.facts.write(self.conn, session_id, {
                **state.changes,
                "activity": a.activity, "activity_at": a.activity_at, "error": a.error, "error_at": a.error_at,
                "termination_reason": a.termination_reason, "ended_at": a.ended_at,
                "last_event_at": state.last_event_at, "updated_at": self.now,
            }, now=self.now, row=state.row)


def _runtime_key(env: Envelope) -> tuple[str, object] | None:
    """Who sent an event: the agent process (its pid), else its tmux pane."""
    if env.pid is not None:
        return (env.agent, env.pid)
    if env.tmux_pane:
        return (env.agent, env.tmux_pane)
    return None


def _ms_between(start: str, end: str) -> int:
    return max(0, round((seconds_from_iso(end) - seconds_from_iso(start)) * 1000))


def _envelope_json(env: Envelope) -> dict[str, Any]:
    return {
        "uid": env.uid, "agent": env.agent, "occurred_at": env.occurred_at, "session": env.session,
        "runtime": {"tmux_pane": env.tmux_pane, "pid": env.pid}, "payload": env.payload,
    }
