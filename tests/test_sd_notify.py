"""systemd's notify protocol against a real NOTIFY_SOCKET datagram socket that the test binds."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sqlite3
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aod.sd_notify import EventRate, socket_address, status_message, watchdog_interval
from tests.helpers.daemon import Daemon, request


class Listener:
    """The service manager's end: every datagram with the monotonic time it arrived."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(socket_address(address))
        self.received: list[tuple[float, str]] = []

    def next(self, timeout: float) -> str | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except TimeoutError:
            return None
        self.received.append((time.monotonic(), data))
        return data

    def until(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            got = self.next(left)
            if got is not None and got.startswith(prefix):
                return got
        raise AssertionError(f"no {prefix} within {timeout}s; got {[m for _, m in self.received]}")

    def collect(self, seconds: float) -> list[tuple[float, str]]:
        start = len(self.received)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.next(left)
        return self.received[start:]


@pytest.fixture
def path_listener(short_dir: Path) -> Iterator[Listener]:
    listener = Listener(str(short_dir / "notify.sock"))
    yield listener
    listener.sock.close()


@pytest.fixture
def abstract_listener() -> Iterator[Listener]:
    listener = Listener(f"@aod-test-{os.getpid()}-{time.monotonic_ns()}")
    yield listener
    listener.sock.close()


def start(data_dir: Path, env: dict[str, str], listener: Listener, watchdog_usec: int = 1_000_000) -> Daemon:
    return Daemon(data_dir, {**env, "NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": str(watchdog_usec)}).start(
        wait=False)


def watchdogs(messages: list[tuple[float, str]]) -> list[float]:
    return [at for at, m in messages if m == "WATCHDOG=1"]


def test_ready_after_readyz_then_watchdog_status_and_stopping(data_dir: Path, aod_env: dict[str, str],
                                                              path_listener: Listener) -> None:
    daemon = start(data_dir, aod_env, path_listener)
    try:
        path_listener.until("READY=1", 15)
        # READY is sent right after the daemon became ready: /readyz must say so already.
        assert request(daemon.socket, "GET", "/readyz").status == 200
        before_ready = [m for _, m in path_listener.received[:-1]]
        # A new data dir has every migration pending: more start-up time was asked for first.
        assert any(m.startswith("EXTEND_TIMEOUT_USEC=") for m in before_ready), before_ready
        assert "WATCHDOG=1" not in before_ready

        pings = watchdogs(path_listener.collect(2.6))
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert 4 <= len(pings) <= 6, pings  # WATCHDOG_USEC=1 s: every 0.5 s
        assert 0.4 <= statistics.median(gaps) <= 0.65, gaps

        event = {"agent": "claude-code", "session": "sd1",
                 "payload": {"hook_event_name": "UserPromptSubmit", "session_id": "a-sd1", "cwd": "/tmp"}}
        assert daemon.post("/v1/events", event).status == 202
        status = path_listener.until("STATUS=1 live session,", 7)
        assert status.endswith(" events/min") and not status.endswith(" 0 events/min"), status

        daemon.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        path_listener.until("STOPPING=1", 5)
        assert daemon.stop() == 0
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()

    # The schema is current now: a restart asks for no extra time.
    again = start(data_dir, aod_env, path_listener)
    try:
        path_listener.received.clear()
        path_listener.until("READY=1", 15)
        assert not any(m.startswith("EXTEND_TIMEOUT_USEC=") for _, m in path_listener.received)
    finally:
        again.stop()


def test_no_watchdog_while_the_writer_is_wedged(data_dir: Path, aod_env: dict[str, str],
                                                abstract_listener: Listener) -> None:
    daemon = start(data_dir, aod_env, abstract_listener)
    try:
        abstract_listener.until("READY=1", 15)
        abstract_listener.until("WATCHDOG=1", 2)
        # Another process holds the database's write lock: the writer's BEGIN IMMEDIATE waits in
        # SQLite's busy timeout, a real wedge with no seam in the daemon.
        blocker = sqlite3.connect(data_dir / "aod.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        locked_at = time.monotonic()
        held = abstract_listener.collect(2.5)
        # A round trip that completed just before the lock may still report in its tick.
        late = [at - locked_at for at in watchdogs(held) if at - locked_at > 0.6]
        assert late == [], late
        assert daemon.get("/healthz").status == 200  # the loop itself stays responsive
        blocker.execute("ROLLBACK")
        blocker.close()
        released_at = time.monotonic()
        abstract_listener.until("WATCHDOG=1", 2)
        assert time.monotonic() - released_at < 1.5
    finally:
        daemon.stop()


def test_watchdog_only_for_our_pid_and_a_positive_timeout() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "41"}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, 42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, 42) is None
    assert watchdog_interval({}, 42) is None


def test_socket_address_forms() -> None:
    assert socket_address("/run/user/1000/systemd/notify") == "/run/user/1000/systemd/notify"
    assert socket_address("@/org/freedesktop/systemd1/notify/1") == b"\0/org/freedesktop/systemd1/notify/1"
    assert socket_address("") is None
    assert socket_address(None) is None
    assert socket_address("vsock:2:1234") is None


def test_status_and_event_rate() -> None:
    assert status_message(1, 12.4) == "STATUS=1 live session, 12 events/min"
    assert status_message(3, 0) == "STATUS=3 live sessions, 0 events/min"
    rate = EventRate(window=60)
    assert rate.sample(0.0, 100) == 0.0
    assert rate.sample(30.0, 130) == 60.0
    assert rate.sample(60.0, 160) == 60.0
    # Older samples leave the window: only the last minute counts.
    assert rate.sample(120.0, 160) == 0.0
