"""Each hostile input of issue 11 against a real daemon, one by one, with what it must become."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import apsw
import orjson
import pytest

from aod.config import StorageConfig
from aod.ingest.envelope import EARLIEST_OCCURRED_AT, InvalidItem, parse_envelope
from aod.ingest.ingestor import Ingestor
from aod.ingest.normalize import dead_letter_text, event_columns, stored_payload
from aod.ingest.service import IngestSettings
from aod.ingest.spool import SpoolIngester
from aod.sessions.facts import FactWriter
from aod.shown import shown
from aod.storage.database import open_storage
from aod.storage.keyset import BadCursor, decode, encode
from aod.timefmt import iso_from_seconds, normalize_iso, now_iso
from tests.conftest import hook_payload
from tests.helpers.daemon import Daemon, SocketClient
from tests.test_hook_daemon import run_hook, spool_files

DEEP = "[" * 300 + "]" * 300


def payload(**extra: Any) -> dict[str, Any]:
    return hook_payload("PreToolUse") | extra


def body_with(raw_value: str, **fields: Any) -> bytes:
    """A hook payload whose `x` is `raw_value` as JSON text (what json.dumps cannot write)."""
    return json.dumps(payload(**fields) | {"x": "@@"}).replace('"@@"', raw_value).encode()


def dead_letters(daemon: Daemon) -> list[tuple[str, str, str]]:
    with sqlite3.connect(f"file:{daemon.data_dir / 'aod.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT source, error, body FROM dead_letters ORDER BY id").fetchall()


def stored_uids(daemon: Daemon) -> set[str]:
    with sqlite3.connect(f"file:{daemon.data_dir / 'aod.db'}?mode=ro", uri=True) as db:
        return {uid for (uid,) in db.execute("SELECT uid FROM events")}


# --- pure rules -------------------------------------------------------------------------------


def test_timestamps_keep_their_width_before_year_1000() -> None:
    assert normalize_iso("0999-06-01T00:00:00Z") == "0999-06-01T00:00:00.000000Z"
    assert iso_from_seconds(-31_000_000_000) == "0987-08-25T16:53:20.000000Z"
    assert len(iso_from_seconds(-61_000_000_000)) == len(now_iso())


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"])
def test_the_ends_of_the_calendar_with_an_offset_are_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="outside the years"):
        normalize_iso(text)


@pytest.mark.parametrize("stamp", ["2554-01-01T00:00:00Z", "0999-06-01T00:00:00Z", "1970-01-01T00:00:00Z", 10**19])
def test_an_unbelievable_client_clock_is_replaced_by_the_arrival_time(stamp: object) -> None:
    received = now_iso()
    env = parse_envelope({"agent": "claude-code", "occurred_at": stamp, "payload": {}}, received_at=received)
    assert env.occurred_at == received


def test_a_believable_clock_is_kept() -> None:
    received = now_iso()
    hour_ahead = iso_from_seconds(time.time() + 3600)
    for stamp in (EARLIEST_OCCURRED_AT, "2020-05-06T07:08:09Z", hour_ahead):
        assert parse_envelope({"agent": "a", "occurred_at": stamp, "payload": {}}, received_at=received).occurred_at == normalize_iso(stamp)


def test_payloads_the_store_cannot_hold_are_invalid_items() -> None:
    with pytest.raises(InvalidItem, match="duration_ms"):
        event_columns({"duration_ms": 2**63})
    with pytest.raises(InvalidItem, match="duration_ms"):
        event_columns({"duration_ms": 1.9e19})
    assert event_columns({"duration_ms": 2**63 - 1}).duration_ms == 2**63 - 1
    deep = orjson.loads(DEEP)
    with pytest.raises(InvalidItem, match="nesting"):
        stored_payload({"x": deep}, 65536)


@pytest.mark.parametrize("pane", ["-t", "%1\0", "%", "%" * 300, "%1;kill-server", 7])
def test_only_a_tmux_pane_id_may_name_a_pane(pane: object) -> None:
    # The pane is later handed to `tmux -t`: an option or a NUL there would be tmux's problem, then ours.
    with pytest.raises(InvalidItem, match="tmux_pane"):
        parse_envelope({"agent": "a", "runtime": {"tmux_pane": pane}, "payload": {}}, received_at=now_iso())
    ok = {"agent": "a", "runtime": {"tmux_pane": "%12"}, "payload": {}}
    assert parse_envelope(ok, received_at=now_iso()).tmux_pane == "%12"


def test_a_dead_letter_keeps_what_cannot_be_written_whole() -> None:
    text = dead_letter_text({"payload": orjson.loads("[" * 1000 + "]" * 1000)})
    assert text.startswith('{"payload":[[[') and "nested deeper than 200 levels" in text
    assert orjson.loads(text)  # valid JSON, whatever it held


def test_shown_never_repeats_a_whole_value() -> None:
    assert shown(orjson.loads(DEEP)) == "an array of 1 items"
    assert shown({"a": 1, "b": 2}) == "an object of 2 keys"
    assert len(shown("x" * 10_000)) == 80
    assert shown(10**1000) == "a number of over 300 digits"
    assert shown(12) == "12"


@pytest.mark.parametrize("values", [[2**63], [-(2**63) - 1], [{"a": 1}], [True], [1.5], ["1"], [1, 2], "x"])
def test_a_cursor_of_the_wrong_shape_is_a_bad_cursor(values: Any) -> None:
    with pytest.raises(BadCursor):
        decode(base64.urlsafe_b64encode(json.dumps(values).encode()).decode(), (int,))


def test_a_cursor_the_server_issued_decodes() -> None:
    assert decode(encode([2**63 - 1]), (int,)) == [2**63 - 1]
    assert decode(encode(["2024", "p-1"]), (str, str)) == ["2024", "p-1"]


# --- the daemon ---------------------------------------------------------------------------------


def test_a_deep_hook_payload_is_a_400_with_a_dead_letter_and_not_spooled(daemon: Daemon) -> None:
    reply = daemon.post("/v1/hooks/claude-code", body_with(DEEP))
    assert reply.status == 400 and "nesting" in reply.body["error"]["message"]
    # The hook client sees the 400 as an answer (nothing to retry): no spool file.
    assert run_hook(daemon, body_with(DEEP)).returncode == 0
    assert spool_files(daemon) == []
    letters = dead_letters(daemon)
    assert [(s, "nesting" in e) for s, e, _ in letters] == [("hook:claude-code", True), ("api", True)]
    assert all("[[[" in b for _, _, b in letters)
    assert daemon.get("/healthz").status == 200


def test_one_unstorable_item_does_not_fail_its_batch(daemon: Daemon) -> None:
    good = [{"uid": f"ok-{i}", "agent": "claude-code", "payload": payload(tool_use_id=f"t{i}")} for i in range(3)]
    bad_duration = {"uid": "dur", "agent": "claude-code", "payload": payload(duration_ms=2**63)}
    text = json.dumps({"events": [good[0], bad_duration, good[1], {"uid": "deep", "payload": "@@"}, good[2]]})
    reply = daemon.post("/v1/events", text.replace('"@@"', '{"x": ' + DEEP + "}").encode())
    assert reply.status == 202
    assert reply.body["accepted"] == 3
    assert [r["index"] for r in reply.body["rejected"]] == [1, 3]
    assert stored_uids(daemon) == {"ok-0", "ok-1", "ok-2"}
    errors = [e for _, e, _ in dead_letters(daemon)]
    assert "duration_ms" in errors[0] and "nesting" in errors[1]


def test_a_stamp_from_the_far_future_does_not_freeze_its_session(daemon: Daemon) -> None:
    first = {"uid": "future", "agent": "claude-code", "occurred_at": "2554-01-01T00:00:00Z", "payload": payload()}
    assert daemon.post("/v1/events", first).status == 202
    later = {"uid": "later", "agent": "claude-code", "payload": payload(hook_event_name="Stop", tool_use_id=None)}
    assert daemon.post("/v1/events", later).status == 202
    (session,) = daemon.get("/v1/sessions").body["items"]
    assert session["last_event_at"] < iso_from_seconds(time.time() + 60)
    assert session["activity"] == "idle"  # the later Stop counted: nothing is pinned in 2554


@pytest.mark.parametrize("path", [
    "/v1/events/9223372036854775808", "/v1/events/" + "9" * 5000,
])
def test_ids_beyond_int64_are_not_found(api: SocketClient, path: str) -> None:
    assert api.get(path).status == 404


@pytest.mark.parametrize("query", [
    "since=9999-12-31T23:59:59-05:00", "until=0001-01-01T00:00:00%2B01:00",
    "cursor=" + base64.urlsafe_b64encode(b"[9223372036854775808]").decode(),
    "cursor=" + base64.urlsafe_b64encode(b'[{"a":1}]').decode(),
])
def test_bad_query_values_are_a_400(api: SocketClient, query: str) -> None:
    reply = api.get(f"/v1/events?{query}")
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_parameter"
    cursor = base64.urlsafe_b64encode(b'[[1],{"b":2}]').decode()
    assert api.get(f"/v1/sessions?cursor={cursor}").status == 400


@pytest.mark.parametrize("body", [
    {"project": "/tmp", "command": ["sh", "-c", "a\0b"]}, {"project": "/tmp", "command": ["sh"], "name": "n\0"},
    {"project": "/tmp/\0x", "command": ["sh"]},
])
def test_a_nul_in_a_spawn_request_is_a_400(api: SocketClient, body: dict[str, Any]) -> None:
    reply = api.post("/v1/sessions", body)
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_parameter"
    assert api.get("/v1/sessions").body["items"] == []


def test_a_stream_cursor_of_5000_digits_is_a_400(api: SocketClient) -> None:
    assert api.get("/v1/stream?after=" + "9" * 5000).status == 400


def _tcp(daemon: Daemon, headers: dict[str, str | bytes]) -> int:
    return daemon.tcp("GET", "/v1/sessions", headers=headers).status


def test_bearer_in_any_case_and_non_ascii_credentials(daemon: Daemon) -> None:
    token = (daemon.data_dir / "token").read_text().strip()
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        assert _tcp(daemon, {"Authorization": f"{scheme} {token}"}) == 200, scheme
    assert _tcp(daemon, {"Authorization": b"Bearer \xff\xfe" + token.encode()}) == 401
    assert _tcp(daemon, {"Authorization": b"\xc3"}) == 401
    assert _tcp(daemon, {"Cookie": b"aod_session=\xff\xfe"}) == 401
    assert _tcp(daemon, {"Authorization": f"Basic {token}"}) == 401


# --- a poisoned spool -------------------------------------------------------------------------


def _spool(directory: Path, name: str, body: bytes) -> None:
    directory.mkdir(mode=0o700, exist_ok=True)
    (directory / name).write_bytes(body)


def test_a_poisoned_spool_never_holds_back_good_files_or_stops_the_daemon(daemon: Daemon) -> None:
    daemon.stop()
    spool = daemon.data_dir / "spool"
    good = {f"{n:03d}-good.json": f"spool-good-{n}" for n in range(0, 600, 7)}  # beyond one batch of 500 files
    poison = {
        "001-deep.json": json.dumps({"uid": "p1", "agent": "claude-code", "payload": "@@"}).replace('"@@"', '{"x": ' + DEEP + "}"),
        "002-duration.json": json.dumps({"uid": "p2", "agent": "claude-code", "payload": payload(duration_ms=2**64 - 1)}),
        "003-not-json.json": "{half an envelope",
        "004-array.json": "[1, 2, 3]",
        "005-future-int.json": json.dumps({"uid": "p5", "agent": "claude-code", "payload": payload(duration_ms=10**30)}),
    }
    for name, uid in good.items():
        _spool(spool, name, json.dumps({"uid": uid, "agent": "claude-code", "payload": payload(tool_use_id=uid)}).encode())
    for name, text in poison.items():
        _spool(spool, name, text.encode())

    daemon.start()  # must come up: nothing in the spool may stop it
    assert set(good.values()) <= stored_uids(daemon)
    assert sorted(p.name for p in (spool / "rejected").iterdir()) == sorted(poison)
    assert spool_files(daemon) == []
    status = daemon.status()["spool"]
    assert (status["backlog"], status["rejected"]) == (0, len(poison))
    letters = dead_letters(daemon)
    assert len(letters) == len(poison) and {s for s, _, _ in letters} == {"spool"}

    # While running: a poison file among new good ones, picked up by the watcher.
    _spool(spool, "700-deep.json", poison["001-deep.json"].replace('"p1"', '"p7"').encode())
    _spool(spool, "701-good.json", json.dumps({"uid": "late-good", "agent": "claude-code", "payload": payload(tool_use_id="late")}).encode())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and spool_files(daemon):
        time.sleep(0.05)
    assert "late-good" in stored_uids(daemon)
    assert (spool / "rejected" / "700-deep.json").exists()

    # A restart finds nothing to redo: no dead letter twice, and it starts at once.
    daemon.stop()
    daemon.start()
    assert len(dead_letters(daemon)) == len(poison) + 1
    assert daemon.status()["spool"]["rejected"] == len(poison) + 1


class _FailsOnMarker(Ingestor):
    """An ingestor with a bug that only one file's content triggers (what the one-by-one path is for)."""

    async def ingest(self, raw_items: list[object], **kw: Any) -> Any:
        if any(isinstance(i, dict) and i.get("uid") == "trips-a-bug" for i in raw_items):
            raise KeyError("a bug")
        return await super().ingest(raw_items, **kw)


