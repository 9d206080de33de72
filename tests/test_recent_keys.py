"""The in-memory dedup window, and that a rolled-back write takes its keys back out."""

from __future__ import annotations

from pathlib import Path

import apsw
import orjson
import pytest

from aod.ingest.envelope import parse_envelope
from aod.ingest.recent_keys import RecentKeys
from aod.ingest.service import IngestSettings, Prepared, Request, ingest, prepare
from aod.sessions.facts import FactWriter
from aod.sessions.projects import ProjectLocation
from aod.timefmt import iso_from_seconds
from tests.conftest import FIXTURES

SETTINGS = IngestSettings(max_payload_bytes=65536, dedup_window=5.0)
FACTS = FactWriter(lambda: 600.0)


def test_a_key_is_seen_within_the_window_only() -> None:
    recent = RecentKeys(5.0)
    recent.add("k", 100.0, object())
    assert recent.seen("k", 100.0) and recent.seen("k", 105.0)
    assert not recent.seen("k", 105.1)
    assert not recent.seen("other", 100.0)


def test_expire_drops_old_keys_but_keeps_a_key_seen_again_later() -> None:
    recent = RecentKeys(5.0)
    token = object()
    recent.add("old", 100.0, token)
    recent.add("again", 100.0, token)
    recent.add("again", 104.0, token)
    recent.expire(106.0)
    assert len(recent) == 1
    assert recent.seen("again", 106.0)


def test_forget_removes_exactly_the_keys_of_one_write() -> None:
    recent = RecentKeys(5.0)
    failed, committed = object(), object()
    recent.load([("loaded", 99.0)], now=100.0)
    recent.add("a", 100.0, committed)
    recent.add("b", 100.0, failed)
    recent.add("c", 100.0, failed)
    recent.forget(failed)
    assert [k for k in ("loaded", "a", "b", "c") if recent.seen(k, 100.0)] == ["loaded", "a"]
    recent.discard("a", failed)  # not that write's key: stays
    recent.discard("loaded", failed)
    assert recent.seen("a", 100.0) and recent.seen("loaded", 100.0)
    recent.discard("a", committed)
    assert not recent.seen("a", 100.0)


def test_load_keeps_only_what_is_inside_the_window() -> None:
    recent = RecentKeys(5.0)
    recent.load([("new", 99.0), ("old", 90.0)], now=100.0)
    assert recent.loaded
    assert recent.seen("new", 100.0) and not recent.seen("old", 100.0)
    assert len(recent) == 1


def _prepared(name: str, uid: str) -> Prepared:
    payload = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    envelope = parse_envelope({"uid": uid, "agent": "claude-code", "payload": payload}, received_at=iso_from_seconds(100.0))
    return prepare(0, envelope, ProjectLocation(path="/p", name="p", origin_url=None), SETTINGS)


def test_after_a_failed_commit_forgetting_the_write_lets_its_retry_store_the_event(conn: apsw.Connection) -> None:
    recent = RecentKeys(SETTINGS.dedup_window)
    now = iso_from_seconds(100.0)
    item = _prepared("PreToolUse", "u-1")
    failed = object()
    with pytest.raises(apsw.IOError), conn:  # every item went through, then the COMMIT failed
        ingest(conn, [Request([item], "test", failed)], SETTINGS, FACTS, now=now, recent=recent)
        raise apsw.IOError("disk went away")
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
    assert recent.seen(item.key, 100.0)  # what the Ingestor must undo before it retries
    recent.forget(failed)
    with conn:
        (summary,) = ingest(conn, [Request([item], "test")], SETTINGS, FACTS, now=now, recent=recent)
    assert summary.accepted == 1
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)


def test_an_exception_inside_ingest_forgets_the_keys_it_recorded(conn: apsw.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    recent = RecentKeys(SETTINGS.dedup_window)
    now = iso_from_seconds(100.0)
    item = _prepared("PreToolUse", "u-2")
    from aod.storage import events

    def broken(*_: object) -> None:
        raise apsw.FullError("database or disk is full")

    monkeypatch.setattr(events, "insert_many", broken)
    with pytest.raises(apsw.FullError), conn:
        ingest(conn, [Request([item], "test")], SETTINGS, FACTS, now=now, recent=recent)
    assert len(recent) == 0
    assert not recent.seen(item.key, 100.0)


def test_the_window_is_refilled_from_the_newest_events(db_path: Path, conn: apsw.Connection) -> None:
    with conn:
        ingest(conn, [Request([_prepared("PreToolUse", "u-3")], "test")], SETTINGS, FACTS, now=iso_from_seconds(100.0),
               recent=RecentKeys(SETTINGS.dedup_window))
    fresh = RecentKeys(SETTINGS.dedup_window)  # a restarted daemon
    with conn:
        (summary,) = ingest(conn, [Request([_prepared("PreToolUse", "u-4")], "test")], SETTINGS, FACTS,
                            now=iso_from_seconds(102.0), recent=fresh)
    assert summary.duplicates == 1 and summary.accepted == 0
    later = RecentKeys(SETTINGS.dedup_window)  # restarted after the window passed
    with conn:
        (summary,) = ingest(conn, [Request([_prepared("PreToolUse", "u-5")], "test")], SETTINGS, FACTS,
                            now=iso_from_seconds(106.0), recent=later)
    assert summary.accepted == 1
