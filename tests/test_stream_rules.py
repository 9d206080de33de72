"""The stream's pure parts: cursors, filters, where a stream starts, frames, the SSE parser,
the follow renderer, and the broadcaster's queue rules (no database, no sockets)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aod.cdc.broadcaster import Broadcaster, SubscriptionEnded
from aod.cdc.cursor import (
    BadStreamRequest,
    Cursor,
    StreamFilter,
    cursor_from,
    format_cursor,
    parse_cursor,
    parse_filter,
    start_of,
)
from aod.cdc.frames import StreamItem, change_frame, reset_frame
from aod.cli.client import EventStreamParser, ServerEvent
from aod.cli.render import change_line

# --- cursors ------------------------------------------------------------------------------------


@given(st.text("0123456789abcdef", min_size=1, max_size=32), st.integers(0, (1 << 63) - 1))
def test_a_formatted_cursor_parses_back(epoch: str, seq: int) -> None:
    assert parse_cursor(format_cursor(epoch, seq), "x") == Cursor(epoch, seq)


def test_bare_seq_has_no_epoch() -> None:
    assert parse_cursor(" 42 ", "after") == Cursor(None, 42)


@pytest.mark.parametrize("text", ["", "abc", "-1", "1.5", ":5", "ab:", "ab:cd", "a b:1", "ab:1:2x", "١٢", str(1 << 63)])
def test_bad_cursors_name_their_source(text: str) -> None:
    with pytest.raises(BadStreamRequest, match=r"^after: "):
        parse_cursor(text, "after")


def test_the_header_wins_over_after_and_an_empty_header_does_not_count() -> None:
    assert cursor_from("e:9", "e:3") == Cursor("e", 9)
    assert cursor_from("  ", "e:3") == Cursor("e", 3)
    assert cursor_from(None, "7") == Cursor(None, 7)
    assert cursor_from(None, None) is None


# --- filters ------------------------------------------------------------------------------------


def test_filters() -> None:
    assert parse_filter(None, None).everything
    flt = parse_filter("s-1", "event, session")
    assert flt == StreamFilter("s-1", frozenset({"event", "session"}))
    assert flt.matches("event", "s-1")
    assert not flt.matches("event", "s-2")
    assert not flt.matches("pr", "s-1")
    assert StreamFilter(entities=frozenset({"check"})).matches("check", None)


@pytest.mark.parametrize(("session", "entities", "key"), [
    ("", None, "session"), ("  ", None, "session"), (None, "", "entities"), (None, ",", "entities"),
    (None, "event,prs", "entities"),
])
def test_bad_filters(session: str | None, entities: str | None, key: str) -> None:
    with pytest.raises(BadStreamRequest, match=f"^{key}: "):
        parse_filter(session, entities)


# --- where a stream starts ----------------------------------------------------------------------


@pytest.mark.parametrize(("cursor", "expected"), [
    (None, (50, False)),                 # now: no replay
    (Cursor("ep", 30), (30, False)),     # replay after 30
    (Cursor(None, 30), (30, False)),     # bare seq: no epoch check
    (Cursor("ep", 10), (10, False)),     # exactly at the floor: nothing is missing
    (Cursor("ep", 50), (50, False)),     # at the head: nothing to replay
    (Cursor("other", 30), (50, True)),   # another database
    (Cursor("ep", 9), (50, True)),       # below the floor: rows are gone
    (Cursor(None, 9), (50, True)),
    (Cursor("ep", 51), (50, True)),      # ahead of the head
])
def test_start_of(cursor: Cursor | None, expected: tuple[int, bool]) -> None:
    start = start_of(cursor, epoch="ep", floor=10, head=50)
    assert (start.after, start.reset) == expected


# --- frames and the parser that reads them -------------------------------------------------------

ROW = (7, "2026-11-22T10:00:00.000Z", "event", "insert", "3", "s-1", "p", '{"id":3,"kind":"Stop"}')


def parse_all(raw: bytes, parser: EventStreamParser | None = None) -> list[ServerEvent]:
    parser = parser or EventStreamParser()
    return [e for line in raw.decode().split("\n") if (e := parser.feed(line)) is not None]


def test_change_frame_carries_the_contract_keys() -> None:
    item = change_frame("ep", ROW)
    assert (item.seq, item.entity, item.session_id) == (7, "event", "s-1")
    [event] = parse_all(item.frame)
    assert (event.event, event.id) == ("event", "ep:7")
    assert json.loads(event.data) == {
        "seq": 7, "entity": "event", "op": "insert", "id": "3", "session_id": "s-1", "project_id": "p",
        "at": "2026-11-22T10:00:00.000Z", "data": {"id": 3, "kind": "Stop"},
    }


def test_a_line_break_in_stored_json_cannot_split_the_data_line() -> None:
    item = change_frame("ep", (*ROW[:7], '{"id": 3,\n "kind": "Stop"}'))
    assert item.frame.count(b"\n") == 4  # id, event, data, blank
    [event] = parse_all(item.frame)
    assert json.loads(event.data)["data"] == {"id": 3, "kind": "Stop"}


def test_reset_frame_moves_the_last_id_to_the_head() -> None:
    [event] = parse_all(reset_frame("ep", 99))
    assert (event.event, event.id, json.loads(event.data)) == ("reset", "ep:99", {"head": "ep:99"})


def test_parser_follows_the_sse_rules() -> None:
    parser = EventStreamParser("start")
    raw = b"retry: 2000\n\n: ping\n\ndata: a\ndata:b\n\nid: 5\nevent: x\ndata: {}\n\nid: 6\ndata: cut-off"
    events = parse_all(raw, parser)
    assert events == [ServerEvent("message", "a\nb", "start"), ServerEvent("x", "{}", "5")]
    assert parser.retry_ms == 2000
    # The last frame never completed: resuming must start after 5, not 6.
    assert parser.last_id == "5"


# --- aod events --follow lines --------------------------------------------------------------------


@pytest.mark.parametrize(("change", "expected"), [
    ({"entity": "event", "op": "insert", "session_id": "s-1", "at": "2026-11-22T10:00:05Z",
      "data": {"kind": "PostToolUse", "tool_name": "Bash", "duration_ms": 1500, "ok": False}},
     "10:00:05  s-1  event       PostToolUse Bash 1.5s failed"),
    # An older daemon's 0 reads the same; null (a kind that neither succeeds nor fails) is not a failure.
    ({"entity": "event", "op": "insert", "session_id": "s-1", "at": "2026-11-22T10:00:05Z",
      "data": {"kind": "PostToolUseFailure", "tool_name": "Bash", "ok": 0}},
     "10:00:05  s-1  event       PostToolUseFailure Bash failed"),
    ({"entity": "event", "op": "insert", "session_id": "s-1", "at": "2026-11-22T10:00:05Z",
      "data": {"kind": "Stop", "ok": None}}, "10:00:05  s-1  event       Stop"),
    ({"entity": "session", "op": "update", "session_id": "s-1", "at": "2026-11-22T10:00:05Z",
      "data": {"status": "needs_input", "activity": "waiting_input"}},
     "10:00:05  s-1  session     needs_input (activity waiting_input)"),
    ({"entity": "session", "op": "insert", "session_id": "s-2", "at": "2026-11-22T10:00:05Z",
      "data": {"agent": "claude-code"}}, "10:00:05  s-2  session     new session (claude-code)"),
    ({"entity": "check", "op": "update", "session_id": None, "at": "2026-11-22T10:00:05Z",
      "data": {"name": "ci/test", "status": "failed"}}, "10:00:05  -  check       check ci/test: failed"),
    ({"entity": "escalation", "op": "update", "session_id": "s-1", "at": "2026-11-22T10:00:05Z",
      "data": {"id": 4, "priority": "urgent", "acked_at": "x", "message": "CI\nfailed"}},
     "10:00:05  s-1  escalation  escalation #4 urgent, acked: CI failed"),
    ({"entity": "pr", "op": "insert", "session_id": "s-1", "at": "2026-11-22T10:00:05Z",
      "data": {"number": 12, "state": "open", "ci_state": "pending"}},
     "10:00:05  s-1  pr          PR #12 open, ci pending, review -"),
    ({"entity": "widget"}, "-  -  widget      widget -"),
])
def test_change_line(change: dict[str, object], expected: str) -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert change_line(change, now, tz=UTC) == expected


# --- broadcaster ----------------------------------------------------------------------------------


def items(*seqs: int) -> list[StreamItem]:
    return [StreamItem(s, "event", "s", b"f%d" % s) for s in seqs]


async def test_publish_fans_out_the_same_batches_to_every_subscriber() -> None:
    hub = Broadcaster(queue_size=10, ping_interval=60)
    a, b = hub.subscribe(), hub.subscribe()
    hub.publish(items(1, 2))
    hub.publish([])
    hub.publish(items(3))
    for sub in (a, b):
        batches, ping = await sub.get()
        assert [[i.seq for i in batch.items] for batch in batches] == [[1, 2], [3]]
        assert batches[0].blob == b"f1f2"
        assert not ping


async def test_a_full_queue_ends_only_that_subscriber_and_aborts_it_only_while_it_writes() -> None:
    hub = Broadcaster(queue_size=3, ping_interval=60)
    idle, writing, fine = hub.subscribe(), hub.subscribe(), hub.subscribe()
    cuts: list[str] = []
    idle.cut = lambda: cuts.append("idle")
    writing.cut = lambda: cuts.append("writing")
    writing.busy = True
    hub.publish(items(1, 2))
    await fine.get()
    hub.publish(items(3, 4))  # idle and writing now hold 4 > 3
    assert cuts == ["writing"]  # an idle handler notices by itself; a stuck write never returns
    assert (idle.ended, writing.ended, fine.ended) == ("overflow", "overflow", None)
    assert hub.subscribers == 1 and hub.cut_count == 2
    with pytest.raises(SubscriptionEnded, match="overflow"):
        await idle.get()
    batches, _ = await fine.get()
    assert [i.seq for b in batches for i in b.items] == [3, 4]


async def test_pings_and_close_wake_waiting_subscribers() -> None:
    hub = Broadcaster(queue_size=3, ping_interval=0.01)
    hub.start()
    sub = hub.subscribe()
    batches, ping = await asyncio.wait_for(sub.get(), 2)
    assert (batches, ping) == ([], True)
    waiting = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    writing = hub.subscribe()
    writing.busy, aborted = True, []
    writing.cut = lambda: aborted.append(True)
    await hub.close()
    with pytest.raises(SubscriptionEnded, match="closed"):
        await asyncio.wait_for(waiting, 2)
    assert aborted == [True]
    assert hub.subscribe().ended == "closed"  # nothing new after shutdown began


async def test_a_reloaded_stream_config_applies_to_new_subscribers_and_to_pings_at_once() -> None:
    hub = Broadcaster(queue_size=1, ping_interval=60)
    hub.start()
    try:
        before = hub.subscribe()
        hub.configure(queue_size=5, ping_interval=0.01)
        after = hub.subscribe()
        hub.publish(items(1, 2))
        assert (before.ended, after.ended) == ("overflow", None)  # 2 rows: over the old limit only
        batches, _ = await after.get()
        # The pinger was 60 s into its wait; the new interval must not wait that out.
        assert await asyncio.wait_for(after.get(), 2) == ([], True)
        assert [i.seq for b in batches for i in b.items] == [1, 2]
    finally:
        await hub.close()