async def test_a_file_that_fails_its_whole_batch_is_set_aside_alone(data_dir: Path) -> None:
    storage = await open_storage(data_dir, StorageConfig())
    try:
        ingestor = _FailsOnMarker(storage.db, IngestSettings(max_payload_bytes=65536, dedup_window=5),
                                  FactWriter(lambda: 600.0))
        spool = data_dir / "spool"
        for n in range(5):
            uid = "trips-a-bug" if n == 2 else f"fine-{n}"
            _spool(spool, f"{n}.json", json.dumps({"uid": uid, "agent": "claude-code", "payload": payload(tool_use_id=uid)}).encode())
        ingester = SpoolIngester(spool, ingestor)
        assert await ingester.drain() == 5
        assert [p.name for p in (spool / "rejected").iterdir()] == ["2.json"]
        assert list(spool.glob("*.json")) == []
        rows = await storage.db.read(lambda c: c.execute("SELECT uid FROM events ORDER BY uid").fetchall())
        assert [r[0] for r in rows] == ["fine-0", "fine-1", "fine-3", "fine-4"]
        letters = await storage.db.read(lambda c: c.execute("SELECT source, error FROM dead_letters").fetchall())
        assert letters == [("spool", "could not ingest spool file 2.json: KeyError: 'a bug'")]
    finally:
        await storage.close()


class _DiskFull(Ingestor):
    async def ingest(self, raw_items: list[object], **kw: Any) -> Any:
        raise apsw.FullError("database or disk is full")


async def test_a_full_disk_keeps_every_spool_file_for_later(data_dir: Path) -> None:
    storage = await open_storage(data_dir, StorageConfig())
    try:
        spool = data_dir / "spool"
        for n in range(3):
            _spool(spool, f"{n}.json", json.dumps({"uid": f"kept-{n}", "agent": "claude-code", "payload": payload()}).encode())
        ingester = SpoolIngester(spool, _DiskFull(storage.db, IngestSettings(65536, 5), FactWriter(lambda: 600.0)))
        with pytest.raises(apsw.FullError):
            await ingester.drain()
        assert await ingester.drain_safely() == 0
        # No file is at fault: none is set aside or dead-lettered, all wait for space.
        assert sorted(p.name for p in spool.glob("*.json")) == ["0.json", "1.json", "2.json"]
        assert not (spool / "rejected").exists()
        assert await storage.db.read(lambda c: c.execute("SELECT count(*) FROM dead_letters").fetchone()[0]) == 0
    finally:
        await storage.close()
