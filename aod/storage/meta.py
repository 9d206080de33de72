"""SQL of the `meta` table."""

from __future__ import annotations

import apsw


def get(conn: apsw.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def put(conn: apsw.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 (key, value))


def db_epoch(conn: apsw.Connection) -> str:
    epoch = get(conn, "db_epoch")
    if epoch is None:
        raise apsw.Error("meta.db_epoch is missing: the database was not migrated")
    return epoch


def new_db_epoch(conn: apsw.Connection) -> str:
    """Give the file a new epoch (a restored backup): every SSE cursor of its past becomes foreign."""
    import secrets

    epoch = secrets.token_hex(8)  # the shape 0001_schema gives it: 16 hex digits
    conn.execute("UPDATE meta SET value = ? WHERE key = 'db_epoch'", (epoch,))
    return epoch


def retention_floor(conn: apsw.Connection) -> int:
    return int(get(conn, "retention_floor") or 0)


def raise_retention_floor(conn: apsw.Connection, seq: int) -> None:
    """Move the floor up to `seq`; never down (a cursor once refused must stay refused)."""
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('retention_floor', ?) ON CONFLICT (key) DO UPDATE"
        " SET value = CAST(max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
        (str(seq),),
    )
