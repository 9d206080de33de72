"""The engine's transactions on a real SQLite file: what one decision writes, and which sessions
are looked at. (The daemon tests drive the same code through `aod serve`.)"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import apsw
import pytest

from aod.config import NotifierConfig, parse_config
from aod.reactions.engine import apply, evaluate
from aod.scm.observation import parse_observation
from aod.scm.observer import _watched_sessions
from aod.scm.record import record_observations
from aod.sessions.facts import FactWriter
from aod.storage import nudges
from aod.timefmt import iso_from_seconds, seconds_from_iso
from tests.helpers.rows import T0, seed_session

NOW = seconds_from_iso(T0)


def red(conn: apsw.Connection, session_id: str, sha: str) -> None:
    obs = parse_observation({"url": f"https://gh/{session_id}/pr/1", "number": 1, "state": "open", "head_sha": sha,
                             "checks": [{"name": "unit", "status": "failed", "url": f"https://ci/{sha}"}]})
    record_observations(conn, FactWriter(lambda: 600.0), session_id, [obs], now=T0)


def test_a_nudge_decision_writes_the_tracker_and_the_outbox_row_together(conn: apsw.Connection) -> None:
    seed_session(conn, "proj-1")
    red(conn, "proj-1", "aaa")
    config = parse_config({})
    with conn:
        applied = apply(conn, config, NOW, ["proj-1"])
    assert (applied.nudges, applied.escalations) == (1, 0)
    (tracker,) = conn.execute("SELECT reaction, attempts, first_at, last_signature FROM reaction_trackers").fetchall()
    assert tracker == ("ci-failed", 1, T0, "https://gh/proj-1/pr/1@aaa")
    (nudge,) = conn.execute("SELECT reaction, signature, status, message FROM nudges").fetchall()
    assert nudge[:3] == ("ci-failed", "https://gh/proj-1/pr/1@aaa", "pending") and "https://ci/aaa" in nudge[3]
    # Deciding again on the same facts records nothing more.
    assert evaluate(conn, config, NOW + 1, ["proj-1"]).decisions == []
    assert nudges.due(conn, iso_from_seconds(NOW + 1))[0]["signature"] == "https://gh/proj-1/pr/1@aaa"


def test_an_escalation_writes_one_delivery_per_routed_notifier(conn: apsw.Connection) -> None:
    seed_session(conn, "proj-1")
    red(conn, "proj-1", "aaa")
    base = parse_config({})
    config = replace(
        base,
        reactions=MappingProxyType({**base.reactions, "ci-failed": replace(base.reactions["ci-failed"], retries=0)}),
        notifiers=MappingProxyType({n: NotifierConfig(name=n, type="desktop") for n in ("a", "b", "c")}),
        routing=MappingProxyType({"urgent": ("a", "b"), "action": ("c",), "info": ()}),
    )
    with conn:
        applied = apply(conn, config, NOW, ["proj-1"])
    assert (applied.nudges, applied.escalations) == (0, 1)
    (escalation,) = conn.execute("SELECT id, reaction, priority FROM escalations").fetchall()
    assert escalation[1:] == ("ci-failed", "urgent")
    deliveries = conn.execute("SELECT escalation_id, notifier, status, next_attempt_at FROM deliveries ORDER BY notifier")
    assert deliveries.fetchall() == [(escalation[0], "a", "pending", T0), (escalation[0], "b", "pending", T0)]
    assert conn.execute("SELECT escalated_at FROM reaction_trackers").fetchall() == [(T0,)]


def test_a_failing_transaction_leaves_no_half_decision(conn: apsw.Connection) -> None:
    seed_session(conn, "proj-1")
    red(conn, "proj-1", "aaa")
    conn.execute("CREATE TRIGGER no_nudges BEFORE INSERT ON nudges BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(apsw.ConstraintError, match="disk full"), conn:
        apply(conn, parse_config({}), NOW, ["proj-1"])
    assert conn.execute("SELECT count(*) FROM reaction_trackers").fetchone()[0] == 0


def test_which_sessions_are_looked_at(conn: apsw.Connection) -> None:
    day = 24 * 3600
    for sid, age in (("proj-1", 60), ("proj-2", 2 * day), ("proj-3", 2 * day), ("proj-4", 2 * day)):
        seed_session(conn, sid)
        conn.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (iso_from_seconds(NOW - age), sid))
    # proj-3: a quiet session whose timer still runs; proj-4: quiet but its PR is open.
    conn.execute("INSERT INTO reaction_trackers (session_id, reaction, attempts, first_at) VALUES ('proj-3', 'stuck', 0, ?)",
                 (T0,))
    conn.execute("INSERT INTO prs (url, session_id, number, state, updated_at) VALUES ('u', 'proj-4', 1, 'open', ?)", (T0,))
    conn.execute("UPDATE sessions SET termination_reason = 'killed' WHERE id = 'proj-1'")
    from aod.storage.trackers import candidate_sessions

    assert [s["id"] for s in candidate_sessions(conn, iso_from_seconds(NOW - day))] == ["proj-1", "proj-3"]
    assert [s["id"] for s in _watched_sessions(conn, iso_from_seconds(NOW - day))] == ["proj-4"]
