"""`aod events --follow` as a user runs it, against a real daemon that restarts under it."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.conftest import aod_command, run_aod
from tests.helpers.daemon import Daemon
from tests.helpers.sse import db_rows, tool_event


class Follower:
    def __init__(self, env: dict[str, str], *args: str, sigint_ignored: bool = False) -> None:
        # A background job of a non-interactive shell starts with SIGINT ignored, and so does
        # everything a test runner started that way runs: the follower must not depend on it.
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
        self.proc = subprocess.Popen([*aod_command(), "events", "--follow", *args], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ignore)
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def collect(self, until: object, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not until(self.lines):  # type: ignore[operator]
            left = deadline - time.monotonic()
            assert left > 0, f"follow output so far: {self.lines}"
            try:
                self.lines.append(self._queue.get(timeout=min(left, 0.2)))
            except queue.Empty:
                assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(10)
        return code, self.proc.stderr.read() if self.proc.stderr else ""


def post(daemon: Daemon, uids: list[str], session: str = "s-a") -> None:
    reply = daemon.post("/v1/events", {"events": [tool_event(u, session) for u in uids]})
    assert reply.status == 202 and reply.body["accepted"] == len(uids), reply.body


def event_uids(lines: list[str]) -> list[str]:
    return [c["data"]["uid"] for c in map(json.loads, lines) if c.get("entity") == "event"]


def wait_connected(daemon: Daemon, follower: Follower, session: str = "s-a") -> None:
    """Post probes until the follower prints one: it starts at "now", so earlier ones are not shown."""
    n = 0
    while not follower.lines:
        post(daemon, [f"probe-{session}-{n}"], session)
        n += 1
        with contextlib.suppress(AssertionError):
            follower.collect(lambda lines: bool(lines), timeout=0.5)


def test_follow_prints_live_changes_and_resumes_across_a_daemon_restart(short_dir: Path, aod_env: dict[str, str]) -> None:
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    daemon = Daemon(data, aod_env).start()
    follower = Follower(daemon.env, "--json")
    try:
        wait_connected(daemon, follower)
        first = json.loads(follower.lines[0])["seq"]
        post(daemon, [f"before-{i}" for i in range(5)])
        follower.collect(lambda lines: "before-4" in event_uids(lines))

        # Frozen, the follower cannot reconnect before the restarted daemon took these writes:
        # only resuming from its last id shows them.
        follower.proc.send_signal(signal.SIGSTOP)
        assert daemon.stop() == 0
        daemon = Daemon(data, aod_env).start()
        post(daemon, [f"after-{i}" for i in range(3)])
        follower.proc.send_signal(signal.SIGCONT)
        follower.collect(lambda lines: "after-2" in event_uids(lines), timeout=30)
        post(daemon, ["live"])
        follower.collect(lambda lines: "live" in event_uids(lines))

        seqs = [json.loads(line)["seq"] for line in follower.lines]
        assert seqs == [r[0] for r in db_rows(data, "SELECT seq FROM change_log WHERE seq >= ? ORDER BY seq", (first,))]
        printed = event_uids(follower.lines)
        assert printed == [r[0] for r in db_rows(data, "SELECT uid FROM events WHERE uid IN ({}) ORDER BY id".format(
            ",".join("?" * len(printed))), tuple(printed))]
        assert printed[-9:] == [*(f"before-{i}" for i in range(5)), *(f"after-{i}" for i in range(3)), "live"]
        code, stderr = follower.interrupt()
        assert code == 0
        assert "reconnected" in stderr
    finally:
        if follower.proc.poll() is None:
            follower.proc.kill()
        daemon.kill()


def test_follow_as_text_for_one_session(short_dir: Path, aod_env: dict[str, str]) -> None:
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    daemon = Daemon(data, aod_env).start()
    follower = Follower(daemon.env, "--session", "s-b")
    try:
        wait_connected(daemon, follower, "s-b")
        post(daemon, ["a-1"], "s-a")
        post(daemon, ["b-1"], "s-b")
        follower.collect(lambda lines: sum("PreToolUse Bash" in line for line in lines) >= 2)
        assert all("  s-b  " in line for line in follower.lines)
        assert not any("s-a" in line for line in follower.lines)
        code, _ = follower.interrupt()
        assert code == 0
    finally:
        if follower.proc.poll() is None:
            follower.proc.kill()
        daemon.kill()


def test_follow_without_a_daemon_exits_3(short_dir: Path, aod_env: dict[str, str]) -> None:
    env = {**aod_env, "AOD_DATA_DIR": str(short_dir / "d"), "AOD_SOCKET": str(short_dir / "none.sock")}
    started = time.monotonic()
    result = run_aod("events", "--follow", env=env, timeout=20)
    assert result.returncode == 3
    assert "no daemon is answering" in result.stderr
    assert time.monotonic() - started < 10


def test_an_idle_follow_stays_connected(short_dir: Path, aod_env: dict[str, str]) -> None:
    # Pings 6 s apart: more than the 5 s the client gives connecting, which once stayed on the
    # stream's socket and cut it (then reconnected) on every quiet stretch; and more than the
    # daemon's 5 s keep-alive timer, which must never cut a stream.
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    daemon = Daemon(data, aod_env, '[stream]\nping_interval = "6s"\n').start()
    follower = Follower(daemon.env, "--json")
    try:
        wait_connected(daemon, follower)
        time.sleep(11)  # pings 6 s apart: a 5 s read timeout cuts the stream within 10 s
        assert daemon.status()["stream"]["clients"] == 1
        post(daemon, ["after-the-quiet"])
        follower.collect(lambda lines: "after-the-quiet" in event_uids(lines), timeout=5)
        code, stderr = follower.interrupt()
        assert code == 0
        assert "reconnect" not in stderr
    finally:
        if follower.proc.poll() is None:
            follower.proc.kill()
        daemon.kill()


def test_ctrl_c_ends_a_follow_started_with_sigint_ignored(short_dir: Path, aod_env: dict[str, str]) -> None:
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    daemon = Daemon(data, aod_env).start()
    follower = Follower(daemon.env, sigint_ignored=True)
    try:
        wait_connected(daemon, follower)
        code, stderr = follower.interrupt()
        assert (code, stderr) == (0, "")
    finally:
        if follower.proc.poll() is None:
            follower.proc.kill()
        daemon.kill()
