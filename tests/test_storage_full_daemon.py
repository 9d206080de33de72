"""A real `aod serve` whose disk fills up, or whose file system turns read-only (DESIGN §6):
ingest answers 507, /readyz 503, /v1/status and the log say so, the hook client spools, nothing
acknowledged is lost, and a full disk that gets space back recovers without any client writing."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aod.storage.health import free_bytes
from tests.conftest import aod_command, run_aod
from tests.helpers.daemon import Daemon
from tests.helpers.mounts import ext4, tmpfs
from tests.helpers.waiting import wait_for

SMALL = "s" * 16_000  # one event that fills a few pages
LARGE = "L" * 60_000  # under ingest.max_payload_bytes (64 KiB): stored whole
SHOWN = {"storage_full": "FULL", "storage_readonly": "READ-ONLY"}  # in `aod status`


def event(uid: str, text: str) -> dict[str, Any]:
    payload = {"hook_event_name": "PostToolUse", "session_id": "disk-test", "tool_name": "Bash",
               "tool_use_id": f"toolu_{uid}", "tool_input": {"command": "true"}, "tool_response": {"stdout": text}}
    return {"uid": uid, "agent": "claude-code", "payload": payload}


def run_hook(env: dict[str, str], payload: dict[str, Any]) -> tuple[subprocess.CompletedProcess[bytes], float]:
    started = time.monotonic()
    done = subprocess.run([*aod_command(), "hook"], input=json.dumps(payload).encode(), capture_output=True,
                          env=env | {"AOD_HOOK_TIMEOUT": "2s"}, timeout=20)
    return done, time.monotonic() - started


def log_lines(daemon: Daemon, text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in daemon.log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if text in line["msg"]]


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    # Closed at once: the file system under it is unmounted when the test ends.
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def stored_uids(db: Path) -> set[str]:
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    return {uid for (uid,) in query(db, "SELECT uid FROM events")}


def assert_unavailable(daemon: Daemon, code: str) -> None:
    """What a client sees while it lasts: 507 on both ingest routes, 503 /readyz, the state in /v1/status."""
    for reply in (daemon.post("/v1/events", {"events": [event(f"{code}-{i}", LARGE) for i in range(4)]}),
                  daemon.post("/v1/hooks/claude-code", event(f"{code}-hook", LARGE)["payload"])):
        assert reply.status == 507, reply.body
        assert reply.body["error"]["code"] == code and reply.body["error"]["message"]
    ready = daemon.get("/readyz")
    assert (ready.status, ready.body["error"]["code"]) == (503, code)
    status = daemon.status()
    assert status["ready"] is False
    assert status["storage"]["state"] == code.removeprefix("storage_")
    assert status["storage"]["since"] and status["storage"]["last_error"]
    assert daemon.get("/healthz").status == 200  # alive, and reads go on
    assert daemon.get("/v1/events?limit=1").status == 200
    shown = run_aod("status", env=daemon.env)
    assert shown.returncode == 0, shown.stderr
    assert f"{SHOWN[code]} since " in shown.stdout


# --- a full disk ---------------------------------------------------------------------------------


@pytest.fixture
def full_disk(short_dir: Path, aod_env: dict[str, str]) -> Iterator[Daemon]:
    """A daemon whose data dir is a 24 MiB tmpfs. Its spool/ is a tmpfs of its own, so the hook
    client can still spool while the database's disk is full (on one disk it cannot: see below)."""
    with tmpfs(short_dir / "data", "24m") as data, tmpfs(data / "spool", "2m"):
        daemon = Daemon(data, aod_env)
        try:
            yield daemon
        finally:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.kill()


