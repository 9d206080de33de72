"""GET /v1/stream against a real `aod serve`, with real HTTP clients (DESIGN §3)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import sqlite3
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.daemon import Daemon, SocketClient
from tests.helpers.sse import SseClient, SseConnection, db_rows, epoch, head, seqs_after, tool_event


@pytest.fixture
def data(short_dir: Path) -> Path:
    d = short_dir / "data"
    d.mkdir(mode=0o700)
    return d


def start(data: Path, env: dict[str, str], config: str = "") -> Daemon:
    return Daemon(data, env, config).start()


@pytest.fixture
async def served(data: Path, aod_env: dict[str, str]) -> AsyncIterator[tuple[Daemon, SseClient]]:
    daemon = start(data, aod_env)
    client = SseClient(daemon.socket)
    yield daemon, client
    await client.close()
    if daemon.proc is not None and daemon.proc.poll() is None:
        daemon.kill()


async def post(client: SseClient, uids: list[str], session: str = "s-a") -> None:
    status, body = await client.post("/v1/events", {"events": [tool_event(u, session) for u in uids]})
    assert status == 202 and body["accepted"] == len(uids), body


def changes(conn: SseConnection) -> list[int]:
    return [f.seq for f in conn.frames if f.event != "reset"]


async def wait_subscribed(client: SseClient, conn: SseConnection, session: str = "probe") -> int:
    """Post probes until `conn` shows one: from then on the stream is surely live. The first seq seen."""
    n = 0
    while not conn.frames:
        await post(client, [f"probe-{id(conn)}-{n}"], session)
        n += 1
        with contextlib.suppress(TimeoutError):
            await conn.read_some(timeout=0.3)
    return conn.frames[0].seq


# --- exactly once -------------------------------------------------------------------------------


async def test_concurrent_writers_and_three_clients_each_see_every_change_once_in_order(
    served: tuple[Daemon, SseClient],
) -> None:
    daemon, client = served
    data = daemon.data_dir
    await post(client, [f"history-{i}" for i in range(30)])
    history_head = head(data)
    the_epoch = epoch(data)

    live = await client.connect()  # from "now"
    first_live = await wait_subscribed(client, live)
    everything = await client.connect("?after=0")
    dropper_cursor = history_head // 2

    writers_done = asyncio.Event()
    rng = random.Random(4)

    async def writer(w: int) -> None:
        for i in range(40):
            await post(client, [f"w{w}-{i}-{k}" for k in range(rng.randint(1, 3))], session=f"s-{w}")

    async def reader(conn: SseConnection) -> None:
        while not (writers_done.is_set() and conn.last_seq >= head(data)):
            with contextlib.suppress(TimeoutError):
                await conn.read_some(timeout=0.5)
            assert not conn.ended

    received: list[Any] = []
    connects = 0

    async def dropper() -> None:
        # Drops at random bytes, mid-frame included, and comes back with Last-Event-ID.
        nonlocal connects
        last_id = f"{the_epoch}:{dropper_cursor}"
        while not (writers_done.is_set() and received and received[-1].seq >= head(data)):
            conn = await client.connect(last_event_id=last_id)
            connects += 1
            budget = rng.randint(100, 4000)
            while budget > 0:
                size = rng.randint(1, 700)
                try:
                    await conn.read_some(max_bytes=size, timeout=0.3)
                except TimeoutError:
                    break
                budget -= size
            await conn.close()
            received.extend(conn.frames)
            last_id = conn.parser.last_id or last_id

    async def write_all() -> None:
        await asyncio.gather(*(writer(w) for w in range(4)))
        writers_done.set()

    async with asyncio.timeout(90):
        await asyncio.gather(write_all(), reader(live), reader(everything), dropper())

    final = head(data)
    assert final > history_head + 160
    assert connects >= 10, "the dropping client should have reconnected many times"
    assert changes(live) == seqs_after(data, first_live - 1)
    assert first_live > history_head
    assert changes(everything) == seqs_after(data, 0)
    assert [f.seq for f in received] == seqs_after(data, dropper_cursor)
    assert not any(f.event == "reset" for f in [*live.frames, *everything.frames, *received])
    # Frames carry the contract's keys and the rows as stored.
    stored = {seq: (entity, op, entity_id) for seq, entity, op, entity_id in
              db_rows(data, "SELECT seq, entity, op, entity_id FROM change_log")}
    for frame in everything.frames:
        assert frame.id == f"{the_epoch}:{frame.seq}"
        assert frame.event == frame.data["entity"]
        assert set(frame.data) == {"seq", "entity", "op", "id", "session_id", "project_id", "at", "data"}
        assert (frame.data["entity"], frame.data["op"], frame.data["id"]) == stored[frame.seq]


async def test_client_that_never_reads_is_cut_while_the_others_stay_fast(data: Path, aod_env: dict[str, str]) -> None:
    daemon = start(data, aod_env, "[stream]\nqueue_size = 100\n")
    client = SseClient(daemon.socket)
    try:
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stalled.connect(str(daemon.socket))
        stalled.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
        readers = [await client.connect(), await client.connect()]
        for conn in readers:
            await wait_subscribed(client, conn)
        sent_at: dict[str, float] = {}
        done = asyncio.Event()

        async def write() -> None:
            for i in range(200):
                uids = [f"e{i}-{k}" for k in range(10)]
                now = time.monotonic()
                sent_at.update(dict.fromkeys(uids, now))
                await post(client, uids)
                await asyncio.sleep(0.002)
            done.set()

        async def read(conn: SseConnection) -> None:
            while not (done.is_set() and conn.last_seq >= head(data)):
                with contextlib.suppress(TimeoutError):
                    await conn.read_some(timeout=0.5)
                assert not conn.ended

        async with asyncio.timeout(90):
            await asyncio.gather(write(), *(read(c) for c in readers))

        final = head(data)
        for conn in readers:
            assert changes(conn)[-1] == final
            assert changes(conn) == sorted(set(changes(conn)))
        latencies = sorted(f.arrived - sent_at[f.data["data"]["uid"]]
                           for conn in readers for f in conn.frames
                           if f.event == "event" and f.data["data"]["uid"] in sent_at)
        assert len(latencies) == 2 * 2000
        # Generous bounds for a shared 2-core machine; a reader held up by the stalled client
        # would wait for ever (its queue never drains).
        assert statistics.median(latencies) < 0.5
        assert latencies[int(len(latencies) * 0.99)] < 2.0

        # The stalled client was cut while it still read nothing: the daemon closed its end
        # (a Unix socket whose peer closed refuses writes at once)...
        with pytest.raises(BrokenPipeError):
            stalled.send(b"x")
        # ... and what the kernel had buffered is readable, then the end.
        stalled.settimeout(10)
        got = b""
        try:
            while chunk := stalled.recv(65536):
                got += chunk
        except ConnectionResetError:
            pass
        assert b"retry: 2000" in got
        assert f"id: {epoch(data)}:{final}\n".encode() not in got
        assert "stream client cut" in daemon.log.read_text()
        assert daemon.status()["stream"] == {"clients": 2, "cut": 1}  # the readers stay
        stalled.close()
    finally:
        await client.close()
        daemon.kill()


# --- where a stream starts ----------------------------------------------------------------------


async def test_reset_for_a_foreign_epoch_a_cursor_ahead_or_below_the_floor(served: tuple[Daemon, SseClient]) -> None:
    daemon, client = served
    data = daemon.data_dir
    await post(client, [f"a{i}" for i in range(5)])
    now_head, the_epoch = head(data), epoch(data)

    async def expect_reset(**how: Any) -> None:
        conn = await client.connect(**how)
        await conn.until(lambda c: len(c.frames) >= 1)
        first = conn.frames[0]
        assert first.event == "reset"
        assert first.data == {"head": f"{the_epoch}:{head(data)}"}
        assert first.id == first.data["head"]  # a browser's next reconnect starts from there
        # ... and then live from the head.
        at = head(data)
        await post(client, [f"after-reset-{len(how)}-{at}"])
        await conn.until(lambda c: len(c.frames) >= 2)
        assert conn.frames[1].seq == at + 1
        await conn.close()

    await expect_reset(last_event_id=f"0123456789abcdef:{now_head}")  # another database
    await expect_reset(query=f"?after={the_epoch}:{head(data) + 100}")  # ahead of the head
    await expect_reset(query=f"?after={head(data) + 1}")  # bare seq, ahead
    # The janitor compacted seqs up to 3 away (set directly here; tests/test_retention*.py run it).
    with sqlite3.connect(data / "aod.db") as c:
        c.execute("UPDATE meta SET value = '3' WHERE key = 'retention_floor'")
    await expect_reset(last_event_id=f"{the_epoch}:2")
    # At the floor nothing is missing: plain replay.
    conn = await client.connect(last_event_id=f"{the_epoch}:3")
    await conn.until(lambda c: c.last_seq >= head(data))
    assert changes(conn) == seqs_after(data, 3)
    await conn.close()


@pytest.mark.parametrize(("query", "headers", "problem"), [
    ("?after=abc", {}, "after"),
    ("?after=-1", {}, "after"),
    ("?after=ab:cd", {}, "after"),
    ("?after=a%20b:1", {}, "after"),
    ("", {"Last-Event-ID": "x:y"}, "Last-Event-ID"),
    ("?entities=session,nope", {}, "entities"),
    ("?entities=", {}, "entities"),
    ("?session=", {}, "session"),
])
def test_bad_cursor_or_filter_is_a_400_json_error(api: SocketClient, query: str, headers: dict[str, str], problem: str) -> None:
    reply = api.get(f"/v1/stream{query}", headers=headers)
    assert reply.status == 400
    assert reply.body["error"]["code"] == "invalid_parameter"
    assert reply.body["error"]["message"].startswith(problem)


async def test_filters_by_session_and_entity(served: tuple[Daemon, SseClient]) -> None:
    daemon, client = served
    data = daemon.data_dir
    only_b = await client.connect("?after=0&session=s-b")
    only_sessions = await client.connect("?after=0&entities=session")
    events_of_a = await client.connect("?after=0&entities=event,check&session=s-a")
    await post(client, ["fa1", "fa2"], "s-a")
    await post(client, ["fb1"], "s-b")
    await post(client, ["fa3"], "s-a")
    rows = db_rows(data, "SELECT seq, entity, session_id FROM change_log ORDER BY seq")
    expect = {
        id(only_b): [s for s, _, sid in rows if sid == "s-b"],
        id(only_sessions): [s for s, e, _ in rows if e == "session"],
        id(events_of_a): [s for s, e, sid in rows if e == "event" and sid == "s-a"],
    }
    for conn in (only_b, only_sessions, events_of_a):
        want = expect[id(conn)]
        assert want
        await conn.until(lambda c, w=want: c.last_seq >= w[-1])
        assert changes(conn) == want
        await conn.close()


# --- resuming -----------------------------------------------------------------------------------


async def test_daemon_restart_between_two_connections_loses_and_repeats_nothing(
    data: Path, aod_env: dict[str, str],
) -> None:
    daemon = start(data, aod_env)
    client = SseClient(daemon.socket)
    await post(client, [f"before-{i}" for i in range(10)])
    conn = await client.connect("?after=0")
    await conn.until(lambda c: c.last_seq >= head(data))
    await conn.close()
    first = conn.frames
    await post(client, [f"between-{i}" for i in range(5)])  # while the client is away
    await client.close()
    assert await asyncio.to_thread(daemon.stop) == 0

    daemon = start(data, aod_env)
    client = SseClient(daemon.socket)
    try:
        await post(client, [f"restarted-{i}" for i in range(5)])
        conn = await client.connect(last_event_id=first[-1].id)
        await conn.until(lambda c: c.last_seq >= head(data))
        await post(client, [f"live-{i}" for i in range(3)])
        await conn.until(lambda c: c.last_seq >= head(data))
        assert [f.seq for f in first] + changes(conn) == seqs_after(data, 0)
        uids = [f.data["data"]["uid"] for f in [*first, *conn.frames] if f.event == "event"]
        assert uids == [r[0] for r in db_rows(data, "SELECT uid FROM events ORDER BY id")]
    finally:
        await client.close()
        daemon.kill()


async def test_browser_style_after_then_last_event_id_header(served: tuple[Daemon, SseClient]) -> None:
    daemon, client = served
    data = daemon.data_dir
    await post(client, [f"b{i}" for i in range(6)])
    start_at = f"{epoch(data)}:2"
    first = await client.connect(f"?after={start_at}")
    await first.until(lambda c: c.last_seq >= head(data))
    await first.close()
    await post(client, [f"c{i}" for i in range(3)])
    # EventSource reconnects to the same URL (still ?after=...) and adds Last-Event-ID: the header wins.
    second = await client.connect(f"?after={start_at}", last_event_id=first.parser.last_id)
    await second.until(lambda c: c.last_seq >= head(data))
    assert changes(first) + changes(second) == seqs_after(data, 2)


# --- transport, ticks, pings, shutdown ----------------------------------------------------------


async def test_served_on_tcp_with_the_token(served: tuple[Daemon, SseClient]) -> None:
    daemon, client = served
    tcp = daemon.status()["tcp"]
    token = (daemon.data_dir / "token").read_text().strip()
    await post(client, ["t1"])
    denied = SseClient(base=f"http://{tcp}")
    status, body = await denied.get("/v1/stream")
    await denied.close()
    assert status == 401 and body["error"]["code"] == "unauthorized"
    over_tcp = SseClient(base=f"http://{tcp}", headers={"Authorization": f"Bearer {token}"})
    try:
        conn = await over_tcp.connect("?after=0")
        assert conn.response.headers["Content-Type"].startswith("text/event-stream")
        await conn.until(lambda c: c.last_seq >= head(daemon.data_dir))
        assert changes(conn) == seqs_after(daemon.data_dir, 0)
    finally:
        await over_tcp.close()


async def test_a_write_by_another_process_is_noticed_by_the_tick(served: tuple[Daemon, SseClient]) -> None:
    daemon, client = served
    await post(client, ["x1"])
    conn = await client.connect()
    await wait_subscribed(client, conn)
    # Not through the daemon: nothing wakes the poller but PRAGMA data_version on its tick.
    with sqlite3.connect(daemon.data_dir / "aod.db") as c:
        c.execute("UPDATE sessions SET title = 'renamed outside' WHERE id = 's-a'")
    started = time.monotonic()
    await conn.until(lambda c: any(f.data["data"].get("title") == "renamed outside" for f in c.frames), timeout=10)
    assert time.monotonic() - started < 5


async def test_pings_keep_an_idle_stream_alive(data: Path, aod_env: dict[str, str]) -> None:
    daemon = start(data, aod_env, '[stream]\nping_interval = "200ms"\n')
    client = SseClient(daemon.socket)
    try:
        conn = await client.connect()
        await conn.until(lambda c: len(c.comments) >= 3, timeout=10)
        assert set(conn.comments) == {": ping"}
        assert conn.frames == []
    finally:
        await client.close()
        daemon.kill()


async def test_sigterm_with_open_streams_exits_within_5s(data: Path, aod_env: dict[str, str]) -> None:
    daemon = start(data, aod_env, "[stream]\nqueue_size = 100000\n")
    client = SseClient(daemon.socket)
    try:
        reading = [await client.connect(), await client.connect("?after=0")]
        # One client that stopped reading with its buffers full: its handler is stuck in a write.
        stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stalled.connect(str(daemon.socket))
        stalled.sendall(b"GET /v1/stream?after=0 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        for i in range(40):
            await post(client, [f"s{i}-{k}" for k in range(25)])
        for conn in reading:
            await conn.until(lambda c: c.last_seq >= head(data))
        started = time.monotonic()
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGTERM)
        for conn in reading:
            await conn.until(lambda c: c.ended, timeout=5)
        # Ended by the daemon itself, not by aiohttp giving up on its handlers (2 s shutdown timeout).
        assert time.monotonic() - started < 1.8
        code = await asyncio.to_thread(daemon.proc.wait, 10)
        took = time.monotonic() - started
        assert code == 0
        assert took < 5, f"took {took:.2f}s"
        stalled.close()
    finally:
        await client.close()
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
