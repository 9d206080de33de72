"""Escalations nobody would see: `GET /v1/escalations`, `aod escalations`, what `aod status` says
about them, and the default desktop notifier. A real daemon, escalations recorded by its real
reaction engine (a permission prompt pages `needs-input`, urgent; an exit pages `exited`, info).

The daemon's PATH is always set by the test, so whether this machine has notify-send decides
nothing: a bare PATH has none, a stand-in `notify-send` (a script recording its arguments) is one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aod.storage import keyset
from tests.conftest import hook_payload, run_aod
from tests.helpers.daemon import Daemon, SocketClient
from tests.helpers.hostile import CURSORS, QUERY_VALUES
from tests.helpers.waiting import wait_for


def bare_path(root: Path) -> str:
    """A PATH with what the daemon may run (git, tmux) and no desktop notifier."""
    bare = root / "bare-bin"
    bare.mkdir(exist_ok=True)
    for tool in ("git", "tmux"):
        found = shutil.which(tool)
        if found and not (bare / tool).exists():
            (bare / tool).symlink_to(found)
    return str(bare)


def fake_notify_send(root: Path) -> tuple[Path, Path]:
    """A `notify-send` that appends its arguments (one JSON array per line) to a file."""
    bin_dir, record = root / "desktop-bin", root / "notified.jsonl"
    bin_dir.mkdir()
    script = bin_dir / "notify-send"
    script.write_text(f"#!{sys.executable}\nimport json, sys\n"
                      f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    script.chmod(0o755)
    return script, record


def start(daemons: list[Daemon], root: Path, env: dict[str, str], path: str, config: str = "") -> Daemon:
    data = root / "data"
    data.mkdir(mode=0o700, exist_ok=True)
    d = Daemon(data, {**env, "PATH": path}, config).start()
    daemons.append(d)
    return d


def payload(name: str, agent_session: str, **extra: Any) -> dict[str, Any]:
    body = hook_payload(name)
    return body | {"session_id": agent_session} | extra


def post(d: Daemon, *payloads: dict[str, Any]) -> None:
    for p in payloads:
        reply = d.post("/v1/events", {"agent": "claude-code", "payload": p})
        assert reply.status == 202, reply.body


def session_of(d: Daemon, agent_session: str) -> str:
    items = d.get("/v1/sessions?limit=500").body["items"]
    return next(s["id"] for s in items if s["agent_session_id"] == agent_session)


def escalations(d: Daemon, query: str = "") -> dict[str, Any]:
    reply = d.get(f"/v1/escalations{query}")
    assert reply.status == 200, reply.body
    return reply.body


def cli_env(d: Daemon) -> dict[str, str]:
    return {k: v for k, v in d.env.items() if k.startswith(("AOD_", "XDG_"))}


def log_lines(d: Daemon, logger: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in d.log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == logger]


def test_list_filters_pages_and_ack_with_no_notifier(
    daemons: list[Daemon], short_dir: Path, aod_env: dict[str, str]
) -> None:
    d = start(daemons, short_dir, aod_env, bare_path(short_dir))
    # Three agents wait for a permission (urgent needs-input), a fourth exits (info `exited`).
    post(d, *(payload("PermissionRequest", f"agent-{n}") for n in (1, 2, 3)))
    post(d, payload("SessionStart", "agent-4"), payload("SessionEnd", "agent-4"))
    wait_for(lambda: len(escalations(d)["items"]) == 4, message="four escalations")
    sids = {n: session_of(d, f"agent-{n}") for n in (1, 2, 3, 4)}

    every = escalations(d)
    assert every["next_cursor"] is None
    ids = [e["id"] for e in every["items"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    by_session = {e["session_id"]: e for e in every["items"]}
    assert {by_session[sids[n]]["reaction"] for n in (1, 2, 3)} == {"needs-input"}
    assert {by_session[sids[n]]["priority"] for n in (1, 2, 3)} == {"urgent"}
    assert (by_session[sids[4]]["reaction"], by_session[sids[4]]["priority"]) == ("exited", "info")
    # Nothing is routed: every escalation was recorded, and none has a delivery.
    assert all(e["deliveries"] == [] and e["acked_at"] is None for e in every["items"])
    # The same object as the session detail shows.
    assert d.get(f"/v1/sessions/{sids[2]}").body["escalations"] == [by_session[sids[2]]]

    # Pages of 3 then 1: every escalation once, in order.
    first = escalations(d, "?limit=3")
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = escalations(d, f"?limit=3&cursor={first['next_cursor']}")
    assert rest["next_cursor"] is None
    assert [e["id"] for e in first["items"] + rest["items"]] == ids

    assert [e["session_id"] for e in escalations(d, f"?session={sids[3]}")["items"]] == [sids[3]]
    missing = d.get("/v1/escalations?session=no-such-session")
    assert missing.status == 404 and missing.body["error"] == {"code": "not_found", "message": "no session 'no-such-session'"}
    assert [e["session_id"] for e in escalations(d, "?priority=info")["items"]] == [sids[4]]
    assert {e["session_id"] for e in escalations(d, "?priority=urgent")["items"]} == {sids[n] for n in (1, 2, 3)}
    assert len(escalations(d, "?priority=urgent,info")["items"]) == 4
    assert len(escalations(d, "?priority=urgent&priority=info")["items"]) == 4
    assert escalations(d, "?priority=action")["items"] == []

    # Acknowledged: no longer open, still listed without the filter.
    acked_id = by_session[sids[1]]["id"]
    acked = d.post(f"/v1/escalations/{acked_id}/ack", {}).body
    open_ids = [e["id"] for e in escalations(d, "?open=1")["items"]]
    assert acked_id not in open_ids and len(open_ids) == 3
    assert [e["id"] for e in escalations(d, "?open=0")["items"]] == ids
    listed = next(e for e in escalations(d)["items"] if e["id"] == acked_id)
    assert listed == acked  # the ack answers the escalation exactly as the list shows it
    open_urgent = escalations(d, "?open=1&priority=urgent&limit=1")
    assert len(open_urgent["items"]) == 1 and open_urgent["items"][0]["id"] != acked_id
    after = escalations(d, f"?open=1&priority=urgent&limit=1&cursor={open_urgent['next_cursor']}")
    assert after["next_cursor"] is None and after["items"][0]["id"] not in (acked_id, open_urgent["items"][0]["id"])

    # /v1/status counts what is open, and says where escalations go: nowhere.
    status = d.status()
    assert status["escalations"] == {"open": 3, "by_priority": {"urgent": 2, "action": 0, "info": 1}}
    assert status["notifiers"] == [] and status["routing"] == {"urgent": [], "action": [], "info": []}
    # ... which the daemon said once, at start, with how to change it.
    (warning,) = [line for line in log_lines(d, "aod.notify") if line["level"] == "warning"]
    assert "reach no one" in warning["msg"] and "[routing]" in warning["fix"] and "notify-send" in warning["fix"]

    # aod status: the open escalations by priority, and that they reach no one.
    shown = run_aod("status", env=cli_env(d))
    assert shown.returncode == 0, shown.stderr
    assert "pages     3 open escalations (urgent 2, info 1): aod escalations --open" in shown.stdout
    assert "notify    NO ONE: escalations are only recorded; install notify-send, or set [notifiers]" in shown.stdout

    # aod escalations: the table, the filters, --json, paging.
    table = run_aod("escalations", env=cli_env(d))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "PRIORITY", "REACTION", "SESSION", "CREATED", "ACKED", "SENT", "TO", "MESSAGE"]
    assert [int(line.split()[0]) for line in lines[1:]] == ids
    row = next(line for line in lines if line.split()[0] == str(by_session[sids[2]]["id"]))
    assert "urgent" in row and "needs-input" in row and sids[2] in row and "NOT ACKED" in row and "no one" in row
    assert "NOT ACKED" not in next(line for line in lines if line.split()[0] == str(acked_id))

    opened = run_aod("escalations", "--open", "--priority", "urgent", env=cli_env(d))
    assert opened.returncode == 0, opened.stderr
    assert sorted(int(line.split()[0]) for line in opened.stdout.splitlines()[1:]) == sorted(
        by_session[sids[n]]["id"] for n in (2, 3))
    one = run_aod("escalations", "--session", sids[4], "--json", env=cli_env(d))
    assert json.loads(one.stdout) == {"items": [by_session[sids[4]]], "next_cursor": None}
    assert run_aod("escalations", "--open", "--session", sids[1], env=cli_env(d)).stdout == "no open escalations\n"

    page = run_aod("escalations", "--limit", "2", env=cli_env(d))
    assert len(page.stdout.splitlines()) == 3 and "more than 2 escalations; see them all with --all" in page.stderr
    every_page = run_aod("escalations", "--limit", "2", "--all", "--json", env=cli_env(d))
    assert [e["id"] for e in json.loads(every_page.stdout)["items"]] == ids

    unknown = run_aod("escalations", "--session", "no-such-session", env=cli_env(d))
    assert unknown.returncode == 4 and "no session no-such-session" in unknown.stderr
    refused = run_aod("escalations", "--priority", "panic", env=cli_env(d))
    assert refused.returncode == 1 and "priority: unknown 'panic'" in refused.stderr
    d.stop()
    down = run_aod("escalations", env=cli_env(d))
    assert down.returncode == 3 and "no daemon is answering" in down.stderr


BAD = [
    ("open=maybe", "open"),
    ("priority=panic", "priority"),
    ("priority=urgent,sms", "priority"),
    ("limit=0", "limit"),
    ("limit=501", "limit"),
    ("limit=x", "limit"),
    ("cursor=not-a-cursor", "cursor"),
    (f"cursor={keyset.encode(['a string'])}", "cursor"),
    (f"cursor={keyset.encode([2**63])}", "cursor"),
    (f"cursor={keyset.encode([1, 2])}", "cursor"),
]


def test_bad_parameters_are_400(api: SocketClient) -> None:
    d = api
    for query, name in BAD:
        reply = d.get(f"/v1/escalations?{query}")
        assert reply.status == 400, (query, reply.body)
        assert reply.body["error"]["code"] == "invalid_parameter", query
        assert reply.body["error"]["message"].startswith(f"{name}:"), (query, reply.body)
    # Whatever a client sends: an answer or a JSON refusal, never a server error.
    for name in ("open", "session", "priority", "limit", "cursor"):
        for value in CURSORS if name == "cursor" else QUERY_VALUES:
            reply = d.get(f"/v1/escalations?{name}={quote(value, safe='%')}")
            assert reply.status in (200, 400, 404), (name, value, reply.status)
            assert "items" in reply.body if reply.status == 200 else reply.body["error"]["code"], (name, value)


def test_default_config_pages_the_desktop_when_notify_send_is_on_path(
    daemons: list[Daemon], short_dir: Path, aod_env: dict[str, str]
) -> None:
    script, record = fake_notify_send(short_dir)
    d = start(daemons, short_dir, aod_env, f"{script.parent}{os.pathsep}{bare_path(short_dir)}")
    assert d.status()["notifiers"] == ["desktop"]
    assert d.status()["routing"] == {"urgent": ["desktop"], "action": [], "info": []}
    assert [line for line in log_lines(d, "aod.notify") if line["level"] == "warning"] == []

    post(d, payload("PermissionRequest", "agent-1"))
    sid = session_of(d, "agent-1")
    (escalation,) = wait_for(lambda: [e for e in escalations(d)["items"]
                                      if e["deliveries"] and e["deliveries"][0]["status"] != "pending"],
                             message="the desktop delivery settled")
    (delivery,) = escalation["deliveries"]
    assert (delivery["notifier"], delivery["status"], delivery["attempts"]) == ("desktop", "sent", 1)
    (argv,) = [json.loads(line) for line in record.read_text().splitlines()]
    assert "--urgency=critical" in argv and f"aod: needs-input in {sid}" in argv

    shown = run_aod("status", env=cli_env(d))
    assert "notify    desktop (urgent); action, info: no one" in shown.stdout
    table = run_aod("escalations", env=cli_env(d)).stdout
    assert "desktop sent" in table

    # Reloaded without notify-send on PATH: the default routes nowhere from then on.
    script.unlink()
    d.config.write_text(d.config.read_text() + "# touched\n")
    wait_for(lambda: d.status()["notifiers"] == [], message="the reload dropped the desktop notifier")
    post(d, payload("PermissionRequest", "agent-2"))
    wait_for(lambda: len(escalations(d)["items"]) == 2, message="the second escalation")
    newest = escalations(d)["items"][0]
    assert newest["session_id"] == session_of(d, "agent-2") and newest["deliveries"] == []


def test_an_empty_routing_table_turns_the_desktop_default_off(
    daemons: list[Daemon], short_dir: Path, aod_env: dict[str, str]
) -> None:
    script, record = fake_notify_send(short_dir)
    d = start(daemons, short_dir, aod_env, f"{script.parent}{os.pathsep}{bare_path(short_dir)}", "[routing]\n")
    assert (d.status()["notifiers"], d.status()["routing"]["urgent"]) == ([], [])
    post(d, payload("PermissionRequest", "agent-1"))
    (escalation,) = wait_for(lambda: escalations(d, "?open=1")["items"], message="the escalation")
    assert escalation["deliveries"] == [] and not record.exists()