def test_a_full_disk_answers_507_spools_and_recovers_by_itself(full_disk: Daemon) -> None:
    daemon = full_disk.start()
    data = daemon.data_dir
    # Sessions to kill once the disk is full: see below.
    spares = [daemon.post("/v1/events", {"uid": f"spare-{n}", "agent": "claude-code", "session": f"spare-{n}",
                                         "payload": {"hook_event_name": "SessionStart", "session_id": f"spare-{n}"}})
              for n in range(8)]
    assert [r.status for r in spares] == [202] * 8
    filler = data / "filler"
    with open(filler, "wb") as f:  # leave 1 MiB for the events to fill
        f.write(b"\0" * (free_bytes(data) - (1 << 20)))
    accepted: list[str] = []
    refused: list[str] = []
    for n in range(500):
        uid = f"fill-{n}"
        reply = daemon.post("/v1/events", event(uid, SMALL))
        if reply.status != 202:
            assert (reply.status, reply.body["error"]["code"]) == (507, "storage_full"), reply.body
            refused.append(uid)
            break
        accepted.append(uid)
    assert refused, "the disk never filled"

    assert_unavailable(daemon, "storage_full")
    refused += [f"storage_full-{i}" for i in range(4)]
    # Any route that writes, not only ingest: killing a session answers 507 and kills nothing.
    # The WAL is reused from its start, so what is left of it may still hold a kill's few pages
    # (fewer than any refused event's): spare sessions are killed until that room is used up.
    for n in range(8):
        killed = daemon.post(f"/v1/sessions/spare-{n}/kill")
        if killed.status != 200:
            break
    assert (killed.status, killed.body["error"]["code"]) == (507, "storage_full")
    session = {"id": f"spare-{n}"}
    assert daemon.status()["storage"]["free_bytes"] < 64 << 10

    # The hook client takes 507 as "not kept": it spools (here, on the spool's own file system).
    done, took = run_hook(daemon.env, event("hook", LARGE)["payload"] | {"marker": "spooled-while-full"})
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    spooled = list((data / "spool").glob("*.json"))
    assert len(spooled) == 1 and b"spooled-while-full" in spooled[0].read_bytes()
    # With its spool on the full disk too, it cannot keep the event, and still exits 0 at once.
    elsewhere = data / "other-data-dir"
    done, took = run_hook(daemon.env | {"AOD_DATA_DIR": str(elsewhere)}, event("lost", LARGE)["payload"])
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert took < 5
    assert not list((elsewhere / "spool").glob("*.json"))

    # No write at all from here until /readyz says so, not even the spool's: the probe notices.
    aside = spooled[0].rename(spooled[0].with_name("." + spooled[0].name))  # dotted: never read
    filler.unlink()
    wait_for(lambda: daemon.get("/readyz").status == 200, timeout=10, message="/readyz 200 after space returned")
    aside.rename(spooled[0])
    storage = daemon.status()["storage"]
    assert storage["state"] == "ok" and storage["last_error"] is None
    assert daemon.get(f"/v1/sessions/{session['id']}").body["status"] != "killed"
    reply = daemon.post("/v1/events", {"events": [event(f"after-{i}", LARGE) for i in range(4)]})
    assert (reply.status, reply.body["accepted"]) == (202, 4)
    accepted += [f"after-{i}" for i in range(4)]
    # The spooled event goes in once the database takes writes again (the spool is rescanned).
    wait_for(lambda: not list((data / "spool").glob("*.json")), timeout=20, message="the spool drained")

    assert len(log_lines(daemon, "the database cannot be written")) == 1
    assert not log_lines(daemon, "ingest batch failed")  # a full disk is not retried request by request
    ended = log_lines(daemon, "the database is writable again")
    assert len(ended) == 1 and ended[0]["storage_was"] == "full"
    assert daemon.stop() == 0, daemon.log.read_text()
    uids = stored_uids(data / "aod.db")
    assert set(accepted) <= uids  # nothing acknowledged is missing
    assert not set(refused) & uids  # and 507 meant: not stored
    assert query(data / "aod.db", "SELECT count(*) FROM events WHERE payload LIKE '%spooled-while-full%'") == [(1,)]


# --- a file system that turns read-only ----------------------------------------------------------


def socket_outside(daemon: Daemon, directory: Path) -> Daemon:
    """The socket where aod puts it by default ($XDG_RUNTIME_DIR), not on the failing disk."""
    daemon.socket = directory / "aod.sock"
    daemon.env["AOD_SOCKET"] = str(daemon.socket)
    return daemon


def test_a_file_system_gone_read_only_answers_507_and_keeps_what_was_acknowledged(
    short_dir: Path, aod_env: dict[str, str]
) -> None:
    with ext4(short_dir / "disk.img", short_dir / "data") as fs:
        # synchronous=full: every 202 is on the disk before the file system fails (with the default,
        # normal, an OS crash or a disk that fails may lose the last commits; SQLite documents it).
        daemon = socket_outside(Daemon(fs.path, aod_env, config_text='[storage]\nsynchronous = "full"\n'), short_dir)
        try:
            daemon.start()
            reply = daemon.post("/v1/events", {"events": [event(f"before-{i}", SMALL) for i in range(5)]})
            assert (reply.status, reply.body["accepted"]) == (202, 5)
            fs.trigger_error()  # what ext4 does on a disk error with errors=remount-ro
            assert fs.is_read_only()

            assert_unavailable(daemon, "storage_readonly")
            # The spool is on the same file system: the event cannot be kept; the hook still exits 0.
            done, took = run_hook(daemon.env, event("hook", SMALL)["payload"])
            assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
            assert took < 5
            # Still degraded after a few probe intervals, and the daemon stops cleanly.
            time.sleep(2.5)
            assert daemon.get("/readyz").status == 503
            assert daemon.stop() == 0, daemon.log.read_text()
        finally:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.kill()
        began = log_lines(daemon, "the database cannot be written")
        assert len(began) == 1 and began[0]["storage"] == "readonly"
        # A person repairs the file system; the next daemon has every acknowledged event.
        fs.repair_and_remount()
        assert {f"before-{i}" for i in range(5)} <= stored_uids(fs.path / "aod.db")
        again = socket_outside(Daemon(fs.path, aod_env), short_dir).start()
        try:
            assert again.post("/v1/events", event("after", SMALL)).status == 202
            assert again.status()["storage"]["state"] == "ok"
            assert again.stop() == 0
        finally:
            if again.proc is not None and again.proc.poll() is None:
                again.kill()
