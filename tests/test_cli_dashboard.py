"""`aod dashboard [--url]` against a real daemon: the URL logs a client in over TCP; the command
says clearly when there is no daemon or no TCP."""

from __future__ import annotations

import http.client
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import run_aod
from tests.helpers.daemon import Daemon


def test_url_is_the_daemons_port_and_token_and_logs_in(daemon: Any) -> None:
    done = run_aod("dashboard", "--url", env=daemon.env)
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    token = (daemon.data_dir / "token").read_text().strip()
    assert url == f"http://{daemon.status()['tcp']}/login?token={token}"
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1" and parts.port != 8765
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("GET", f"{parts.path}?{parts.query}")
    login = conn.getresponse()
    login.read()
    assert login.status == 302 and login.getheader("Location") == "/"
    cookie = login.getheader("Set-Cookie").split(";")[0]
    assert cookie == f"aod_session={token}"
    conn.request("GET", "/v1/status", headers={"Cookie": cookie})
    status = conn.getresponse()
    assert status.status == 200 and json.loads(status.read())["tcp"] == daemon.status()["tcp"]
    conn.close()


def test_without_url_it_hands_the_url_to_the_browser(daemon: Any, tmp_path: Path) -> None:
    record = tmp_path / "opened"
    browser = tmp_path / "browser"
    browser.write_text(f"#!{sys.executable}\nimport sys\nopen({str(record)!r}, 'w').write(sys.argv[1])\n")
    browser.chmod(0o755)
    done = run_aod("dashboard", env={**daemon.env, "BROWSER": str(browser)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert record.read_text() == run_aod("dashboard", "--url", env=daemon.env).stdout.strip()


def test_no_daemon_exits_3(data_dir: Path, aod_env: dict[str, str]) -> None:
    done = run_aod("dashboard", "--url", "--data-dir", str(data_dir), "--socket", str(data_dir / "aod.sock"), env=aod_env)
    assert done.returncode == 3
    assert "no daemon is answering" in done.stderr and done.stdout == ""


def test_a_daemon_without_tcp_is_explained(data_dir: Path, aod_env: dict[str, str]) -> None:
    d = Daemon(data_dir, aod_env).start(args=("--tcp", ""))
    try:
        done = run_aod("dashboard", "--url", env=d.env)
        assert done.returncode == 1
        assert 'server.tcp = ""' in done.stderr and done.stdout == ""
    finally:
        d.stop()


def test_an_ipv6_listener_gets_brackets_in_the_url() -> None:
    from aod.cli.dashboard import login_url

    assert login_url("::1:8765", "t0k") == "http://[::1]:8765/login?token=t0k"
    assert login_url("127.0.0.1:41234", "t0k") == "http://127.0.0.1:41234/login?token=t0k"
