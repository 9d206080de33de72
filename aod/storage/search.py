"""SQL of the full-text index `event_search` (aod/migrations/0010_search.sql, 0011_search_in_batches.sql).

The search indexer job (aod/lookback/indexer.py) adds events to the index in batches after a
cursor (`index_next`); the migrations' triggers take deleted events out of it.
Hits come newest first, keyset paged on the event id: FTS5 walks a term's doclist in rowid order,
so a page costs the same on the millionth event as on the first, which ranking by bm25 (every
match scored, then sorted) would not.

More sources (issue 17's transcript messages): a second external-content index over their own
table, queried by a `search_*` function of the same shape, its hits naming a `message_id`
instead of an `event_id`; the route merges by `occurred_at`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import apsw

from aod.storage import keyset

# snippet() marks a hit with these control characters, which no indexed text holds unescaped
# (JSON strings cannot carry them raw); the marks become <mark> after the text is HTML-escaped.
_OPEN, _CLOSE = "\x02", "\x03"
_SNIPPET_TOKENS = 16

_COLUMNS = (
    "SELECT e.id AS event_id, e.session_id, e.occurred_at, e.kind,"
    f" snippet(event_search, 0, char(2), char(3), '…', {_SNIPPET_TOKENS}) AS snippet"
)
# Which side the join walks: the index's matches newest first (rowid order), each looked up in
# `events` for the filters; or, for one session, its events newest first (events_by_session),
# each looked up in the index by rowid. A common word matches a large share of all events, a
# session holds few of them: walking the matches to keep one session's would read them all
# (bench/search.py, a word in 17% of 1M events: 155 ms against 2.4 ms). CROSS JOIN fixes the order.
_BY_MATCH = " FROM event_search JOIN events e ON e.id = event_search.rowid", "event_search.rowid"
_BY_SESSION = " FROM events e CROSS JOIN event_search ON event_search.rowid = e.id", "e.id"


class BadQuery(ValueError):
    """The FTS5 query cannot be run: its text says why (SQLite's own message)."""


@dataclass(frozen=True)
class SearchFilter:
    query: str
    session: str | None = None
    project: str | None = None
    kinds: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None


def search(conn: apsw.Connection, flt: SearchFilter, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of hits for `flt.query` (FTS5 syntax, bound as a parameter, never spliced)."""
    source, key = _BY_SESSION if flt.session else _BY_MATCH
    select = _COLUMNS + source + (" JOIN sessions s ON s.id = e.session_id" if flt.project else "")
    query = (
        keyset.Query(select)
        .where("event_search MATCH ?", flt.query)
        .where_if(flt.session, "e.session_id = ?")
        .where_if(flt.project, "s.project_id = ?")
        .where_in("e.kind", flt.kinds)
        .where_if(flt.since, "e.occurred_at >= ?")
        .where_if(flt.until, "e.occurred_at < ?")
    )
    if cursor:
        (before_id,) = keyset.decode(cursor, (int,))
        query.where(f"{key} < ?", before_id)
    try:
        # Parsed here once whatever the plan: walking a session with no events would never parse it.
        conn.execute("SELECT 1 FROM event_search WHERE event_search MATCH ? AND rowid = 0", (flt.query,)).fetchall()
        items, next_cursor = query.page(conn, f"{key} DESC", limit, lambda row: [row["event_id"]])
    except apsw.SQLError as exc:
        # The statement is fixed and every other value is bound: what SQLite refuses is the query.
        raise BadQuery(str(exc).removeprefix("SQLError: ")) from None
    for item in items:
        item["snippet"] = highlighted(item["snippet"])
    return items, next_cursor


def highlighted(text: str) -> str:
    """snippet()'s text, HTML-escaped, with each hit in <mark>…</mark>."""
    return html.escape(text, quote=False).replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>")



# --- the index follows the events in batches, after a cursor (aod/migrations/0011) -----------

CURSOR_KEY = "search_indexed_through"


def unindexed(conn: apsw.Connection) -> bool:
    """Whether an event after the cursor waits to be indexed."""
    row = conn.execute("SELECT 1 FROM events WHERE id > ? LIMIT 1", (_cursor(conn),)).fetchone()
    return row is not None


def index_next(conn: apsw.Connection, limit: int) -> int:
    """Index the next `limit` events after the cursor (those with text; the others are only
    passed) and move the cursor past them, in the caller's write transaction; how many were passed."""
    through = _cursor(conn)
    row = conn.execute("SELECT count(*), max(id) FROM (SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?)",
                       (through, limit)).fetchone()
    passed, last = (int(row[0]), row[1]) if row else (0, None)
    if last is None:
        return 0
    # The cursor first: the index's content view shows only the events up to it.
    conn.execute("UPDATE meta SET value = ? WHERE key = ?", (str(last), CURSOR_KEY))
    conn.execute("INSERT INTO event_search (rowid, body) SELECT id, body FROM event_search_text WHERE id > ? AND id <= ?",
                 (through, last))
    return passed


def _cursor(conn: apsw.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (CURSOR_KEY,)).fetchone()
    return int(row[0]) if row else 0
