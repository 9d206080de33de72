"""Session replay (issue 20): GET /v1/sessions/{id}/replay against a real daemon paces events by
their original gaps / speed, shortens and marks long gaps, resumes after a dropped connection
without repeating, and `aod replay` prints it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from aod.lookback.pacing import pause
from tests.conftest import hook_payload, run_aod
from tests.helpers.daemon import Daemon, UnixHTTPConnection

BASE = "2026-04-01T12:00:"


def _post(daemon: Daemon, session: str, stamps: list[str]) -> None:
    items = [{"agent": "claude-code", "session": session, "occurred_at": at,
              "payload": hook_payload("UserPromptSubmit", prompt=f"step {i}")} for i, at in enumerate(stamps)]
    reply = daemon.post("/v1/events", {"events": items})
    assert reply.status == 202 and reply.body["accepted"] == len(stamps), reply.body


class Replay:
    """One replay connection, read frame by frame with the time each frame arrived."""

    def __init__(self, daemon: Daemon, path: str, last_id: str | None = None) -> None:
        self.conn = UnixHTTPConnection(str(daemon.socket), timeout=10)
        self.conn.request("GET", path, headers={"Last-Event-ID": last_id} if last_id else {})
        self.resp = self.conn.getresponse()

    def frames(self) -> Iterator[tuple[float, dict[str, str]]]:
        frame: dict[str, str] = {}
        while line := self.resp.readline():
            text = line.decode().rstrip("\n")
            if text:
                name, _, value = text.partition(": ")
                frame[name] = value
            elif frame:
                yield time.monotonic(), frame
                frame = {}

    def close(self) -> None:
        self.conn.close()


def _ids(frames: list[tuple[float, dict[str, str]]]) -> list[str]:
    return [f["id"] for _, f in frames if f.get("event") == "event"]


def test_replay_spaces_events_by_their_gaps_divided_by_speed(daemon: Daemon) -> None:
    _post(daemon, "r-1", [BASE + "00Z", BASE + "01Z", BASE + "03Z"])
    replay = Replay(daemon, "/v1/sessions/r-1/replay?speed=4")
    assert replay.resp.status == 200 and replay.resp.getheader("Content-Type").startswith("text/event-stream")
    frames = list(replay.frames())
    replay.close()
    events = [(at, f) for at, f in frames if f.get("event") == "event"]
    assert len(events) == 3 and frames[-1][1]["event"] == "end"
    first, second, third = (at for at, _ in events)
    # 1 s and 2 s apart, at 4x: 0.25 s and 0.5 s, measured here, on a machine that may be busy.
    assert 0.2 <= second - first <= 0.45, second - first
    assert 0.45 <= third - second <= 0.75, third - second
    bodies = [json.loads(f["data"]) for _, f in events]
    # The stream's event frame: the event's fields under `data`, `id` the event id.
    assert [b["entity"] for b in bodies] == ["event"] * 3
    assert [str(b["id"]) for b in bodies] == [f["id"] for _, f in events]
    assert [b["data"]["kind"] for b in bodies] == ["UserPromptSubmit"] * 3
    assert [b["replay"] for b in bodies] == [{"gap_ms": 0, "shortened": False}, {"gap_ms": 1000, "shortened": False},
                                             {"gap_ms": 2000, "shortened": False}]
    assert json.loads(frames[-1][1]["data"]) == {"events": 3, "last_id": bodies[-1]["id"]}


def test_replay_resumes_after_a_dropped_connection_without_repeating(daemon: Daemon) -> None:
    # A long idle gap (an hour) is shortened to max_gap and marked.
    _post(daemon, "r-2", [BASE + "00Z", BASE + "01Z", "2026-04-01T13:00:01Z", "2026-04-01T13:00:02Z"])
    path = "/v1/sessions/r-2/replay?speed=20&max_gap=2"
    replay = Replay(daemon, path)
    got: list[tuple[float, dict[str, str]]] = []
    for item in replay.frames():
        got.append(item)
        if len(_ids(got)) == 2:
            break
    replay.close()  # dropped mid-replay
    seen = _ids(got)
    reconnected = time.monotonic()
    again = Replay(daemon, path, last_id=seen[-1])
    rest = list(again.frames())
    again.close()
    assert rest[-1][1]["event"] == "end"
    resumed = _ids(rest)
    assert len(resumed) == 2 and not set(resumed) & set(seen)
    assert [int(i) for i in seen + resumed] == sorted(int(i) for i in seen + resumed)
    marks = [json.loads(f["data"])["replay"] for _, f in rest if f.get("event") == "event"]
    assert marks == [{"gap_ms": 3600_000, "shortened": True}, {"gap_ms": 1000, "shortened": False}]
    # Paced from the last event the client had: the shortened gap waits max_gap / speed (0.1 s).
    first_resumed = next(at for at, f in rest if f.get("event") == "event")
    assert first_resumed - reconnected >= 0.09

    # `from` an event id starts there; from a time, at the first event at or after it.
    by_id = Replay(daemon, f"/v1/sessions/r-2/replay?speed=100&from={resumed[0]}")
    assert _ids(list(by_id.frames())) == resumed
    by_id.close()
    by_time = Replay(daemon, "/v1/sessions/r-2/replay?speed=100&from=2026-04-01T12:30:00Z")
    assert _ids(list(by_time.frames())) == resumed
    by_time.close()


def test_replay_refuses_bad_parameters(daemon: Daemon) -> None:
    _post(daemon, "r-3", [BASE + "00Z"])
    for query in ("speed=0", "speed=abc", "speed=nan", "speed=1000", "max_gap=-1", "from=yesterday", "from=0"):
        reply = daemon.get(f"/v1/sessions/r-3/replay?{query}")
        assert reply.status == 400 and reply.body["error"]["code"] == "invalid_parameter", (query, reply.body)
    bad_resume = daemon.get("/v1/sessions/r-3/replay", headers={"Last-Event-ID": "x"})
    assert bad_resume.status == 400


def test_aod_replay_prints_the_events_live(daemon: Daemon) -> None:
    _post(daemon, "r-4", [BASE + "00Z", BASE + "02Z", "2026-04-01T12:09:00Z"])
    start = time.monotonic()
    done = run_aod("replay", "r-4", "--speed", "8", "--max-gap", "4", env=daemon.env)
    took = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and all("UserPromptSubmit" in line for line in lines)
    assert lines[2].endswith("(+538.0 s, shortened)")
    assert took >= 0.25 + 0.5  # 2 s / 8, then the shortened 4 s / 8
    missing = run_aod("replay", "nope", env=daemon.env)
    assert missing.returncode == 4 and "no session nope" in missing.stderr
    assert daemon.get("/v1/sessions/nope/replay").status == 404


def test_pause_rules() -> None:
    assert pause(None, BASE + "05Z", 2.0, 10.0).wait == 0
    assert pause(BASE + "00Z", BASE + "05Z", 2.0, 10.0).wait == 2.5
    late = pause(BASE + "05Z", BASE + "00Z", 2.0, 10.0)  # stamped before the event it follows
    assert (late.wait, late.gap_ms, late.shortened) == (0.0, 0, False)
    long = pause(BASE + "00Z", "2026-04-01T14:00:00Z", 4.0, 10.0)
    assert (long.wait, long.gap_ms, long.shortened) == (2.5, 7_200_000, True)
