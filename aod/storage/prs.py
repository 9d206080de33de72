"""SQL of the `prs`, `pr_checks` and `pr_comments` tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import apsw

from aod.storage.rows import dicts, one, scalar_int


def status_rows(conn: apsw.Connection, session_id: str) -> list[dict[str, Any]]:
    """The session's PRs, with only the columns its status is derived from."""
    return dicts(conn.execute(
        "SELECT state, draft, review_decision, mergeability, ci_state FROM prs WHERE session_id = ?", (session_id,)
    ))


def for_session(conn: apsw.Connection, session_id: str) -> list[dict[str, Any]]:
    """The session's PRs, each with every check run it had and its comments (the session detail)."""
    return [_with_details(conn, pr)
            for pr in dicts(conn.execute("SELECT * FROM prs WHERE session_id = ? ORDER BY number", (session_id,)))]


def get(conn: apsw.Connection, url: str) -> dict[str, Any] | None:
    pr = one(conn.execute("SELECT * FROM prs WHERE url = ?", (url,)))
    return None if pr is None else _with_details(conn, pr)


def _with_details(conn: apsw.Connection, pr: dict[str, Any]) -> dict[str, Any]:
    pr["checks"] = dicts(conn.execute("SELECT * FROM pr_checks WHERE pr_url = ? ORDER BY created_at, name", (pr["url"],)))
    pr["comments"] = comments(conn, pr["url"])
    return pr


def comments(conn: apsw.Connection, pr_url: str) -> list[dict[str, Any]]:
    return dicts(conn.execute("SELECT * FROM pr_comments WHERE pr_url = ? ORDER BY created_at, comment_id", (pr_url,)))


def for_sessions(conn: apsw.Connection, session_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each session's PRs, each with the checks of its head commit and its comments (3 queries)."""
    found: dict[str, list[dict[str, Any]]] = {sid: [] for sid in session_ids}
    if not session_ids:
        return found
    marks = ", ".join("?" for _ in session_ids)
    ids = list(session_ids)
    by_url = {}
    for pr in dicts(conn.execute(f"SELECT * FROM prs WHERE session_id IN ({marks}) ORDER BY number", ids)):
        pr["checks"], pr["comments"] = [], []
        by_url[pr["url"]] = pr
        found[pr["session_id"]].append(pr)
    if not by_url:
        return found
    for check in dicts(conn.execute(
        "SELECT c.pr_url, c.name, c.status, c.url, c.commit_sha FROM pr_checks c JOIN prs p"
        f" ON p.url = c.pr_url AND p.head_sha = c.commit_sha WHERE p.session_id IN ({marks}) ORDER BY c.name", ids,
    )):
        by_url[check.pop("pr_url")]["checks"].append(check)
    for comment in dicts(conn.execute(
        f"SELECT c.* FROM pr_comments c JOIN prs p ON p.url = c.pr_url WHERE p.session_id IN ({marks})"
        " ORDER BY c.created_at, c.comment_id", ids,
    )):
        by_url[comment["pr_url"]]["comments"].append(comment)
    return found


def check_runs(conn: apsw.Connection, pr_url: str, name: str, limit: int) -> list[str]:
    """The statuses of the last `limit` runs of one check (one run per commit), newest first."""
    rows = conn.execute(
        "SELECT status FROM pr_checks WHERE pr_url = ? AND name = ? ORDER BY created_at DESC, commit_sha DESC LIMIT ?",
        (pr_url, name, limit),
    )
    return [status for (status,) in rows]


def upsert(conn: apsw.Connection, session_id: str, pr: dict[str, Any], now: str) -> None:
    conn.execute(
        "INSERT INTO prs (url, session_id, number, state, draft, review_decision, mergeability, ci_state,"
        " head_sha, title, updated_at) VALUES (:url, :session_id, :number, :state, :draft, :review_decision,"
        " :mergeability, :ci_state, :head_sha, :title, :now)"
        " ON CONFLICT (url) DO UPDATE SET session_id = excluded.session_id, number = excluded.number,"
        " state = excluded.state, draft = excluded.draft, review_decision = excluded.review_decision,"
        " mergeability = excluded.mergeability, ci_state = excluded.ci_state, head_sha = excluded.head_sha,"
        " title = excluded.title, updated_at = excluded.updated_at",
        {**{k: pr.get(k) for k in ("url", "number", "state", "review_decision", "mergeability", "ci_state",
                                   "head_sha", "title")},
         "draft": int(bool(pr.get("draft"))), "session_id": session_id, "now": now},
    )


def upsert_checks(conn: apsw.Connection, pr_url: str, checks: Iterable[dict[str, Any]], now: str) -> None:
    # created_at stays the first sighting of (check, commit): it orders the runs for the CI brake.
    conn.executemany(
        "INSERT INTO pr_checks (pr_url, name, commit_sha, status, url, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (pr_url, name, commit_sha) DO UPDATE SET status = excluded.status, url = excluded.url,"
        " updated_at = excluded.updated_at"
        " WHERE pr_checks.status IS NOT excluded.status OR pr_checks.url IS NOT excluded.url",
        [(pr_url, c["name"], c["commit_sha"], c["status"], c.get("url"), now, now) for c in checks],
    )


def replace_comments(conn: apsw.Connection, pr_url: str, items: Sequence[dict[str, Any]], now: str) -> None:
    """The PR's comments become exactly `items`: an observation is a snapshot of them."""
    ids = [c["comment_id"] for c in items]
    marks = ", ".join("?" for _ in ids)
    conn.execute(
        f"DELETE FROM pr_comments WHERE pr_url = ? AND comment_id NOT IN ({marks})" if ids
        else "DELETE FROM pr_comments WHERE pr_url = ?",
        [pr_url, *ids],
    )
    conn.executemany(
        "INSERT INTO pr_comments (pr_url, comment_id, author, path, line, body, resolved, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (pr_url, comment_id) DO UPDATE SET author = excluded.author, path = excluded.path,"
        " line = excluded.line, body = excluded.body, resolved = excluded.resolved",
        [(pr_url, c["comment_id"], c.get("author"), c.get("path"), c.get("line"), c.get("body"),
          int(bool(c.get("resolved"))), now) for c in items],
    )


def sessions_with_open_prs(conn: apsw.Connection) -> set[str]:
    return {sid for (sid,) in conn.execute("SELECT DISTINCT session_id FROM prs WHERE state = 'open'")}


def open_count(conn: apsw.Connection, session_id: str) -> int:
    return scalar_int(conn.execute("SELECT count(*) FROM prs WHERE session_id = ? AND state = 'open'", (session_id,)))

