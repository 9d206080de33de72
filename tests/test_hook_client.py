"""The hook client (aod/hook.py), run as the agent runs it: a real process, stdin, a real socket.

The daemon's side is played by tests/helpers/fake_daemon.py, so each answer (202, 400,
503, silence, garbage) is exactly what the test says it is.
"""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aod.hook
from aod.hook import build_envelope, is_json_object, post, spool
from tests.conftest import FIXTURES
from tests.helpers.fake_daemon import FakeDaemon, answer, silent

REPO = Path(__file__).resolve().parent.parent
HOOK_SCRIPT = REPO / "aod" / "hook.py"
EVENTS = "/v1/events"
PRE_TOOL_USE = (FIXTURES / "PreToolUse.json").read_bytes()
AOD_SCRIPT = Path(sys.executable).parent / "aod"
WALL_LIMIT = 2.0  # the 0.3 s deadline plus interpreter start, generously


# --- a daemon stand-in ---------------------------------------------------------------------------


@pytest.fixture
def fake_daemon(fake_daemon: FakeDaemon) -> FakeDaemon:
    """The shared stand-in (conftest), acknowledging each event as the daemon does."""
    fake_daemon.routes[EVENTS] = answer(202)
    return fake_daemon


# --- running the client --------------------------------------------------------------------------




@pytest.fixture(params=["script", "console"])
def hook_argv(request: pytest.FixtureRequest) -> list[str]:
    """The client as `aod hooks install` writes it (`python -S …/hook.py`), and as `aod hook`."""
    if request.param == "script":
        return [sys.executable, "-S", str(HOOK_SCRIPT)]
    return [str(AOD_SCRIPT), "hook"]


