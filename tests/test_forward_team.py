"""`aod team sessions|stats` (the real CLI) on a real team store that two machines forwarded to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import apsw

from aod.config import PostgresForwardConfig
from aod.forward.job import Forwarder
from aod.storage.database import open_storage
from aod.timefmt import now_iso
from tests.conftest import run_aod
from tests.helpers.postgres import Postgres, member_role


def _machine(conn: apsw.Connection, who: str) -> None:
    now = now_iso()
    conn.execute("INSERT INTO projects (id, path, name, created_at) VALUES ('api', '/src/api', 'api', ?)", (now,))
    for n, status in enumerate(("needs_input", "ci_failed", "working", "stuck"), start=1):
        conn.execute("INSERT INTO sessions (id, project_id, agent, status, title, created_at, updated_at)"
                     " VALUES (?, 'api', 'claude-code', ?, ?, ?, ?)", (f"api-{n}", status, f"{who} {n}", now,
                                                                       f"{now[:-10]}{n:02d}.000000Z"))
    url = f"https://github.com/acme/{who}-repo/pull/1"
    conn.execute("INSERT INTO prs (url, session_id, number, state, updated_at) VALUES (?, 'api-2', 1, 'open', ?)",
                 (url, now))
    for check in ("lint", "test"):
        conn.execute("INSERT INTO pr_checks (pr_url, name, commit_sha, status, created_at, updated_at)"
                     " VALUES (?, ?, 'abc', 'failed', ?, ?)", (url, check, now, now))
    for i in range(3 if who == "alice" else 1):
        conn.execute("INSERT INTO usage (message_id, request_id, session_id, model, input_tokens, output_tokens,"
                     " cache_creation_input_tokens, cache_creation_1h_tokens, cache_read_input_tokens, cost_usd,"
                     " occurred_at) VALUES (?, 'r', 'api-1', 'claude-x', 100, 10, 0, 0, 0, 0.5, ?)", (f"m{i}", now))


async def _forward_as(tmp_path: Path, who: str, dsn: str) -> None:
    storage = await open_storage(tmp_path / who)
    try:
        await storage.db.write(lambda c: _machine(c, who))
        options = PostgresForwardConfig(dsn=dsn)
        fwd = Forwarder(storage.db, lambda: options)
        await fwd.step()
        assert fwd.last_error is None and fwd.forwarded > 0
    finally:
        await storage.close()


def _team(*args: str, env: dict[str, str]) -> Any:
    done = run_aod("team", *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_team_sessions_and_stats_across_machines(tmp_path: Path, postgres: Postgres, team_dsn: str,
                                                       aod_env: dict[str, str]) -> None:
    dbname = team_dsn.rsplit("/", 1)[1]
    for role in ("alice", "bob"):
        member_role(postgres, role)
        await _forward_as(tmp_path, role, postgres.dsn(role=role, db=dbname))
    member_role(postgres, "lead", team=True)
    lead = ("--dsn", postgres.dsn(role="lead", db=dbname))

    # Keyset pages of 2: every session needing a human exactly once, newest update first.
    seen: list[dict[str, Any]] = []
    cursor: list[str] = []
    for _ in range(5):
        page = _team("sessions", *lead, "--limit", "2", *cursor, env=aod_env)
        seen += page["items"]
        if not page["next_cursor"]:
            break
        cursor = ["--cursor", page["next_cursor"]]
    assert sorted((s["tenant_id"], s["id"]) for s in seen) == [
        (who, sid) for who in ("alice", "bob") for sid in ("api-1", "api-2", "api-4")]
    assert [s["updated_at"] for s in seen] == sorted((s["updated_at"] for s in seen), reverse=True)
    assert {s["project"] for s in seen} == {"api"}

    # A member sees only their own.
    own = _team("sessions", "--dsn", postgres.dsn(role="alice", db=dbname), env=aod_env)
    assert {s["tenant_id"] for s in own["items"]} == {"alice"} and len(own["items"]) == 3

    stats = _team("stats", *lead, env=aod_env)
    assert [(r["repository"], r["failed_checks"], r["prs"], r["people"]) for r in stats["ci_failures"]] == [
        ("https://github.com/acme/alice-repo", 2, 1, 1), ("https://github.com/acme/bob-repo", 2, 1, 1)]
    today = now_iso()[:10]
    assert [(r["person"], r["day"], r["messages"], r["tokens"], r["cost_usd"]) for r in stats["cost"]] == [
        ("alice", today, 3, 330, 1.5), ("bob", today, 1, 110, 0.5)]
    text = run_aod("team", "stats", *lead, env=aod_env)
    assert text.returncode == 0 and "acme/bob-repo" in text.stdout and "cost per person per day" in text.stdout

    bad = run_aod("team", "sessions", *lead, "--cursor", "nonsense", env=aod_env)
    assert bad.returncode == 2 and "not a cursor" in bad.stderr
    unreachable = run_aod("team", "stats", "--dsn", "postgresql://x@127.0.0.1:1/none", env=aod_env)
    assert unreachable.returncode == 1 and "team store failed" in unreachable.stderr
