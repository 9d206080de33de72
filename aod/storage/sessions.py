"""SQL of the `sessions` and `session_aliases` tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apsw

from aod.storage import events, keyset, projects
from aod.storage.rows import dicts, grouped_counts, one, scalar_int, scalar_text

COLUMNS = (
    "id", "project_id", "agent", "agent_session_id", "status", "activity", "activity_at", "error", "error_at",
    "is_alive", "termination_reason", "runtime", "runtime_handle", "pid", "workspace_path", "branch",
    "title", "created_at", "updated_at", "last_event_at", "ended_at",
)
# Fields a caller may change through `update`; the whitelist keeps column names out of input.
UPDATABLE = frozenset(COLUMNS) - {"id", "created_at"}


def get(conn: apsw.Connection, session_id: str) -> dict[str, Any] | None:
    return one(conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)))


def exists(conn: apsw.Connection, session_id: str) -> bool:
    return conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is not None


def new_id(conn: apsw.Connection, project_id: str) -> str:
    """The project's next free `{project}-{n}` (a number may be taken by a session named by hand)."""
    while True:
        session_id = f"{project_id}-{projects.take_session_number(conn, project_id)}"
        if not exists(conn, session_id):
            return session_id


def by_alias(conn: apsw.Connection, agent: str, agent_session_id: str) -> str | None:
    row = conn.execute(
        "SELECT session_id FROM session_aliases WHERE agent = ? AND agent_session_id = ?", (agent, agent_session_id)
    ).fetchone()
    return None if row is None else row[0]


def add_alias(conn: apsw.Connection, agent: str, agent_session_id: str, session_id: str, now: str) -> None:
    conn.execute(
        "INSERT INTO session_aliases (agent, agent_session_id, session_id, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (agent, agent_session_id) DO UPDATE SET session_id = excluded.session_id"
        " WHERE session_aliases.session_id IS NOT excluded.session_id",
        (agent, agent_session_id, session_id, now),
    )


def create(conn: apsw.Connection, fields: dict[str, Any]) -> None:
    names = [k for k in fields if k in COLUMNS]
    conn.execute(
        f"INSERT INTO sessions ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
        [fields[k] for k in names],
    )


def update(conn: apsw.Connection, session_id: str, fields: dict[str, Any]) -> None:
    names = [k for k in fields if k in UPDATABLE]
    if len(names) != len(fields):
        raise ValueError(f"not updatable: {sorted(set(fields) - UPDATABLE)}")
    if names:
        conn.execute(
            f"UPDATE sessions SET {', '.join(f'{k} = ?' for k in names)} WHERE id = ?",
            [*(fields[k] for k in names), session_id],
        )


@dataclass(frozen=True)
class SessionFilter:
    statuses: tuple[str, ...] = ()
    project: str | None = None
    agent: str | None = None
    active: bool = False


