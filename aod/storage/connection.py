"""Opening apsw connections with aod's pragmas."""

from __future__ import annotations

from pathlib import Path

import apsw

from aod.storage.rows import scalar_text

SYNCHRONOUS_MODES = ("normal", "full")


def open_connection(path: Path, *, synchronous: str = "normal", query_only: bool = False) -> apsw.Connection:
    """Open `path` (which must already be migrated) and set the per-connection pragmas.

    Pragmas live here rather than in migrations because most of them are per connection;
    journal_mode=WAL is persistent but setting it at every open also converts a file that
    was created elsewhere.
    """
    if synchronous not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, got {synchronous!r}")
    # Readers open read-write too (and refuse writes with query_only): a SQLITE_OPEN_READONLY
    # connection cannot recover a WAL file left behind by a crash.
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    conn.set_busy_timeout(5000)
    if not query_only:
        mode = scalar_text(conn.execute("PRAGMA journal_mode=WAL"))
        if mode is None or mode.lower() != "wal":
            raise apsw.Error(f"could not switch {path} to WAL (journal_mode={mode})")
        # After a reader pinned an old snapshot the WAL may have grown; shrink it on reset.
        conn.execute("PRAGMA journal_size_limit=67108864")
    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA cache_size=-16000")
    if query_only:
        conn.execute("PRAGMA query_only=ON")
    return conn