def hook_env(data_dir: Path, socket: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_", "TMUX", "CLAUDE"))}
    env.update(HOME=str(data_dir.parent), AOD_DATA_DIR=str(data_dir), AOD_SOCKET=str(socket), **extra)
    return env


def run_hook(
    argv: list[str], stdin: bytes, env: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[bytes], float]:
    start = time.monotonic()
    done = subprocess.run([*argv, *args], input=stdin, env=env, capture_output=True, timeout=30)
    return done, time.monotonic() - start


def spooled(data_dir: Path) -> list[Path]:
    spool_dir = data_dir / "spool"
    return sorted(spool_dir.iterdir()) if spool_dir.exists() else []


def only_spool_file(data_dir: Path) -> tuple[Path, dict[str, Any]]:
    files = spooled(data_dir)
    assert len(files) == 1, files
    return files[0], json.loads(files[0].read_bytes())


def assert_silent_success(done: subprocess.CompletedProcess[bytes]) -> None:
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


# --- (a) no daemon: the envelope is spooled ------------------------------------------------------


def test_without_a_daemon_the_envelope_is_spooled(hook_argv: list[str], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = hook_env(data_dir, tmp_path / "nothing-here.sock", AOD_SESSION_ID="web-7", TMUX_PANE="%42")
    before = time.time_ns()

    done, wall = run_hook(hook_argv, PRE_TOOL_USE, env)

    assert_silent_success(done)
    assert wall < WALL_LIMIT
    file, envelope = only_spool_file(data_dir)
    assert envelope["payload"] == json.loads(PRE_TOOL_USE)
    assert envelope["agent"] == "claude-code"
    assert envelope["session"] == "web-7"
    assert envelope["runtime"] == {"tmux_pane": "%42", "pid": os.getpid()}
    assert before <= envelope["occurred_at"] <= time.time_ns()
    assert isinstance(envelope["occurred_at"], int)
    assert uuid.UUID(hex=envelope["uid"]).version == 7
    assert int(envelope["uid"][:12], 16) == envelope["occurred_at"] // 1_000_000  # time-ordered
    assert envelope["uid"] == uuid.UUID(hex=envelope["uid"]).hex
    assert file.name == f"{envelope['occurred_at']}-{envelope['uid']}.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "spool").stat().st_mode) == 0o700
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert [p.name for p in (data_dir / "spool").iterdir() if p.name.startswith(".")] == []
    # The payload travels verbatim, not re-encoded.
    assert PRE_TOOL_USE.strip() in file.read_bytes()


def test_without_session_or_pane_those_fields_are_omitted(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    done, _ = run_hook([sys.executable, "-S", str(HOOK_SCRIPT)], PRE_TOOL_USE, hook_env(data_dir, tmp_path / "x.sock"))

    assert_silent_success(done)
    _, envelope = only_spool_file(data_dir)
    assert "session" not in envelope
    assert envelope["runtime"] == {"pid": os.getpid()}
    assert list(envelope) == ["uid", "agent", "occurred_at", "runtime", "payload"]


def test_every_fixture_is_carried_verbatim(tmp_path: Path) -> None:
    fixtures = sorted(FIXTURES.glob("*.json"))
    assert len(fixtures) >= 15
    for n, fixture in enumerate(fixtures):
        data_dir = tmp_path / f"data{n}"
        done, _ = run_hook(
            [sys.executable, "-S", str(HOOK_SCRIPT)], fixture.read_bytes(), hook_env(data_dir, tmp_path / "x.sock")
        )
        assert_silent_success(done)
        _, envelope = only_spool_file(data_dir)
        assert envelope["payload"] == json.loads(fixture.read_bytes()), fixture.name


# --- (b) a daemon that acknowledges --------------------------------------------------------------


def test_an_acknowledged_post_is_not_spooled(hook_argv: list[str], tmp_path: Path, fake_daemon: FakeDaemon) -> None:
    data_dir = tmp_path / "data"
    env = hook_env(data_dir, fake_daemon.socket_path, AOD_SESSION_ID="s-1")

    done, wall = run_hook(hook_argv, PRE_TOOL_USE, env, "--agent", "codex")

    assert_silent_success(done)
    assert wall < WALL_LIMIT
    assert spooled(data_dir) == []
    assert len(fake_daemon.seen) == 1
    request = fake_daemon.seen[0]
    assert (request.method, request.path) == ("POST", "/v1/events")
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["host"] == "localhost"
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(request.body)
    envelope = json.loads(request.body)
    assert envelope["payload"] == json.loads(PRE_TOOL_USE)
    assert (envelope["agent"], envelope["session"], envelope["runtime"]["pid"]) == ("codex", "s-1", os.getpid())


# --- (c) what each answer means ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "spools"),
    [(200, False), (202, False), (400, False), (413, False), (415, False), (408, True), (429, True),
     (500, True), (503, True), (507, True)],
)
def test_the_answer_decides_whether_to_spool(
    tmp_path: Path, fake_daemon: FakeDaemon, status: int, spools: bool
) -> None:
    data_dir = tmp_path / "data"
    fake_daemon.routes[EVENTS] = answer(status)

    done, _ = run_hook([sys.executable, "-S", str(HOOK_SCRIPT)], PRE_TOOL_USE, hook_env(data_dir, fake_daemon.socket_path))

    assert_silent_success(done)
    assert len(fake_daemon.seen) == 1
    files = spooled(data_dir)
    assert len(files) == (1 if spools else 0)
    if spools:
        # The spool holds exactly the bytes the daemon was offered: one envelope, one uid.
        assert files[0].read_bytes() == fake_daemon.seen[0].body


def test_a_503_is_spooled_by_the_console_form_too(
    hook_argv: list[str], tmp_path: Path, fake_daemon: FakeDaemon
) -> None:
    data_dir = tmp_path / "data"
    fake_daemon.routes[EVENTS] = answer(503)

    done, _ = run_hook(hook_argv, PRE_TOOL_USE, hook_env(data_dir, fake_daemon.socket_path))

    assert_silent_success(done)
    file, envelope = only_spool_file(data_dir)
    assert file.read_bytes() == fake_daemon.seen[0].body
    assert envelope["payload"] == json.loads(PRE_TOOL_USE)


@pytest.mark.parametrize("garbled", [b"garbage\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"", b"HTTP/1.1 202"])
def test_a_garbled_or_missing_answer_is_spooled(tmp_path: Path, fake_daemon: FakeDaemon, garbled: bytes) -> None:
    data_dir = tmp_path / "data"
    fake_daemon.routes[EVENTS] = lambda seen: garbled  # then the server closes the connection

    done, _ = run_hook([sys.executable, "-S", str(HOOK_SCRIPT)], PRE_TOOL_USE, hook_env(data_dir, fake_daemon.socket_path))

    assert_silent_success(done)
    assert len(fake_daemon.seen) == 1
    assert len(spooled(data_dir)) == 1


def test_a_daemon_that_never_answers_costs_one_deadline(
    hook_argv: list[str], tmp_path: Path, fake_daemon: FakeDaemon
) -> None:
    data_dir = tmp_path / "data"
    fake_daemon.routes[EVENTS] = silent

    done, wall = run_hook(hook_argv, PRE_TOOL_USE, hook_env(data_dir, fake_daemon.socket_path))

    assert_silent_success(done)
    assert 0.3 <= wall < WALL_LIMIT  # it did wait for the daemon, and no longer than the deadline allows
    assert len(fake_daemon.seen) == 1
    _, envelope = only_spool_file(data_dir)
    assert envelope["payload"] == json.loads(PRE_TOOL_USE)


@pytest.mark.parametrize(("setting", "at_least"), [("0.9", 0.9), ("900ms", 0.9)])
def test_aod_hook_timeout_sets_the_deadline(
    tmp_path: Path, fake_daemon: FakeDaemon, setting: str, at_least: float
) -> None:
    data_dir = tmp_path / "data"
    fake_daemon.routes[EVENTS] = silent

    done, wall = run_hook(
        [sys.executable, "-S", str(HOOK_SCRIPT)], PRE_TOOL_USE, hook_env(data_dir, fake_daemon.socket_path, AOD_HOOK_TIMEOUT=setting)
    )

    assert_silent_success(done)
    assert at_least <= wall < at_least + WALL_LIMIT
    assert len(spooled(data_dir)) == 1


def test_the_config_file_sets_socket_and_timeout(tmp_path: Path, fake_daemon: FakeDaemon) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'socket = "{fake_daemon.socket_path}"\n\n[hook]\ntimeout = "700ms"\n')
    env = hook_env(tmp_path / "data", tmp_path / "ignored.sock", AOD_CONFIG=str(config))
    del env["AOD_SOCKET"]

    done, _ = run_hook([sys.executable, "-S", str(HOOK_SCRIPT)], PRE_TOOL_USE, env)
    assert_silent_success(done)
    assert len(fake_daemon.seen) == 1

    fake_daemon.routes[EVENTS] = silent
    done, wall = run_hook([sys.executable, "-S", str(HOOK_SCRIPT)], PRE_TOOL_USE, env)
    assert_silent_success(done)
    assert 0.7 <= wall < 0.7 + WALL_LIMIT


def test_socket_and_agent_options_beat_the_environment(tmp_path: Path, fake_daemon: FakeDaemon) -> None:
    env = hook_env(tmp_path / "data", tmp_path / "wrong.sock")

    done, _ = run_hook(
        [sys.executable, "-S", str(HOOK_SCRIPT)],
        PRE_TOOL_USE,
        env,
        "--unknown-flag",
        f"--socket={fake_daemon.socket_path}",
        "--agent=gemini",
    )

    assert_silent_success(done)
    assert [json.loads(r.body)["agent"] for r in fake_daemon.seen] == ["gemini"]
    assert spooled(tmp_path / "data") == []


# --- (d) stdin that is not a JSON object ---------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"not json {", b"\xff\xfe{\"a\": 1}", b"", b"[1, 2]", b'"text"', b'{"a": NaN}', b'{"a": 1} trailing'],
    ids=["not-json", "invalid-utf8", "empty", "array", "string", "nan", "trailing"],
)
def test_stdin_that_is_not_a_json_object_travels_as_text(hook_argv: list[str], tmp_path: Path, raw: bytes) -> None:
    data_dir = tmp_path / "data"

    done, _ = run_hook(hook_argv, raw, hook_env(data_dir, tmp_path / "x.sock"))

    assert_silent_success(done)
    file, _ = only_spool_file(data_dir)

    def refuse(name: str) -> None:
        raise ValueError(name)

    # Strict JSON (no NaN), so the daemon can parse it and dead-letter the text.
    envelope = json.loads(file.read_bytes().decode("utf-8"), parse_constant=refuse)
    assert envelope["payload"] == raw.decode("utf-8", "replace")
    assert envelope["agent"] == "claude-code"


def test_text_payload_reaches_the_daemon(tmp_path: Path, fake_daemon: FakeDaemon) -> None:
    done, _ = run_hook([sys.executable, "-S", str(HOOK_SCRIPT)], b"\x00oops", hook_env(tmp_path / "d", fake_daemon.socket_path))

    assert_silent_success(done)
    assert json.loads(fake_daemon.seen[0].body)["payload"] == "\x00oops"


# --- (e) nowhere to spool ------------------------------------------------------------------------


@pytest.mark.parametrize("blocker", ["data-dir-under-a-file", "spool-is-a-file"])
def test_an_unwritable_spool_is_swallowed_silently(hook_argv: list[str], tmp_path: Path, blocker: str) -> None:
    # A regular file where a directory must be stops even root, unlike permission bits.
    if blocker == "data-dir-under-a-file":
        (tmp_path / "file").write_text("")
        data_dir = tmp_path / "file" / "data"
    else:
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        (data_dir / "spool").write_text("")

    done, wall = run_hook(hook_argv, PRE_TOOL_USE, hook_env(data_dir, tmp_path / "x.sock"))

    assert_silent_success(done)
    assert wall < WALL_LIMIT
    assert not data_dir.exists() or (data_dir / "spool").is_file()


def test_an_unreadable_config_file_is_swallowed(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(b"socket = = \xff\n")
    data_dir = tmp_path / "data"
    env = hook_env(data_dir, tmp_path / "x.sock", AOD_CONFIG=str(config))
    del env["AOD_SOCKET"]

    done, _ = run_hook([sys.executable, "-S", str(HOOK_SCRIPT)], PRE_TOOL_USE, env)

    assert_silent_success(done)
    assert len(spooled(data_dir)) == 1


# --- in process, and what it imports -------------------------------------------------------------


def test_main_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("AOD_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AOD_SOCKET", str(tmp_path / "x.sock"))
    monkeypatch.setenv("TMUX_PANE", "%1")
    monkeypatch.delenv("AOD_SESSION_ID", raising=False)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(PRE_TOOL_USE)))

    assert aod.hook.main(["--agent", "codex"]) == 0

    assert capfd.readouterr() == ("", "")
    _, envelope = only_spool_file(data_dir)
    assert envelope["agent"] == "codex"
    assert envelope["runtime"] == {"tmux_pane": "%1", "pid": os.getppid()}
    assert envelope["payload"] == json.loads(PRE_TOOL_USE)


def test_main_in_process_survives_anything(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    def explode(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"{}")))
    monkeypatch.setattr(aod.hook, "post", explode)

    assert aod.hook.main([]) == 0
    assert capfd.readouterr() == ("", "")


