"""A real `aod serve` forwarding to a real PostgreSQL under sustained ingest: the team store ends
up with exactly the local rows, after a SIGKILL of the daemon and after a SIGKILL of PostgreSQL."""

from __future__ import annotations

import json
import signal
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from aod import doctor
from aod.storage.forward import COLUMNS
from tests.conftest import hook_payload
from tests.helpers.daemon import Daemon, request
from tests.helpers.postgres import Postgres

BATCH = 20
TS = ("occurred_at", "received_at", "created_at", "updated_at", "activity_at", "error_at", "last_event_at",
      "ended_at", "acked_at", "archived_at")


def _config(dsn: str) -> str:
    return f'[forward.postgres]\ndsn = "{dsn}"\nopen_for = "2s"\nbatch_size = 500\n'


class Ingest:
    """Clients posting batches of events to the daemon until stopped; each request's latency kept."""

    def __init__(self, daemon: Daemon, clients: int = 3) -> None:
        self.daemon = daemon
        self.stop = threading.Event()
        self.acked = 0
        self.latencies: list[tuple[float, float]] = []  # (start, seconds)
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(c,), daemon=True) for c in range(clients)]

    def __enter__(self) -> Ingest:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(15)

    def _client(self, c: int) -> None:
        base = hook_payload("PostToolUse.bash")
        n = 0
        while not self.stop.is_set():
            events = [{"agent": "claude-code", "payload": base | {"tool_use_id": f"c{c}-{n}-{i}",
                                                                  "session_id": f"agent-{c}-{n // 200}"}}
                      for i in range(BATCH)]
            n += 1
            started = time.monotonic()
            try:
                reply = request(self.daemon.socket, "POST", "/v1/events", {"events": events}, timeout=5)
            except OSError:
                time.sleep(0.05)  # the daemon is gone (killed): wait for the test to restart it
                continue
            elapsed = time.monotonic() - started
            if reply.status == 202:
                with self._lock:
                    self.acked += reply.body["accepted"]
                    self.latencies.append((started, elapsed))
            time.sleep(0.005)

    def wait_acked(self, n: int, timeout: float = 30) -> None:
        _until(lambda: self.acked >= n, timeout, f"only {self.acked} events acknowledged")


def _doctor_facts(forward: dict[str, Any]) -> doctor.Facts:
    return doctor.Facts(cli_version="0", uid=0, socket_path="/s", data_dir="/d", config_path=None,
                        status={"forward": forward})


