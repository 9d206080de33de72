"""What `aod status` says about escalations and notifiers, and the `aod escalations` table (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from aod.cli import render
from aod.cli.escalations import escalations_table

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
BASE = {"version": "0.1.0", "pid": 1, "uptime_s": 5}


def line(status: dict[str, object], label: str) -> str:
    return next(x for x in render.status_report(BASE | status).splitlines() if x.startswith(label + " "))


def test_open_escalations_by_priority() -> None:
    counts = {"open": 4, "by_priority": {"urgent": 3, "action": 0, "info": 1}}
    assert line({"escalations": counts}, "pages") == "pages     4 open escalations (urgent 3, info 1): aod escalations --open"
    one = {"open": 1, "by_priority": {"urgent": 0, "action": 1, "info": 0}}
    assert line({"escalations": one}, "pages") == "pages     1 open escalation (action 1): aod escalations --open"
    none = {"open": 0, "by_priority": {"urgent": 0, "action": 0, "info": 0}}
    assert line({"escalations": none}, "pages") == "pages     no open escalations"
    assert line({}, "pages") == "pages     -"  # a daemon from before this was reported


def test_where_each_priority_goes() -> None:
    routing = {"urgent": ["desktop", "hook"], "action": ["hook"], "info": []}
    assert line({"notifiers": ["desktop", "hook"], "routing": routing}, "notify") == (
        "notify    desktop (urgent), hook (urgent, action); info: no one")
    every = {"urgent": ["pager"], "action": ["pager"], "info": ["pager"]}
    assert line({"notifiers": ["pager"], "routing": every}, "notify") == "notify    pager (urgent, action, info)"
    partly = {"urgent": ["a"], "action": [], "info": []}
    assert line({"notifiers": ["a", "b"], "routing": partly}, "notify") == (
        "notify    a (urgent), b (unrouted); action, info: no one")


def test_reaching_no_one_is_loud() -> None:
    nowhere = {"urgent": [], "action": [], "info": []}
    for notifiers in ([], ["defined-but-unrouted"]):
        text = line({"notifiers": notifiers, "routing": nowhere}, "notify")
        assert text.startswith("notify    NO ONE: escalations are only recorded; install notify-send")
        assert "[notifiers] and [routing]" in text
    assert line({}, "notify") == "notify    -"


def escalation(**over: object) -> dict[str, object]:
    return {"id": 7, "session_id": "webapp-3", "reaction": "needs-input", "priority": "urgent",
            "message": "The agent is waiting for your input.\n\nSession webapp-3 is waiting.",
            "created_at": "2026-11-22T11:55:00Z", "acked_at": None, "deliveries": []} | over


def test_escalations_table() -> None:
    items = [
        escalation(id=12, deliveries=[
            {"notifier": "desktop", "status": "sent"}, {"notifier": "hook", "status": "pending"}]),
        escalation(id=9, priority="info", reaction="exited", acked_at="2026-11-22T11:59:00Z",
                   message="The agent exited."),
        escalation(),
    ]
    lines = escalations_table(items, now=NOW, width=200).splitlines()
    assert lines[0].split() == ["ID", "PRIORITY", "REACTION", "SESSION", "CREATED", "ACKED", "SENT", "TO", "MESSAGE"]
    assert lines[1].split()[:8] == ["12", "urgent", "needs-input", "webapp-3", "5m", "ago", "NOT", "ACKED"]
    assert "desktop sent, hook pending" in lines[1]
    assert "1m ago" in lines[2] and "NOT ACKED" not in lines[2]
    # A message's blank lines do not break the row; routed nowhere reads as such.
    assert len(lines) == 4 and "no one" in lines[3] and "input.  Session webapp-3" in lines[3]
    # Ids line up on the right, for `aod ack`.
    assert lines[1].index("12") + 2 == lines[3].index("7") + 1


def test_escalations_table_narrow_and_empty() -> None:
    narrow = escalations_table([escalation(id=123456)], now=NOW, width=80).splitlines()
    assert all(len(x) <= 80 for x in narrow) and "…" in narrow[1]
    assert narrow[1].split()[:4] == ["123456", "urgent", "needs-input", "webapp-3"]  # kept whole
    assert escalations_table([], now=NOW) == "no escalations"
    assert escalations_table([], open_only=True, now=NOW) == "no open escalations"