def _imported_modules(env: dict[str, str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-S", str(HOOK_SCRIPT)],
        input=PRE_TOOL_USE,
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0
    assert done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert lines and all(line.startswith("import time:") for line in lines)
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


@pytest.mark.parametrize("daemon_up", [True, False])
def test_the_client_imports_only_what_it_needs(tmp_path: Path, fake_daemon: FakeDaemon, daemon_up: bool) -> None:
    socket = fake_daemon.socket_path if daemon_up else tmp_path / "x.sock"

    modules = _imported_modules(hook_env(tmp_path / "data", socket))

    assert {"_json", "_socket", "aod.paths"} <= modules
    heavy = {"aiohttp", "apsw", "orjson", "aod.config", "argparse", "uuid", "socket", "pathlib", "typing",
             "tomllib", "http.client", "email", "asyncio", "dataclasses", "json", "re", "enum"}
    assert modules & heavy == set()
    assert len(spooled(tmp_path / "data")) == (0 if daemon_up else 1)


# --- the public functions ------------------------------------------------------------------------


def test_build_envelope_post_and_spool(tmp_path: Path, fake_daemon: FakeDaemon) -> None:
    envelope = build_envelope(PRE_TOOL_USE, "claude-code", {"AOD_SESSION_ID": "x-1"})
    parsed = json.loads(envelope)

    assert parsed["session"] == "x-1"
    assert parsed["payload"] == json.loads(PRE_TOOL_USE)
    assert post(envelope, fake_daemon.socket_path, 1.0) is True
    assert fake_daemon.seen[0].body == envelope
    assert post(envelope, tmp_path / "absent.sock", 1.0) is False
    fake_daemon.routes[EVENTS] = answer(503)
    assert post(envelope, fake_daemon.socket_path, 1.0) is False

    path = spool(envelope, parsed["uid"], parsed["occurred_at"], tmp_path / "data")

    assert path == tmp_path / "data" / "spool" / f"{parsed['occurred_at']}-{parsed['uid']}.json"
    assert path.read_bytes() == envelope
    assert build_envelope(b"{}", "a", {}) != build_envelope(b"{}", "a", {})  # a fresh uid each time


# --- the payload check is json.loads' -------------------------------------------------------------


def _loads_object(text: str) -> bool:
    def refuse(name: str) -> None:
        raise ValueError(name)

    try:
        return isinstance(json.loads(text, parse_constant=refuse), dict)
    except (ValueError, RecursionError):
        return False


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_JSON_TEXT = _JSON_VALUES.map(lambda v: json.dumps(v, allow_nan=True))
_NOISE = st.sampled_from(["", " ", "\n", "\t", "\r", "\x0b", "\x0c", "}", "{", ",", "x", '"', "\\", "NaN", "\x00", "\ud800"])


@settings(max_examples=400, deadline=None)
@given(_JSON_TEXT, _NOISE, _NOISE, st.integers(min_value=0, max_value=40))
def test_is_json_object_agrees_with_json_loads(text: str, before: str, after: str, cut: int) -> None:
    for candidate in (text, before + text + after, text[:-cut] if cut else text, text.replace(":", "", 1)):
        assert is_json_object(candidate) == _loads_object(candidate), candidate


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{}", True), (" {\n} ", True), ('{"a": [1, {"b": null}]}', True), ('{"a": NaN}', False),
     ('{"a": -Infinity}', False), ("{} {}", False), ("[{}]", False), ("", False), ("{", False),
     ('{"a": "\x01"}', False), ('{"a": "\\ud800"}', True), ("\x0c{}", False),
     ('{"a":' * 100_000 + "1" + "}" * 100_000, False)],
    ids=lambda v: repr(v)[:20],
)
def test_is_json_object_on_edge_cases(text: str, expected: bool) -> None:
    assert is_json_object(text) is expected
    assert _loads_object(text) is expected
