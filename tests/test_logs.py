"""Every line `aod serve` writes is one JSON object, and a misbehaving client costs at most one
quiet line: no error level, no traceback."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aod.logs import ClientNoise
from tests.conftest import hook_payload, run_aod
from tests.helpers.daemon import Daemon
from tests.helpers.rawhttp import auth_header, connect, reset

HOST = b"Host: localhost\r\n"
JSON = b"Content-Type: application/json\r\n"
# Each is answered 400 and logged by aiohttp; none must be logged as an error.
MALFORMED = {
    "tls hello": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n",
    "bad request line": b"GET / HTTP/9.9 x\r\n\r\n",
    "bad method": b"G(T / HTTP/1.1\r\n" + HOST + b"\r\n",
    "space in a header name": b"GET /healthz HTTP/1.1\r\n" + HOST + b"Bad Header: x\r\n\r\n",
    "header without a colon": b"GET /healthz HTTP/1.1\r\n" + HOST + b"nocolon\r\n\r\n",
    "oversize header": b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n",
    "oversize request line": b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
    "too many headers": b"GET /healthz HTTP/1.1\r\n" + HOST + b"".join(b"X-%d: 1\r\n" % i for i in range(300)) + b"\r\n",
    "bad content-length": b"POST /v1/events HTTP/1.1\r\n" + HOST + JSON + b"Content-Length: abc\r\n\r\n",
    "bad chunk size": b"POST /v1/events HTTP/1.1\r\n" + HOST + JSON + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
}


def _events(count: int) -> dict[str, Any]:
    payload = hook_payload("PreToolUse")
    return {"events": [{"agent": "claude-code", "payload": payload | {"tool_use_id": f"toolu_{i}"}} for i in range(count)]}


def _abandon(daemon: Daemon, transport: str) -> None:
    """Clients that go away at every stage: in the headers, in the body, before and during a response."""
    auth = auth_header(daemon)
    body_head = b"POST /v1/events HTTP/1.1\r\n" + HOST + auth + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    for end in (lambda s: s.close(), reset):
        sock = connect(daemon, transport)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        end(sock)
        sock = connect(daemon, transport)
        sock.sendall(body_head)
        time.sleep(0.1)  # the handler is reading the body now
        end(sock)
        for target in (b"/v1/events?limit=200", b"/v1/stream?after=0"):
            sock = connect(daemon, transport)
            sock.sendall(b"GET " + target + b" HTTP/1.1\r\n" + HOST + auth + b"\r\n")
            sock.recv(100)  # the response has started
            end(sock)
    sock = connect(daemon, transport)  # half-closed: no more requests, answer still wanted
    sock.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
    sock.shutdown(2)
    sock.close()


def test_malformed_and_abandoned_requests_cost_one_quiet_json_line_each(daemon: Daemon) -> None:
    assert daemon.post("/v1/events", _events(200)).body["accepted"] == 200
    for transport in ("tcp", "unix"):
        for name, raw in MALFORMED.items():
            with connect(daemon, transport) as sock:
                # With the token: over TCP a request without it is refused (401) before its body is read.
                sock.sendall(raw.replace(HOST, HOST + auth_header(daemon)))
                reply = sock.recv(65536)
                while b"400 Bad Request" not in reply and (more := sock.recv(65536)):
                    reply += more
                assert b"400 Bad Request" in reply, (transport, name, reply[:200])
        _abandon(daemon, transport)
    time.sleep(0.5)  # the last disconnects reach their handlers
    assert daemon.get("/healthz").status == 200
    assert daemon.stop() == 0

    lines = daemon.log.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all(isinstance(e, dict) and {"ts", "level", "logger", "msg"} <= e.keys() for e in entries)
    loud = [e for e in entries if e["level"] in ("error", "critical")]
    assert loud == []
    assert [e for e in entries if "exc" in e] == []
    assert not any("Traceback" in line for line in lines)
    # The malformed requests are still visible, one short line each (a bad method in a first request, as a TLS hello is, stays at debug as aiohttp has it).
    # The ingest routes' own protocol (aod/api/lean.py) logs what it cannot parse the same way.
    bad = [e for e in entries if e["logger"] in ("aiohttp.server", "aod.api.lean")]
    assert 2 * (len(MALFORMED) - 2) <= len(bad) <= 2 * len(MALFORMED)
    assert all(e["level"] == "info" and e["error"] and "\n" not in e["error"] for e in bad)
    assert any("Invalid header token" in e["error"] for e in bad)


def test_an_invalid_config_is_reported_as_a_json_line(tmp_path: Path, aod_env: dict[str, str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[reaper]\ninterval = "soon"\n')
    env = aod_env | {"AOD_DATA_DIR": str(tmp_path / "data"), "AOD_CONFIG": str(config)}
    result = run_aod("serve", env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(e["level"], e["msg"]) for e in entries] == [("error", "invalid config")]
    assert "reaper.interval" in entries[0]["error"]


def test_warnings_and_uncaught_exceptions_become_json_lines() -> None:
    code = """if True:
        import threading, warnings
        from aod import logs
        logs.setup("info")
        warnings.warn("a warning from a library", DeprecationWarning)
        thread = threading.Thread(target=lambda: 1 / 0, name="worker")
        thread.start(); thread.join()
        class Broken:
            def __del__(self): raise ValueError("in __del__")
        Broken()
        raise RuntimeError("escaped main")
    """
    result = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(e["level"], e["logger"]) for e in entries] == [
        ("warning", "py.warnings"), ("error", "aod"), ("warning", "aod"), ("critical", "aod"),
    ]
    assert "a warning from a library" in entries[0]["msg"]
    assert entries[1]["in_thread"] == "worker" and "ZeroDivisionError" in entries[1]["exc"]
    assert "ValueError: in __del__" in entries[2]["exc"]
    assert "RuntimeError: escaped main" in entries[3]["exc"]


def _filtered(logger: str, exc: BaseException, level: int = logging.DEBUG) -> logging.LogRecord | None:
    """The record aiohttp (or aod) would log at error about `exc`, after the filter; None if dropped."""
    logging.getLogger(logger).setLevel(level)
    try:
        record = logging.LogRecord(logger, logging.ERROR, __file__, 1, "it failed", (), (type(exc), exc, None))
        return record if ClientNoise().filter(record) else None
    finally:
        logging.getLogger(logger).setLevel(logging.NOTSET)


def test_only_the_http_server_s_client_errors_are_quieted() -> None:
    from aiohttp.http_exceptions import BadHttpMessage

    malformed = _filtered("aiohttp.server", BadHttpMessage("Invalid header token"))
    assert malformed is not None and malformed.levelno == logging.INFO and malformed.exc_info is None
    assert "Invalid header token" in malformed.error  # type: ignore[attr-defined]
    gone = _filtered("aod.api", ConnectionResetError("Connection lost"))
    assert gone is not None and gone.levelno == logging.DEBUG and gone.exc_info is None
    # Quieted below the logger's level, the record is dropped, not printed at its new level.
    assert _filtered("aod.api", ConnectionResetError("Connection lost"), level=logging.INFO) is None
    # A webhook notifier's refused connection is a real problem: level and traceback stay.
    refused = _filtered("aod.notify", ConnectionRefusedError("refused"))
    assert refused is not None and refused.levelno == logging.ERROR and refused.exc_info is not None
    # So is a handler's own bug, even on the server's loggers.
    bug = _filtered("aod.api", KeyError("x"))
    assert bug is not None and bug.levelno == logging.ERROR and bug.exc_info is not None
