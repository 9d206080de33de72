"""`aod import claude`: transcripts from before aod become sessions, prompts, tool calls and usage,
through the running daemon, once (a second run adds nothing), without touching what hooks sent."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from aod.transcripts.importer import read_transcript, transcripts
from tests.conftest import run_aod
from tests.helpers.daemon import Daemon
from tests.test_transcripts import CUT, FIXTURES, NOTES, SHOP, SUBAGENT
from tests.test_transcripts_daemon import HOOKS

NOW = time.time()


def test_a_transcript_reads_as_the_hook_events_of_its_session() -> None:
    (session,) = read_transcript(SHOP, NOW)
    kinds = [(e["payload"]["hook_event_name"], e["payload"].get("tool_name")) for e in session.events]
    assert kinds == [
        ("SessionStart", None), ("UserPromptSubmit", None),
        ("PreToolUse", "Bash"), ("PostToolUseFailure", "Bash"),
        ("PreToolUse", "Task"), ("PostToolUse", "Task"),  # the subagent's own lines are no events here
        ("PreToolUse", "Edit"), ("PostToolUse", "Edit"),
        ("StopFailure", None),  # Claude Code's placeholder reply for a failed request
        ("Stop", None), ("SessionEnd", None),  # quiet for more than an hour: over
    ]
    failed = session.events[3]
    assert failed["payload"]["duration_ms"] == 5500 and failed["payload"]["error"] == "1 failed, 41 passed"
    assert failed["occurred_at"] == "2025-10-01T09:00:09.400000Z" and failed["agent"] == "claude-code"
    assert all(e["payload"]["session_id"] == session.agent_session_id for e in session.events)
    assert session.events[1]["payload"]["prompt"] == "Fix the rounding bug in the checkout total"
    assert session.events[8]["payload"]["error"] == "API Error: overloaded"
    # Derived from the transcript: read again, the same uids.
    (again,) = read_transcript(SHOP, NOW)
    assert [e["uid"] for e in again.events] == [e["uid"] for e in session.events]
    assert len({e["uid"] for e in session.events}) == len(session.events)
    assert [u["message_id"] for u in session.usage].count("msg_01A") == 2  # the daemon keeps one
    # A session still being written gets no SessionEnd; a subagent's file gives usage only.
    (recent,) = read_transcript(SHOP, 1_759_309_330 + 60)  # a minute after its last line
    assert recent.events[-1]["payload"]["hook_event_name"] == "Stop"
    (sub,) = read_transcript(SUBAGENT, NOW)
    assert sub.events == [] and [u["is_sidechain"] for u in sub.usage] == [True]
    (cut,) = read_transcript(CUT, NOW)
    assert [u["message_id"] for u in cut.usage] == ["msg_03A"]  # the cut last line is not read
    assert read_transcript(NOTES, NOW, since="2025-10-03T00:00:00.000000Z") == []
    assert len(transcripts(FIXTURES)) == 4


def test_import_through_the_daemon_once_and_matching_sessions_known_from_hooks(
        data_dir: Path, aod_env: dict[str, str], tmp_path: Path) -> None:
    home = tmp_path / "claude"
    shutil.copytree(FIXTURES, home / "projects")
    # No content dedup window: the re-import below sends a Stop like the first run's seconds later,
    # which a real re-import (minutes or days later) is not; uids still make every event count once.
    d = Daemon(data_dir, aod_env, "[ingest]\ndedup_window = 0\n").start()
    env = {**aod_env, "AOD_SOCKET": str(d.socket)}
    try:
        # The notes session was seen by aod's hooks: the import must not add its events again.
        # (Its transcript_path elsewhere: the live tailer must not be the one that counts its usage here.)
        hooked = {**json.loads((HOOKS / "SessionStart.json").read_text()), "session_id": NOTES.stem,
                  "transcript_path": str(tmp_path / "elsewhere.jsonl"), "cwd": str(tmp_path)}
        assert d.post("/v1/hooks/claude-code", hooked).status == 202
        first = run_aod("import", "claude", "--projects", str(home / "projects"), "--json", env=env)
        assert first.returncode == 0, first.stderr
        summary = json.loads(first.stdout)
        assert (summary["transcripts"], summary["sessions"], summary["matched"]) == (4, 3, 1)
        assert summary["usage"] == 11 and summary["usage_duplicates"] == 1  # msg_01A twice
        assert summary["events"] > 0 and summary["events_rejected"] == 0
        sessions = d.get("/v1/sessions?agent=claude-code&limit=10").body["items"]
        by_agent = {s["agent_session_id"]: s for s in sessions}
        assert len(sessions) == 3 and set(by_agent) == {SHOP.stem, NOTES.stem, CUT.stem}
        shop = d.session(by_agent[SHOP.stem]["id"])
        assert shop["title"] == "Fix the rounding bug in the checkout total" and shop["branch"] == "fix-total"
        assert shop["status"] == "exited" and shop["ended_at"] == "2025-10-01T09:02:10.000000Z"
        tools = {(e["kind"], e["tool_name"]): e for e in d.get(
            f"/v1/sessions/{shop['id']}/events?limit=50").body["items"]}
        assert tools[("PostToolUseFailure", "Bash")]["duration_ms"] == 5500
        assert tools[("PostToolUseFailure", "Bash")]["ok"] is False and tools[("PostToolUse", "Edit")]["ok"] is True
        assert shop["usage"]["messages"] == 7 and shop["usage"]["cost_usd"] == pytest.approx(0.05879105)
        assert shop["usage"]["sidechain_messages"] == 2
        # The hooked session kept its one event and got its usage.
        known = d.session(by_agent[NOTES.stem]["id"])
        assert [e["kind"] for e in known["events"]] == ["SessionStart"] and known["branch"] is None
        assert known["usage"]["messages"] == 3 and known["usage"]["unpriced_messages"] == 1
        # A session that ended an hour before aod heard of it is history: nobody is paged.
        time.sleep(1.0)
        assert d.get("/v1/escalations").body["items"] == []
        # Again: nothing new.
        second = run_aod("import", "claude", "--projects", str(home / "projects"), "--json", env=env)
        again = json.loads(second.stdout)
        assert (again["events"], again["usage"]) == (0, 0) and again["event_duplicates"] == summary["events"]
        assert len(d.get("/v1/sessions?agent=claude-code&limit=10").body["items"]) == 3
        plain = run_aod("import", "claude", "--projects", str(home / "projects"), env=env)
        assert plain.returncode == 0 and "0 new events" in plain.stdout and "0 new usage rows" in plain.stdout
        # The transcript grew (a resumed session): its new line is imported, and its new end.
        grown = home / "projects" / "-home-dev-shop" / SHOP.name
        last = json.loads(grown.read_bytes().splitlines()[-1])
        with grown.open("ab") as f:
            f.write(json.dumps({**last, "type": "user", "uuid": "u-12", "timestamp": "2025-10-01T09:30:00.000Z",
                                "message": {"role": "user", "content": "One more thing"}}).encode() + b"\n")
        third = json.loads(run_aod("import", "claude", "--projects", str(home / "projects"), "--json", env=env).stdout)
        assert (third["events"], third["usage"]) == (3, 0)  # the prompt, Stop and SessionEnd at 09:30
        shop = d.session(shop["id"])
        assert shop["status"] == "exited" and shop["ended_at"] == "2025-10-01T09:30:00.000000Z"
    finally:
        d.stop()
    missing = run_aod("import", "claude", "--projects", str(tmp_path / "nope"), env=env)
    assert missing.returncode == 2 and "no directory" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    down = run_aod("import", "claude", "--projects", str(empty), env=env)
    assert down.returncode == 3 and "no daemon" in down.stderr
