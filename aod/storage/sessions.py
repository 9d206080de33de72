"""SQL of the `sessions` and `session_aliases` tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apsw

from aod.storage import keyset
from aod.storage.rows import one

COLUMNS = (
    "id", "project_id", "agent", "agent_session_id", "status", "activity", "activity_at", "error",
    "is_alive", "termination_reason", "runtime", "runtime_handle", "pid", "workspace_path", "branch",
    "title", "created_at", "updated_at", "last_event_at", "ended_at",
)
# Fields a caller may change through `update`; the whitelist keeps column names out of input.
UPDATABLE = frozenset(COLUMNS) - {"id", "created_at"}


def get(conn: apsw.Connection, session_id: str) -> dict[str, Any] | None:
    return one(conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)))


def exists(conn: apsw.Connection, session_id: str) -> bool:
    return conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is not None


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
        query.where("(updated_at, id) < (?, ?)", *keyset.decode(cursor, 2))
    return query.page(conn, "updated_at DESC, id DESC", limit, lambda row: [row["updated_at"], row["id"]])


def counts_by_status(conn: apsw.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM sessions GROUP BY status").fetchall())


def count(conn: apsw.Connection) -> int:
    return conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