def listing(conn: apsw.Connection, flt: SessionFilter, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest activity first; keyset on (updated_at, id) so pages stay stable under writes."""
    query = (
        keyset.Query("SELECT * FROM sessions")
        .where_in("status", flt.statuses)
        .where_if(flt.project, "project_id = ?")
        .where_if(flt.agent, "agent = ?")
    )
    if flt.active:
        query.where("termination_reason IS NULL")
    if cursor:
        query.where("(updated_at, id) < (?, ?)", *keyset.decode(cursor, (str, str)))
    return query.page(conn, "updated_at DESC, id DESC", limit, lambda row: [row["updated_at"], row["id"]])


def counts_by_status(conn: apsw.Connection) -> dict[str, int]:
    return grouped_counts(conn.execute("SELECT status, count(*) FROM sessions GROUP BY status"))


def count(conn: apsw.Connection) -> int:
    return scalar_int(conn.execute("SELECT count(*) FROM sessions"))


def count_live(conn: apsw.Connection) -> int:
    """Sessions that have not ended (what `aod sessions --active` lists)."""
    return scalar_int(conn.execute("SELECT count(*) FROM sessions WHERE termination_reason IS NULL"))


# --- lifecycle: the reaper, and --resume's throwaway start ---------------------------------------

_SAME_RUNTIME = "(CASE WHEN ?1 IS NOT NULL THEN s.pid = ?1 ELSE s.runtime = 'tmux' AND s.runtime_handle = ?2 END)"


def live_for_process(conn: apsw.Connection, agent: str, pid: int, *, pane: str | None) -> str | None:
    """The live session whose agent runs as `pid` (in `pane`, when the event names one).

    A session that ran in another tmux pane is another process that once had this pid.
    """
    row = conn.execute(
        "SELECT id FROM sessions WHERE agent = ? AND pid = ? AND termination_reason IS NULL"
        " AND (?3 IS NULL OR runtime IS NOT 'tmux' OR runtime_handle IS NULL OR runtime_handle = ?3)"
        " ORDER BY updated_at DESC, id DESC LIMIT 1",
        (agent, pid, pane),
    ).fetchone()
    return None if row is None else row[0]


def phantom_start(conn: apsw.Connection, agent: str, *, pid: int | None, pane: str | None, since: str) -> str | None:
    """A session created since `since` by this agent process whose only events are fresh starts,
    and that nothing else refers to yet: what the throwaway half of a --resume leaves behind."""
    row = conn.execute(
        f"SELECT s.id FROM sessions s WHERE s.agent = ?3 AND s.created_at >= ?4 AND s.termination_reason IS NULL"
        f" AND {_SAME_RUNTIME}"
        " AND EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id)"
        " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id"
        "   AND NOT (e.kind = 'SessionStart' AND json_extract(e.payload, '$.source') = 'startup'))"
        " AND NOT EXISTS (SELECT 1 FROM prs p WHERE p.session_id = s.id)"
        " AND NOT EXISTS (SELECT 1 FROM reaction_trackers t WHERE t.session_id = s.id)"
        " AND NOT EXISTS (SELECT 1 FROM escalations x WHERE x.session_id = s.id)"
        " ORDER BY s.created_at DESC LIMIT 1",
        (pid, pane, agent, since),
    ).fetchone()
    return None if row is None else row[0]


def absorb(conn: apsw.Connection, phantom_id: str, into_id: str) -> bool:
    """Move a throwaway session's events and agent ids to `into_id`, then delete it.

    The caller marks it ended first, so a client that saw it appear on the stream sees it end
    (the change log records inserts and updates only). If something still refers to it, it
    stays, ended; the answer says whether it is gone.
    """
    events.move_to_session(conn, phantom_id, into_id)
    conn.execute("UPDATE session_aliases SET session_id = ? WHERE session_id = ?", (into_id, phantom_id))
    try:
        with conn:
            conn.execute("DELETE FROM sessions WHERE id = ?", (phantom_id,))
    except apsw.ConstraintError:
        return False
    return True


def probe_targets(conn: apsw.Connection) -> list[dict[str, Any]]:
    """Sessions the reaper probes: not terminated, with a runtime handle."""
    return dicts(conn.execute(
        "SELECT id, runtime, runtime_handle, is_alive, last_event_at, created_at FROM sessions"
        " WHERE termination_reason IS NULL AND runtime_handle IS NOT NULL"
    ))


def next_silent(conn: apsw.Connection, before: str) -> str | None:
    """The oldest newest-event time of the working sessions not yet silent since `before`: the next
    one that time alone may make stuck."""
    return scalar_text(conn.execute(
        "SELECT min(last_event_at) FROM sessions WHERE status = 'working' AND termination_reason IS NULL"
        " AND last_event_at >= ?",
        (before,),
    ))


def silent_working(conn: apsw.Connection, before: str) -> list[dict[str, Any]]:
    """Working sessions whose newest event is older than `before`: time alone may make them stuck."""
    return dicts(conn.execute(
        "SELECT * FROM sessions WHERE status = 'working' AND termination_reason IS NULL AND last_event_at < ?",
        (before,),
    ))
