"""Transcript lines, reading appended lines, prices, and usage rows on a real SQLite file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import apsw
import pytest

from aod.config import parse_config
from aod.storage import usage
from aod.transcripts import lines, tail
from aod.transcripts.rows import usage_rows
from aod.usage import prices

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts" / "projects"
SHOP = FIXTURES / "-home-dev-shop" / "7d1c6a52-5d0e-4f63-9b44-0c1f8a2e6b10.jsonl"
SUBAGENT = FIXTURES / "-home-dev-shop" / "7d1c6a52-5d0e-4f63-9b44-0c1f8a2e6b10" / "subagents" / "agent-3f2a9c1e.jsonl"
NOTES = FIXTURES / "-home-dev-notes" / "a93e0f4b-2c71-4e0a-8d5f-61b2c7d9e344.jsonl"
CUT = FIXTURES / "-home-dev-notes" / "c0ffee00-1111-4222-8333-944455556666.jsonl"
TABLE = prices.shipped()


def parsed(path: Path) -> list[lines.Line]:
    return [line for raw in path.read_bytes().splitlines() if (line := lines.parse(raw)) is not None]


def test_an_assistant_line_gives_its_usage_model_ids_and_tool_uses() -> None:
    found = parsed(SHOP)
    first = next(line for line in found if line.usage is not None)
    assert first.usage is not None and first.usage.message_id == "msg_01A" and first.usage.request_id == "req_01A"
    assert (first.usage.model, first.usage.input_tokens, first.usage.output_tokens) == ("claude-sonnet-4-5-20250929", 3, 12)
    assert (first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens) == (4512, 10200)
    assert first.occurred_at == "2025-10-01T09:00:03.120000Z" and first.session_id == "7d1c6a52-5d0e-4f63-9b44-0c1f8a2e6b10"
    assert (first.cwd, first.git_branch, first.is_sidechain) == ("/home/dev/shop", "fix-total", False)
    uses = [u for line in found for u in line.tool_uses]
    assert [(u.tool_use_id, u.name) for u in uses] == [("toolu_01A", "Bash"), ("toolu_01B", "Task"), ("toolu_01C", "Edit")]
    results = [r for line in found for r in line.tool_results]
    assert [(r.tool_use_id, r.is_error) for r in results] == [("toolu_01A", True), ("toolu_01B", False), ("toolu_01C", False)]
    prompts = [line.prompt for line in found if line.prompt]
    assert prompts == ["Fix the rounding bug in the checkout total", "Find where totals are rounded"]
    assert [line.is_sidechain for line in found if line.usage and line.usage.message_id == "msg_01S"] == [True]


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'{"type": "assistant", "message": "x"}',
                                 b'{"type": "assistant", "message": {"usage": {"input_tokens": true}}}'])
def test_lines_that_are_not_usage_are_tolerated(raw: bytes) -> None:
    line = lines.parse(raw)
    assert line is None or line.usage is None or line.usage.input_tokens == 0


def test_a_line_without_ids_is_keyed_by_its_content() -> None:
    raw = b'{"type":"assistant","timestamp":"2025-10-01T00:00:00Z","message":{"model":"m","usage":{"input_tokens":5,"output_tokens":1}}}'
    a, b = lines.parse(raw), lines.parse(raw + b"  ")
    assert a is not None and b is not None and a.usage is not None and b.usage is not None
    assert a.usage.message_id == b.usage.message_id and a.usage.message_id.startswith("sha256:")


def test_prices_follow_the_table_with_1h_writes_and_the_long_context_tier() -> None:
    t = prices.Tokens(input=1000, output=1000, cache_write_5m=1000, cache_write_1h=1000, cache_read=1000)
    # Sonnet 4.5: 3 + 15 + 3.75 + 6 + 0.30 USD per million tokens.
    assert prices.cost("claude-sonnet-4-5-20250929", "2025-10-01", t, TABLE) == pytest.approx(0.02805)
    big = prices.Tokens(input=150_000, output=1000, cache_write_5m=0, cache_write_1h=0, cache_read=60_000)
    # Over 200k input tokens every token takes the long-context rates: 6, 22.5, 0.6.
    assert prices.cost("claude-sonnet-4-5", "2025-10-01", big, TABLE) == pytest.approx(0.9 + 0.0225 + 0.036)
    assert prices.cost("claude-opus-4-1-20250805", "2025-10-01", big, TABLE) == pytest.approx(2.25 + 0.075 + 0.09)
    assert prices.cost("claude-nebula-9", "2025-10-01", t, TABLE) is None
    assert prices.cost("claude-opus-4-8", "2025-10-01", t, TABLE) is None  # no prefix guess
    assert prices.cost(prices.SYNTHETIC, "2025-10-01", t, TABLE) == 0.0


def test_a_price_applies_from_its_date() -> None:
    rates = {"input": 1, "output": 1, "cache_write_5m": 1, "cache_write_1h": 1, "cache_read": 1}
    table = prices.parse_table({"m": [{"from": "2025-01-01", **rates}, {"from": "2025-06-01", **rates, "input": 10}]})
    t = prices.Tokens(1_000_000, 0, 0, 0, 0)
    assert [prices.cost("m", d, t, table) for d in ("2024-12-01", "2025-05-31", "2025-06-01")] == [1.0, 1.0, 10.0]


def test_config_prices_override_the_shipped_ones_and_price_a_new_model() -> None:
    config = parse_config('[usage.prices."claude-nebula-9"]\ninput = 2\noutput = 8\ncache_write_5m = 2.5\n'
                          'cache_write_1h = 4\ncache_read = 0.2\n[usage.prices."claude-nebula-9".long_context]\n'
                          'input = 4\noutput = 16\ncache_write_5m = 5\ncache_write_1h = 8\ncache_read = 0.4\n',
                          data_dir="/tmp/aod-x")
    table = prices.configured(config)
    each = prices.Tokens(100_000, 100_000, 0, 0, 0)
    assert prices.cost("claude-nebula-9-20260101", "2026-02-01", each, table) == pytest.approx(1.0)
    assert prices.cost("claude-sonnet-4-5", "2025-10-01", each, table) == pytest.approx(1.8)
    long = prices.Tokens(300_000, 100_000, 0, 0, 0)
    assert prices.cost("claude-nebula-9", "2026-02-01", long, table) == pytest.approx(1.2 + 1.6)
    with pytest.raises(ValueError, match=r"usage\.prices\.m\.cache_read: missing"):
        parse_config('[usage.prices.m]\ninput = 1\noutput = 1\ncache_write_5m = 1\ncache_write_1h = 1\n', data_dir="/tmp/x")
    with pytest.raises(ValueError, match=r"usage\.prices\.m\.input"):
        parse_config('[usage.prices.m]\ninput = -1\noutput = 1\ncache_write_5m = 1\ncache_write_1h = 1\ncache_read = 1\n',
                     data_dir="/tmp/x")


def test_reading_takes_whole_lines_and_waits_for_the_cut_one(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    shutil.copy(CUT, path)
    chunk = tail.read(str(path), tail.START)
    assert chunk is not None and len(chunk.lines) == 2 and not chunk.restarted
    assert chunk.position.offset == CUT.read_bytes().rfind(b"\n") + 1
    again = tail.read(str(path), chunk.position)
    assert again is not None and again.lines == [] and again.position == chunk.position
    # The writer finishes the line: the next read has exactly it.
    with path.open("ab") as f:
        f.write(b"}\n")
    done = tail.read(str(path), chunk.position)
    assert done is not None and len(done.lines) == 1 and done.lines[0].endswith(b"}")
    assert tail.read(str(tmp_path / "gone.jsonl"), tail.START) is None


def test_a_rewritten_or_rotated_file_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(NOTES.read_bytes())
    first = tail.read(str(path), tail.START)
    assert first is not None and len(first.lines) == 5
    # Shorter than the offset: truncated and rewritten.
    path.write_bytes(b'{"type":"user"}\n')
    shrunk = tail.read(str(path), first.position)
    assert shrunk is not None and shrunk.restarted and shrunk.lines == [b'{"type":"user"}']
    # As long as before, but other first bytes: rewritten in place.
    path.write_bytes(SHOP.read_bytes())
    rewritten = tail.read(str(path), first.position)
    assert rewritten is not None and rewritten.restarted and rewritten.position.offset == SHOP.stat().st_size
    # Rotated: another file (inode) at the path.
    rotated = tmp_path / "new.jsonl"
    rotated.write_bytes(SHOP.read_bytes())
    os.replace(rotated, path)
    moved = tail.read(str(path), rewritten.position)
    assert moved is not None and moved.restarted
    # Appended: not a restart.
    with path.open("ab") as f:
        f.write(b'{"type":"user"}\n')
    appended = tail.read(str(path), moved.position)
    assert appended is not None and not appended.restarted and appended.lines == [b'{"type":"user"}']


def test_a_large_backlog_is_read_in_bounded_steps(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(SHOP.read_bytes())
    at, got = tail.START, []
    while True:
        chunk = tail.read(str(path), at, max_read=700)
        assert chunk is not None
        got += chunk.lines
        at = chunk.position
        if not chunk.more:
            break
    assert got == [line for line in SHOP.read_bytes().split(b"\n") if line]


def _seed_session(conn: apsw.Connection, sid: str, project: str) -> None:
    now = "2025-10-01T00:00:00.000000Z"
    conn.execute("INSERT OR IGNORE INTO projects (id, path, name, created_at) VALUES (?, ?, ?, ?)",
                 (project, "/" + project, project, now))
    conn.execute("INSERT INTO sessions (id, project_id, agent, created_at, updated_at) VALUES (?, ?, 'claude-code', ?, ?)",
                 (sid, project, now, now))


def test_rows_are_stored_once_with_the_session_totals_in_the_same_transaction(conn: apsw.Connection) -> None:
    _seed_session(conn, "shop-1", "shop")
    rows = usage_rows(parsed(SHOP) + parsed(SUBAGENT), TABLE, "shop-1")
    assert len(rows) == 8  # msg_01A is written twice
    assert usage.store(conn, rows, "2025-10-01T10:00:00.000000Z") == 7
    assert usage.store(conn, rows, "2025-10-01T10:00:00.000000Z") == 0  # read again: nothing new
    totals = usage.session_totals(conn, "shop-1")
    assert totals is not None
    assert (totals["messages"], totals["input_tokens"], totals["output_tokens"]) == (7, 2326, 795)
    assert (totals["cache_creation_input_tokens"], totals["cache_read_input_tokens"]) == (9633, 59636)
    assert totals["cost_usd"] == pytest.approx(0.05879105)  # ccusage daily --offline on these files
    assert (totals["sidechain_messages"], totals["unpriced_messages"]) == (2, 0)
    assert totals["sidechain_cost_usd"] == pytest.approx(0.00706325)
    assert totals["models"] == {"claude-sonnet-4-5-20250929": 4, "claude-haiku-4-5-20251001": 2, "<synthetic>": 1}
    log = [json.loads(d) for (d,) in conn.execute("SELECT data FROM change_log WHERE entity = 'usage' ORDER BY seq")]
    assert [entry["messages"] for entry in log] == [7]


def test_unknown_models_are_counted_and_flagged_never_priced_at_zero(conn: apsw.Connection) -> None:
    _seed_session(conn, "notes-1", "notes")
    usage.store(conn, usage_rows(parsed(NOTES), TABLE, "notes-1"), "2025-10-02T15:00:00.000000Z")
    totals = usage.session_totals(conn, "notes-1")
    assert totals is not None and totals["unpriced_messages"] == 1 and totals["messages"] == 3
    assert usage.unpriced_models(conn, None, None) == ["claude-nebula-9-20260101"]
    item = usage.grouped(conn, "model", None, None)[0]
    assert item["key"] == "claude-nebula-9-20260101" and item["unpriced_messages"] == 1 and item["cost_usd"] == 0


def test_rows_find_their_session_by_agent_session_id(conn: apsw.Connection) -> None:
    _seed_session(conn, "notes-1", "notes")
    conn.execute("INSERT INTO session_aliases (agent, agent_session_id, session_id, created_at)"
                 " VALUES ('claude-code', 'a93e0f4b-2c71-4e0a-8d5f-61b2c7d9e344', 'notes-1', 'x')")
    usage.store(conn, usage_rows(parsed(NOTES), TABLE), "2025-10-02T15:00:00.000000Z")
    assert [r[0] for r in conn.execute("SELECT DISTINCT session_id FROM usage")] == ["notes-1"]


def test_the_usage_table_has_a_total_marks_unpriced_costs_and_shows_subagents_apart() -> None:
    from aod.cli.usage import usage_table

    item = {"input_tokens": 1000, "output_tokens": 2000, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 5000, "models": ["claude-sonnet-4-5"], "messages": 2}
    body = {"group_by": "session", "items": [
        {**item, "key": "shop-1", "cost_usd": 1.234, "sidechain_messages": 1, "sidechain_cost_usd": 0.5},
        {**item, "key": None, "cost_usd": 0.0, "unpriced_messages": 2, "models": ["claude-nebula-9"]}],
        "total": {**item, "input_tokens": 2000, "output_tokens": 4000, "cache_read_input_tokens": 10000,
                  "cost_usd": 1.234, "unpriced_messages": 2, "sidechain_cost_usd": 0.5}}
    rows = [line.split() for line in usage_table(body, width=200).splitlines()]
    assert rows[0] == ["session", "models", "input", "output", "cache", "create", "cache", "read", "total",
                       "tokens", "cost", "(USD)", "subagents"]
    assert rows[1] == ["shop-1", "claude-sonnet-4-5", "1,000", "2,000", "0", "5,000", "8,000", "$1.23", "$0.50"]
    assert rows[2] == ["(none)", "claude-nebula-9", "1,000", "2,000", "0", "5,000", "8,000", "$0.00*", "$0.00"]
    assert rows[3] == ["Total", "-", "2,000", "4,000", "0", "10,000", "16,000", "$1.23*", "$0.50"]
    assert usage_table({"group_by": "day", "items": [], "since": "x"}) == "no usage recorded in that window"


def test_a_path_named_as_a_transcript_is_read_only_when_it_is_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    assert tail.read(str(fifo), tail.START) is None  # would block forever
    assert tail.read("/dev/zero", tail.START) is None  # would never end
    assert tail.read(str(tmp_path), tail.START) is None


def test_a_monster_line_is_passed_over_and_the_next_ones_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tail, "MAX_LINE", 1000)
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"x" * 5000 + b"\n" + b'{"type":"user"}\n')
    first = tail.read(str(path), tail.START, max_read=700)
    assert first is not None and first.lines == [] and first.position.offset == 5001 and first.more
    rest = tail.read(str(path), first.position, max_read=700)
    assert rest is not None and rest.lines == [b'{"type":"user"}']
