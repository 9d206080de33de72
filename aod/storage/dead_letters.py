"""SQL of the `dead_letters` table: input that could not become an event, kept verbatim."""

from __future__ import annotations

import apsw

from aod.storage.rows import scalar_int

# A dead letter keeps enough of the body to diagnose it, never an unbounded amount.
MAX_BODY = 256 * 1024


def add(conn: apsw.Connection, source: str, error: str, body: str | None, now: str) -> int:
    conn.execute(
        "INSERT INTO dead_letters (source, received_at, error, body) VALUES (?, ?, ?, ?)",
        (source, now, error[:2000], None if body is None else body[:MAX_BODY]),
    )
    return conn.last_insert_rowid()


def count(conn: apsw.Connection) -> int:
    return scalar_int(conn.execute("SELECT count(*) FROM dead_letters"))