def _until(condition: Callable[[], Any], timeout: float, message: str | Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(message() if callable(message) else message)


def _caught_up(daemon: Daemon, timeout: float = 60) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        f = daemon.status()["forward"]
        return f if f["lag_rows"] == 0 and f["circuit"] == "closed" and f["cursor"] == f["head"] else None
    return _until(done, timeout, lambda: f"not caught up: {daemon.status()['forward']}")


def _local(db: Path) -> tuple[str, dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        machine = c.execute("SELECT value FROM meta WHERE key = 'machine_id'").fetchone()[0]
        tables = {}
        for table, columns in COLUMNS.items():
            rows = c.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            tables[table] = {_key(table, columns, r): _norm(columns, r) for r in rows}
    return machine, tables


def _team(dsn: str, machine: str) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    tables = {}
    with psycopg.connect(dsn) as conn:
        for table, columns in COLUMNS.items():
            shown = ", ".join(
                f"""to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""" if c in TS
                else f"{c}::text" if c == "payload" else c for c in columns)
            rows = conn.execute(f"SELECT {shown} FROM aod.{table} WHERE machine_id = %s", (machine,)).fetchall()
            keyed = {_key(table, columns, r): _norm(columns, r) for r in rows}
            assert len(keyed) == len(rows), f"aod.{table} holds a row twice"
            tables[table] = keyed
    return tables


def _key(table: str, columns: tuple[str, ...], row: tuple[Any, ...]) -> tuple[Any, ...]:
    n = {"pr_checks": 3, "usage": 2}.get(table, 1)
    return tuple(row[:n])


def _norm(columns: tuple[str, ...], row: tuple[Any, ...]) -> tuple[Any, ...]:
    out = []
    for c, v in zip(columns, row, strict=True):
        if c == "payload":
            v = json.loads(v)
        elif isinstance(v, bool):
            v = int(v)
        out.append(v)
    return tuple(out)


def _assert_same(daemon: Daemon, dsn: str) -> int:
    machine, local = _local(daemon.data_dir / "aod.db")
    team = _team(dsn, machine)
    for table in COLUMNS:
        missing = set(local[table]) - set(team[table])
        extra = set(team[table]) - set(local[table])
        assert not missing and not extra, f"{table}: {len(missing)} missing, {len(extra)} extra"
        differ = [k for k in local[table] if local[table][k] != team[table][k]]
        assert not differ, f"{table}: {local[table][differ[0]]} != {team[table][differ[0]]}"
    return len(local["events"])


def test_forwarding_under_sustained_ingest_equals_the_local_rows(data_dir: Path, aod_env: dict[str, str],
                                                                team_dsn: str) -> None:
    daemon = Daemon(data_dir, aod_env, _config(team_dsn)).start()
    try:
        with Ingest(daemon) as ingest:
            ingest.wait_acked(3000)
            moving = daemon.status()["forward"]
            assert moving["enabled"] and moving["forwarded_rows"] > 0, moving  # it ships while ingest goes on
        forward = _caught_up(daemon)
        assert forward["last_error"] is None and forward["tenant"] == "postgres"
        metrics = daemon.get("/metrics").body
        assert 'aod_forward_circuit{state="closed"} 1.0' in metrics and "aod_forward_lag_rows 0.0" in metrics
    finally:
        daemon.stop()
    assert _assert_same(daemon, team_dsn) == ingest.acked


def test_sigkill_of_the_daemon_mid_stream_loses_and_duplicates_nothing(data_dir: Path, aod_env: dict[str, str],
                                                                      team_dsn: str) -> None:
    daemon = Daemon(data_dir, aod_env, _config(team_dsn)).start()
    with Ingest(daemon) as ingest:
        ingest.wait_acked(1500)
        _until(lambda: daemon.status()["forward"]["forwarded_rows"] > 0, 10, "nothing forwarded")
        daemon.kill()
        daemon.start()
        acked = ingest.acked
        ingest.wait_acked(acked + 500)
    _caught_up(daemon)
    daemon.stop()
    assert _assert_same(daemon, team_dsn) >= ingest.acked


def test_postgres_killed_mid_stream_opens_the_circuit_and_ingest_does_not_notice(
        data_dir: Path, aod_env: dict[str, str], team_dsn: str, postgres: Postgres) -> None:
    daemon = Daemon(data_dir, aod_env, _config(team_dsn)).start()
    try:
        with Ingest(daemon) as ingest:
            ingest.wait_acked(1000)
            _until(lambda: daemon.status()["forward"]["forwarded_rows"] > 0, 10, "nothing forwarded")
            killed_at = time.monotonic()
            postgres.kill9()
            try:
                opened = _until(lambda: daemon.status()["forward"]["circuit"] == "open", 20,
                                lambda: f"the circuit did not open: {daemon.status()['forward']}")
                assert opened
                down = daemon.status()["forward"]
                assert down["last_error"] and down["lag_rows"] > 0, down
                verdict = doctor.forward(_doctor_facts(down))
                assert verdict.status == "fail" and "circuit is open" in verdict.detail, verdict
                ingest.wait_acked(ingest.acked + 1000)
                outage_until = time.monotonic()
            finally:
                postgres.start()
        before = [s for at, s in ingest.latencies if at < killed_at]
        during = [s for at, s in ingest.latencies if killed_at <= at < outage_until]
        assert len(during) >= 20
        # Ingest never waits on PostgreSQL: its latency with the team store gone is what it was before.
        assert statistics.median(during) < 2 * statistics.median(before) + 0.01, (
            statistics.median(before), statistics.median(during))
        forward = _caught_up(daemon)  # the probe closes the circuit, then the backlog goes
        assert forward["failures"] >= 5
        assert doctor.forward(_doctor_facts(forward)).status == "ok"
    finally:
        daemon.stop()
    assert _assert_same(daemon, team_dsn) == ingest.acked


def test_a_stopped_postgres_holds_neither_ingest_nor_the_daemons_exit(
        data_dir: Path, aod_env: dict[str, str], team_dsn: str, postgres: Postgres) -> None:
    daemon = Daemon(data_dir, aod_env, _config(team_dsn)).start()
    base = hook_payload("PostToolUse.bash")

    def post(n: int) -> float:
        started = time.monotonic()
        reply = daemon.post("/v1/events", {"events": [{"agent": "claude-code", "payload": base | {
            "tool_use_id": f"t{n}-{i}"}} for i in range(BATCH)]})
        assert reply.status == 202 and reply.body["accepted"] == BATCH
        return time.monotonic() - started

    post(0)
    _caught_up(daemon)
    postgres.signal_all(signal.SIGSTOP)
    try:
        assert max(post(n) for n in range(1, 6)) < 1.0  # acknowledged as ever
        _until(lambda: daemon.status()["forward"]["lag_rows"] > 0, 5, "no lag while PostgreSQL is stopped")
        time.sleep(0.3)  # the forwarder now waits on the stopped server
        started = time.monotonic()
        assert daemon.stop(signal.SIGTERM, timeout=10) == 0
        assert time.monotonic() - started < 5, "SIGTERM must end the daemon within 5 s"
    finally:
        postgres.signal_all(signal.SIGCONT)
    daemon.start()
    _caught_up(daemon)
    daemon.stop()
    assert _assert_same(daemon, team_dsn) == 6 * BATCH
