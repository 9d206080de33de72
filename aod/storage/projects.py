"""SQL of the `projects` table."""

from __future__ import annotations

import re
from typing import Any

import apsw

from aod.storage.rows import dicts, one, scalar_int

UNKNOWN_PATH = "(unknown)"


def by_path(conn: apsw.Connection, path: str) -> dict[str, Any] | None:
    return one(conn.execute("SELECT * FROM projects WHERE path = ?", (path,)))


def by_id(conn: apsw.Connection, project_id: str) -> dict[str, Any] | None:
    return one(conn.execute("SELECT * FROM projects WHERE id = ?", (project_id,)))


def ensure(conn: apsw.Connection, path: str, name: str, origin_url: str | None, now: str) -> str:
    """The id of the project at `path`, created with a fresh slug if it is new."""
    found = by_path(conn, path)
    if found is not None:
        if origin_url and found["origin_url"] != origin_url:
            conn.execute("UPDATE projects SET origin_url = ? WHERE id = ?", (origin_url, found["id"]))
        known: str = found["id"]
        return known
    base = slug(name)
    project_id, n = base, 1
    while by_id(conn, project_id) is not None:
        n += 1
        project_id = f"{base}-{n}"
    conn.execute(
        "INSERT INTO projects (id, path, name, origin_url, created_at) VALUES (?, ?, ?, ?, ?)",
        (project_id, path, name, origin_url, now),
    )
    return project_id


def take_session_number(conn: apsw.Connection, project_id: str) -> int:
    return scalar_int(conn.execute(
        "UPDATE projects SET next_session_n = next_session_n + 1 WHERE id = ? RETURNING next_session_n - 1",
        (project_id,),
    ))


def listing(conn: apsw.Connection) -> list[dict[str, Any]]:
    return dicts(
        conn.execute(
            "SELECT p.id, p.path, p.name, p.origin_url, p.created_at, p.archived_at,"
            " (SELECT count(*) FROM sessions s WHERE s.project_id = p.id) AS sessions,"
            " (SELECT max(s.updated_at) FROM sessions s WHERE s.project_id = p.id) AS last_active_at"
            " FROM projects p ORDER BY last_active_at DESC NULLS LAST, p.id"
        )
    )


def count(conn: apsw.Connection) -> int:
    return scalar_int(conn.execute("SELECT count(*) FROM projects"))


def slug(name: str) -> str:
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text[:48].rstrip("-") or "project"
