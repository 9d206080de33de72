"""`aod serve` as a subprocess: ingest, queries, bad input, security, signals."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from aod.storage.migrate import migration_ids
from tests.conftest import hook_payload, run_aod
from tests.helpers.daemon import Daemon, SocketClient, request


def envelope(payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"agent": "claude-code", "payload": payload, **extra}


def db_rows(daemon: SocketClient, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    # Reading the WAL file from the test process is safe: readers never block the daemon.
    with sqlite3.connect(f"file:{daemon.data_dir / 'aod.db'}?mode=ro", uri=True) as c:
        return c.execute(sql, args).fetchall()


# --- ingest -----------------------------------------------------------------------------------


def test_batch_ingest_answers_counts_after_commit(daemon: Daemon) -> None:
    items = [envelope(hook_payload(n), uid=f"b-{n}") for n in ("SessionStart", "UserPromptSubmit", "PreToolUse")]
    reply = daemon.post("/v1/events", {"events": items})
    assert reply.status == 202
    assert reply.body == {"accepted": 3, "duplicates": 0, "rejected": []}
    stored = {r[0] for r in db_rows(daemon, "SELECT uid FROM events")}
    assert stored == {"b-SessionStart", "b-UserPromptSubmit", "b-PreToolUse"}


def test_resent_uid_and_refired_hook_are_stored_once(daemon: Daemon) -> None:
    payload = hook_payload("PreToolUse")
    assert daemon.post("/v1/events", envelope(payload, uid="same")).body["accepted"] == 1
    assert daemon.post("/v1/events", envelope(payload, uid="same")).body == {"accepted": 0, "duplicates": 1, "rejected": []}
    # Claude Code firing the hook again runs the client again: new uid, same content.
    assert daemon.post("/v1/events", envelope(payload, uid="other")).body["duplicates"] == 1
    assert db_rows(daemon, "SELECT count(*) FROM events") == [(1,)]
    # A different tool call is a different event.
    other = payload | {"tool_use_id": "toolu_other"}
    assert daemon.post("/v1/events", envelope(other)).body["accepted"] == 1


def test_dedup_window_expires(data_dir: Path, aod_env: dict[str, str]) -> None:
    d = Daemon(data_dir, aod_env, '[ingest]\ndedup_window = "300ms"\n').start()
    try:
        payload = hook_payload("Stop")
        assert d.post("/v1/events", envelope(payload)).body["accepted"] == 1
        time.sleep(0.5)
        assert d.post("/v1/events", envelope(payload)).body["accepted"] == 1
    finally:
        d.stop()


def test_dedup_window_survives_a_restart(data_dir: Path, aod_env: dict[str, str]) -> None:
    # The window lives in memory; a restart refills it from the newest stored events.
    d = Daemon(data_dir, aod_env, '[ingest]\ndedup_window = "1m"\n').start()
    payload, other = hook_payload("PreToolUse"), hook_payload("PostToolUse.bash")
    try:
        assert d.post("/v1/events", envelope(payload)).body["accepted"] == 1
        assert d.kill() == -9
        d.start()
        assert d.post("/v1/events", envelope(payload)).body == {"accepted": 0, "duplicates": 1, "rejected": []}
        assert d.post("/v1/events", envelope(other)).body["accepted"] == 1
        assert d.stop() == 0
        d.start()
        assert d.post("/v1/events", envelope(other)).body["duplicates"] == 1
        assert db_rows(d, "SELECT count(*) FROM events") == [(2,)]
    finally:
        d.stop()


def test_unknown_kinds_and_old_minimal_payloads_are_stored(api: SocketClient) -> None:
    minimal = {"session_id": "old-1", "transcript_path": "/tmp/t.jsonl", "hook_event_name": "Stop"}
    unknown = hook_payload("Stop") | {"hook_event_name": "TaskCreated", "task": {"id": 7}}
    nameless = {"session_id": "old-1", "something": True}
    for payload in (minimal, unknown, nameless):
        reply = api.post("/v1/hooks/claude-code", payload)
        assert reply.status == 202 and reply.body["accepted"] == 1, reply.body
    kinds = [r[0] for r in db_rows(api, "SELECT kind FROM events ORDER BY id")]
    assert kinds == ["Stop", "TaskCreated", "Unknown"]
    session = api.get("/v1/sessions/unknown-1").body
    assert session["agent_session_id"] == "old-1" and session["project_id"] == "unknown"


def test_event_columns_and_duration_pairing(api: SocketClient) -> None:
    pre = hook_payload("PreToolUse")
    post = hook_payload("PostToolUseFailure") | {"duration_ms": None}
    post.pop("duration_ms")
    t0 = 1_790_000_000_000_000_000
    # The Post arrives first; the late Pre fills in its duration.
    api.post("/v1/events", envelope(post, uid="post", occurred_at=t0 + 1_500_000_000))
    api.post("/v1/events", envelope(pre, uid="pre", occurred_at=t0))
    rows = db_rows(api, "SELECT uid, kind, tool_name, tool_use_id, duration_ms, ok FROM events ORDER BY id")
    assert rows == [
        ("post", "PostToolUseFailure", "Bash", "toolu_01ABC123xyz", 1500, 0),
        ("pre", "PreToolUse", "Bash", "toolu_01ABC123xyz", None, None),
    ]
    reported = hook_payload("PostToolUse.bash")
    api.post("/v1/events", envelope(reported, uid="reported"))
    assert db_rows(api, "SELECT duration_ms, ok FROM events WHERE uid = 'reported'") == [(4187, 1)]


def test_oversized_payload_is_trimmed_to_the_cap(api: SocketClient) -> None:
    payload = hook_payload("PostToolUse.edit")
    payload["tool_response"]["originalFile"] = "x" * 300_000
    payload["tool_input"]["new_string"] = "y" * 100_000
    assert api.post("/v1/events", envelope(payload, uid="big")).status == 202
    ((stored, size, trimmed),) = db_rows(api, "SELECT payload, payload_bytes, trimmed FROM events")
    assert trimmed == 1 and size > 400_000
    assert len(stored.encode()) <= 65536
    kept = json.loads(stored)
    assert kept["tool_name"] == "Edit" and kept["tool_use_id"] == payload["tool_use_id"]
    assert "aod trimmed" in kept["tool_response"]["originalFile"]


def test_sessions_projects_and_aod_session_id(api: SocketClient, tmp_path: Path) -> None:
    repo = tmp_path / "src" / "My Repo!"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "config").write_text('[remote "origin"]\n\turl = git@github.com:alice/my-repo.git\n')
    (repo / "pkg").mkdir()
    start = hook_payload("SessionStart") | {"cwd": str(repo / "pkg"), "session_id": "agent-a"}
    assert api.post("/v1/events", envelope(start)).status == 202
    project = api.get("/v1/projects").body["items"][0]
    assert project == project | {"id": "my-repo", "path": str(repo), "origin_url": "git@github.com:alice/my-repo.git"}
    assert [s["id"] for s in api.get("/v1/sessions").body["items"]] == ["my-repo-1"]

    # /clear gives the agent a new session id; AOD_SESSION_ID keeps the events on my-repo-1.
    cleared = hook_payload("SessionStart") | {"cwd": str(repo), "session_id": "agent-b", "source": "clear"}
    assert api.post("/v1/events", envelope(cleared, session="my-repo-1")).status == 202
    # A late event for the old agent id still lands on the same session.
    late = hook_payload("Stop") | {"cwd": str(repo), "session_id": "agent-a"}
    api.post("/v1/events", envelope(late))
    # A different agent session without AOD_SESSION_ID is adopted as a new session.
    other = hook_payload("SessionStart") | {"cwd": str(repo), "session_id": "agent-c"}
    api.post("/v1/events", envelope(other))
    sessions = {s["id"]: s for s in api.get("/v1/sessions").body["items"]}
    assert set(sessions) == {"my-repo-1", "my-repo-2"}
    assert sessions["my-repo-1"]["agent_session_id"] == "agent-b"
    assert sessions["my-repo-2"]["agent_session_id"] == "agent-c"
    assert db_rows(api, "SELECT count(*) FROM events WHERE session_id = 'my-repo-1'") == [(3,)]


def test_runtime_handle_from_the_hook_client(api: SocketClient) -> None:
    api.post("/v1/events", envelope(hook_payload("SessionStart"), runtime={"tmux_pane": "%3", "pid": 4242}))
    session = api.get("/v1/sessions").body["items"][0]
    assert (session["runtime"], session["runtime_handle"], session["pid"]) == ("tmux", "%3", 4242)


def test_activity_follows_occurred_at_not_arrival(api: SocketClient) -> None:
    t0 = time.time_ns() - 60_000_000_000  # recent, or the session would rightly be "stuck"
    sequence = [("SessionStart", 0), ("UserPromptSubmit", 1), ("PermissionRequest", 3), ("PreToolUse", 2)]
    for name, second in sequence:  # the PreToolUse (t=2) arrives after the PermissionRequest (t=3)
        api.post("/v1/events", envelope(hook_payload(name), occurred_at=t0 + second * 1_000_000_000))
    session = api.get("/v1/sessions").body["items"][0]
    assert (session["activity"], session["status"]) == ("waiting_input", "needs_input")
    api.post("/v1/events", envelope(hook_payload("PostToolUse"), occurred_at=t0 + 4_000_000_000))
    assert api.get("/v1/sessions").body["items"][0]["status"] == "working"
    # Stop with a running background task: the agent is still working.
    api.post("/v1/events", envelope(hook_payload("Stop"), occurred_at=t0 + 5_000_000_000))
    assert api.get("/v1/sessions").body["items"][0]["status"] == "working"
    done = hook_payload("Stop") | {"background_tasks": [{"id": "task-001", "status": "completed"}]}
    api.post("/v1/events", envelope(done, occurred_at=t0 + 5_500_000_000))
    assert api.get("/v1/sessions").body["items"][0]["status"] == "idle"
    api.post("/v1/events", envelope(hook_payload("SessionEnd"), occurred_at=t0 + 6_000_000_000))
    session = api.get("/v1/sessions").body["items"][0]
    assert (session["status"], session["termination_reason"]) == ("exited", "exited")


# --- queries ----------------------------------------------------------------------------------


def test_session_and_event_queries_with_filters_and_keyset(api: SocketClient) -> None:
    for i in range(7):
        payload = hook_payload("SessionStart") | {"session_id": f"s{i}", "cwd": "/work/p"}
        api.post("/v1/events", envelope(payload))
    api.post("/v1/events", envelope(hook_payload("PermissionRequest") | {"session_id": "s3", "cwd": "/work/p"}))
    pages, cursor = [], None
    while True:
        reply = api.get("/v1/sessions?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        assert reply.status == 200
        pages.append([s["id"] for s in reply.body["items"]])
        cursor = reply.body["next_cursor"]
        if cursor is None:
            break
    ids = [i for page in pages for i in page]
    assert len(ids) == 7 and len(set(ids)) == 7 and [len(p) for p in pages] == [3, 3, 1]
    assert ids[0] == "p-4", "the session with the newest change comes first"
    needs = api.get("/v1/sessions?status=needs_input").body["items"]
    assert [s["id"] for s in needs] == ["p-4"]
    assert api.get("/v1/sessions?status=idle&project=p&agent=claude-code&active=1").status == 200
    assert len(api.get("/v1/sessions?status=idle").body["items"]) == 6

    detail = api.get("/v1/sessions/p-4").body
    assert {"prs", "trackers", "escalations", "events"} <= set(detail)
    assert [e["kind"] for e in detail["events"]] == ["PermissionRequest", "SessionStart"]
    timeline = api.get("/v1/sessions/p-4/events?order=asc&payload=1").body["items"]
    assert [e["kind"] for e in timeline] == ["SessionStart", "PermissionRequest"]
    assert timeline[0]["payload"]["session_id"] == "s3"

    by_kind = api.get("/v1/events?kind=PermissionRequest").body["items"]
    assert [e["session_id"] for e in by_kind] == ["p-4"]
    assert api.get("/v1/events?tool=Bash&session=p-4").body["items"][0]["tool_name"] == "Bash"
    assert api.get("/v1/events?since=2999-01-01T00:00:00Z").body["items"] == []
    one = api.get(f"/v1/events/{by_kind[0]['id']}").body
    assert one["payload"]["hook_event_name"] == "PermissionRequest"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/sessions/nope", 404, "not_found"),
        ("/v1/sessions/nope/events", 404, "not_found"),
        ("/v1/events/999999", 404, "not_found"),
        ("/v1/sessions?limit=0", 400, "invalid_parameter"),
        ("/v1/sessions?limit=abc", 400, "invalid_parameter"),
        ("/v1/sessions?limit=%C2%B2", 400, "invalid_parameter"),  # "²": isdigit() but not int()
        ("/v1/events?limit=" + "9" * 5000, 400, "invalid_parameter"),  # over int()'s digit limit
        ("/v1/sessions?status=bogus", 400, "invalid_parameter"),
        ("/v1/sessions?cursor=!!notacursor", 400, "invalid_parameter"),
        ("/v1/events?cursor=WyJhYmMiXQ", 400, "invalid_parameter"),  # ["abc"]: right shape, not an id
        ("/v1/events?since=yesterday", 400, "invalid_parameter"),
        ("/v1/no/such/path", 404, "not_found"),
    ],
)
def test_query_errors_are_json(api: SocketClient, path: str, status: int, code: str) -> None:
    reply = api.get(path)
    assert reply.status == status
    assert reply.body["error"]["code"] == code and reply.body["error"]["message"]


def test_status_health_and_readiness(daemon: Daemon) -> None:
    daemon.post("/v1/events", envelope(hook_payload("SessionStart")))
    status = daemon.status()
    assert status["pid"] == daemon.proc.pid and status["ready"] is True
    assert status["db"]["schema_version"] == migration_ids()[-1] and len(status["db"]["epoch"]) == 16
    assert status["db"]["size_bytes"] > 0
    assert status["counts"] == {"projects": 1, "sessions": 1, "events": 1, "dead_letters": 0}
    assert status["sessions_by_status"] == {"idle": 1}
    assert status["spool"]["backlog"] == 0
    assert status["config"]["errors"] == []
    assert status["tcp"].startswith("127.0.0.1:") and not status["tcp"].endswith(":0")
    assert daemon.get("/healthz").body == {"ok": True}
    assert daemon.get("/readyz").status == 200


# --- bad input --------------------------------------------------------------------------------


def _dead_letters(daemon: Daemon) -> list[tuple[str, str, str | None]]:
    return db_rows(daemon, "SELECT source, error, body FROM dead_letters ORDER BY id")


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "dead_letter"),
    [
        (b"{not json", {}, 400, "invalid_json", "invalid JSON"),
        (b'{"payload": {"a": "\xff\xfe"}}', {}, 400, "invalid_json", "invalid JSON"),
        (b"[1, 2, {\"x\": 3}]", {}, 400, "invalid_envelope", "expected an envelope"),
        (b'{"agent": 5, "payload": {"session_id": "x"}}', {}, 400, "invalid_envelope", "agent:"),
        (b'{"payload": "just a string"}', {}, 400, "invalid_envelope", "payload:"),
        (b'{"payload": {"session_id": "x"}, "occurred_at": true}', {}, 400, "invalid_envelope", "occurred_at"),
        (b'{"payload": {"session_id": "x"}, "runtime": {"pid": "12"}}', {}, 400, "invalid_envelope", "runtime.pid"),
        (b'{"payload": {"no": "session"}}', {}, 400, "invalid_envelope", "no session"),
        (b'{"events": "nope"}', {}, 400, "invalid_envelope", "events: expected an array"),
        (b"{}", {"Content-Type": "text/plain"}, 415, "unsupported_media_type", "unsupported content type"),
    ],
)
def test_malformed_input_is_refused_and_dead_lettered(
    daemon: Daemon, body: bytes, headers: dict[str, str], status: int, code: str, dead_letter: str
) -> None:
    reply = daemon.post("/v1/events", body, headers=headers)
    assert reply.status == status, reply.body
    assert reply.body["error"]["code"] == code
    letters = _dead_letters(daemon)
    assert len(letters) == 1 and dead_letter in letters[0][1], letters
    assert daemon.get("/healthz").status == 200
    assert db_rows(daemon, "SELECT count(*) FROM events") == [(0,)]


def test_batch_with_garbage_items_keeps_the_good_ones(daemon: Daemon) -> None:
    items = [1, "x", envelope(hook_payload("SessionStart"), uid="good"), {"payload": []}, envelope(hook_payload("Stop"), uid="good2")]
    reply = daemon.post("/v1/events", {"events": items})
    assert reply.status == 202
    assert reply.body["accepted"] == 2
    assert [r["index"] for r in reply.body["rejected"]] == [0, 1, 3]
    letters = _dead_letters(daemon)
    assert [json.loads(body) for _, _, body in letters] == [1, "x", {"payload": []}]


def test_body_over_the_limit_is_413(data_dir: Path, aod_env: dict[str, str]) -> None:
    d = Daemon(data_dir, aod_env, '[ingest]\nmax_body_bytes = "64KiB"\n').start()
    try:
        big = json.dumps(envelope(hook_payload("Stop") | {"last_assistant_message": "z" * 100_000})).encode()
        reply = d.post("/v1/events", big)
        assert reply.status == 413 and reply.body["error"]["code"] == "body_too_large"
        assert "64" in reply.body["error"]["message"] or "65536" in reply.body["error"]["message"]
        assert len(_dead_letters(d)) == 1
        assert d.post("/v1/events", envelope(hook_payload("Stop"))).status == 202
    finally:
        d.stop()


def test_wrong_method_and_raw_hook_errors(daemon: Daemon) -> None:
    reply = request(daemon.socket, "DELETE", "/v1/events")
    assert reply.status == 405 and reply.body["error"]["code"] == "method_not_allowed"
    assert "POST" in reply.headers.get("allow", "")
    reply = daemon.post("/v1/hooks/claude-code", [1, 2])
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_payload"
    reply = daemon.post("/v1/hooks/bad%20agent%20name", hook_payload("Stop"))
    assert reply.status == 400
    assert len(_dead_letters(daemon)) == 2


# --- security ---------------------------------------------------------------------------------


def _tcp(daemon: Daemon, method: str, path: str, headers: dict[str, str | bytes] | None = None,
         body: bytes | None = None) -> tuple[int, Any]:
    reply = daemon.tcp(method, path, body, headers)
    return reply.status, reply.body


def test_socket_and_token_permissions(daemon: Daemon) -> None:
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon.socket.parent.stat().st_mode) == 0o700
    token_file = daemon.data_dir / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(token_file.read_text().strip()) >= 32


def test_tcp_requires_the_token(daemon: Daemon) -> None:
    token = (daemon.data_dir / "token").read_text().strip()
    status, body = _tcp(daemon, "GET", "/v1/sessions")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert _tcp(daemon, "GET", "/v1/sessions", {"Authorization": "Bearer wrong"})[0] == 401
    assert _tcp(daemon, "GET", "/v1/sessions", {"Authorization": f"Bearer {token}"})[0] == 200
    payload = json.dumps(envelope(hook_payload("Stop"))).encode()
    assert _tcp(daemon, "POST", "/v1/events", {"Content-Type": "application/json"}, payload)[0] == 401
    assert db_rows(daemon, "SELECT count(*) FROM events") == [(0,)]
    # The browser path: /login sets a cookie that then authorizes.
    status, _ = _tcp(daemon, "GET", f"/login?token={token}")
    assert status == 302
    assert _tcp(daemon, "GET", "/v1/sessions", {"Cookie": f"aod_session={token}"})[0] == 200
    assert _tcp(daemon, "GET", "/login?token=wrong")[0] == 401


def test_tcp_refuses_foreign_host_and_origin(daemon: Daemon) -> None:
    token = (daemon.data_dir / "token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    status, body = _tcp(daemon, "GET", "/v1/sessions", auth | {"Host": "evil.example:8765"})
    assert status == 403 and body["error"]["code"] == "forbidden_host"
    payload = json.dumps(envelope(hook_payload("Stop"))).encode()
    headers = auth | {"Content-Type": "application/json", "Origin": "http://evil.example"}
    status, body = _tcp(daemon, "POST", "/v1/events", headers, payload)
    assert status == 403 and body["error"]["code"] == "forbidden_origin"


# --- process lifecycle ------------------------------------------------------------------------


def test_sigterm_exits_zero_quickly_and_flushes(daemon: Daemon) -> None:
    daemon.post("/v1/events", envelope(hook_payload("SessionStart")))
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    assert not daemon.socket.exists()
    assert db_rows(daemon, "SELECT count(*) FROM events") == [(1,)]
    assert '"msg":"stopped"' in daemon.log.read_text()


def test_second_daemon_on_the_same_data_dir_exits_2(daemon: Daemon) -> None:
    second = subprocess.run([*daemon_cmd(daemon)], env=daemon.env, capture_output=True, text=True, timeout=30)
    assert second.returncode == 2
    assert "in use by another aod process" in second.stderr
    assert daemon.get("/healthz").status == 200


def daemon_cmd(daemon: Daemon) -> list[str]:
    from tests.conftest import aod_command

    return [*aod_command(), "serve"]


def test_tcp_port_in_use_is_a_clear_error(daemon: Daemon, tmp_path: Path, aod_env: dict[str, str]) -> None:
    taken = daemon.status()["tcp"]
    other = Daemon(tmp_path / "other", aod_env)
    (tmp_path / "other").mkdir()
    other.config.write_text(f'[server]\ntcp = "{taken}"\n')
    result = subprocess.run([*daemon_cmd(other)], env=other.env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"cannot listen on {taken}" in result.stderr


def test_stale_socket_of_a_killed_daemon_is_replaced(daemon: Daemon) -> None:
    daemon.post("/v1/events", envelope(hook_payload("SessionStart")))
    assert daemon.kill() == -signal.SIGKILL
    assert daemon.socket.exists(), "SIGKILL leaves the socket file behind"
    daemon.start()
    assert daemon.get("/v1/sessions").body["items"][0]["id"] == "my-project-1"
    daemon.stop()


def test_run_without_config_uses_defaults(aod_env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_"))} | aod_env
    env["AOD_CONFIG"] = ""
    # Defaults for everything but the port: 8765 may belong to an aod the developer runs.
    proc = subprocess.Popen([*daemon_cmd_plain(), "serve", "--tcp", "127.0.0.1:0"], env=env | {"AOD_DATA_DIR": str(tmp_path / "dd")},
                            stderr=subprocess.PIPE, text=True)
    try:
        sock = Path(aod_env["XDG_RUNTIME_DIR"]) / "aod" / "aod.sock"
        sock = tmp_path / "dd" / "aod.sock" if not sock.exists() else sock
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not sock.exists():
            time.sleep(0.05)
        assert request(sock, "GET", "/healthz").status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def daemon_cmd_plain() -> list[str]:
    from tests.conftest import aod_command

    return aod_command()


def test_cli_db_check_asks_the_daemon_while_it_runs(daemon: Daemon, aod_env: dict[str, str]) -> None:
    # The CLI never opens a served database: the daemon runs the checks (tests/test_cli_db.py).
    result = run_aod("db", "check", "--data-dir", str(daemon.data_dir), env=aod_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith(f"checked by the daemon on {daemon.socket}")
