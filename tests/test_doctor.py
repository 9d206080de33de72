"""`aod doctor`: the rules on hand-made facts, then the command against a real daemon."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

from aod import doctor
from tests.conftest import aod_command
from tests.helpers.daemon import Daemon

UID = os.geteuid()
EVERY_CHECK = ["daemon", "version", "config", "data dir", "token", "socket", "hooks", "service", "spool",
               "database", "wal", "disk", "escalations", "forward", "tmux", "git", "gh"]


def _stat(mode: int, uid: int = UID) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))


def _facts(**kw: Any) -> doctor.Facts:
    base = {"cli_version": "1.0", "uid": UID, "socket_path": "/run/aod/aod.sock", "data_dir": "/d",
            "config_path": None, "status": {"version": "1.0", "pid": 7}}
    return doctor.Facts(**(base | kw))


def test_rules_name_what_is_wrong_and_the_fix() -> None:
    mismatch = doctor.version(_facts(status={"version": "0.9"}))
    assert mismatch.status == "fail" and "0.9" in mismatch.detail and "restart" in (mismatch.fix or "")

    bad_file = doctor.config(_facts(config_path="/c.toml", config_error="reaper.interval: not a duration"))
    assert bad_file.status == "fail" and "not a duration" in bad_file.detail and "/c.toml" in (bad_file.fix or "")
    kept = doctor.config(_facts(config_path="/c.toml", status={"config": {"errors": ["routing.urgent: no notifier 'x'"]}}))
    assert kept.status == "fail" and "last good config" in kept.detail

    readable = doctor.token(_facts(stats={"/d/token": _stat(stat.S_IFREG | 0o644)}))
    assert readable.status == "fail" and "0644" in readable.detail and "chmod 600 /d/token" in (readable.fix or "")
    foreign = doctor.token(_facts(stats={"/d/token": _stat(stat.S_IFREG | 0o600, uid=UID + 1)}))
    assert foreign.status == "fail" and "chown" in (foreign.fix or "")

    shared = doctor.data_dir(_facts(stats={"/d": _stat(stat.S_IFDIR | 0o1777)}))
    assert shared.status == "fail" and "writable by anyone" in shared.detail
    group_db = doctor.data_dir(_facts(stats={"/d": _stat(stat.S_IFDIR | 0o700), "/d/aod.db": _stat(stat.S_IFREG | 0o640)}))
    assert group_db.status == "fail" and "/d/aod.db" in group_db.detail and "chmod go=" in (group_db.fix or "")

    open_socket_dir = doctor.socket(_facts(socket_dir="/run/aod", stats={"/run/aod": _stat(stat.S_IFDIR | 0o777)}))
    assert open_socket_dir.status == "fail" and "writable by group or others" in open_socket_dir.detail

    gone = doctor.HookEntry("/old/venv/bin/python", "/old/venv/aod/hook.py", False, False)
    moved = doctor.hooks(_facts(hooks=[doctor.HookScope("user", "/h/settings.json", entries=[gone])]))
    assert moved.status == "fail" and "/old/venv/aod/hook.py" in moved.detail and "--scope user" in (moved.fix or "")

    unrouted = doctor.escalations(_facts(status={"escalations": {"by_priority": {"urgent": 2, "info": 0}},
                                                 "routing": {"urgent": [], "info": []}}))
    assert unrouted.status == "warn" and "2 urgent" in unrouted.detail
    routed = doctor.escalations(_facts(status={"escalations": {"by_priority": {"urgent": 2}}, "routing": {"urgent": ["pager"]}}))
    assert routed.status == "ok"

    assert doctor.wal(_facts(wal_bytes=doctor.WAL_WARN_BYTES + 1)).status == "warn"
    assert doctor.disk(_facts(free_bytes=1 << 20)).status == "fail"
    assert doctor.disk(_facts(status={"storage": {"state": "full"}}, free_bytes=1 << 40)).status == "fail"
    on_path = {c.name: c.status for c in doctor.tools(_facts(tools={"tmux": "/bin/tmux", "git": None, "gh": None}))}
    assert on_path == {"tmux": "ok", "git": "fail", "gh": "warn"}
    assert doctor.report([doctor.Check("a", "warn", "")])["ok"] is True
    assert doctor.report([doctor.Check("a", "ok", ""), doctor.Check("b", "fail", "")])["ok"] is False


def _doctor(daemon: Daemon, home: Path, *args: str, encoding: str = "utf-8") -> subprocess.CompletedProcess[str]:
    env = daemon.env | {"HOME": str(home), "CLAUDE_CONFIG_DIR": str(home / ".claude"), "PYTHONIOENCODING": encoding}
    # cwd: the project and local scopes are read from there.
    return subprocess.run([*aod_command(), *args], capture_output=True, text=True, env=env, cwd=home,
                          encoding=encoding, timeout=60)


def _by_name(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    found = json.loads(result.stdout)
    assert set(found) == {"ok", "checks"} and found["ok"] is (result.returncode == 0)
    assert [c["name"] for c in found["checks"]] == EVERY_CHECK
    for c in found["checks"]:
        assert set(c) == {"name", "status", "detail", "fix"} and c["status"] in ("ok", "warn", "fail")
    return {c["name"]: c for c in found["checks"]}


def test_doctor_healthy_then_broken_modes_missing_hooks_and_a_stopped_daemon(
    short_dir: Path, aod_env: dict[str, str], tmp_path: Path
) -> None:
    data = short_dir / "data"
    data.mkdir(mode=0o700)
    home = tmp_path / "home"
    home.mkdir()
    daemon = Daemon(data, aod_env).start()
    try:
        installed = _doctor(daemon, home, "hooks", "install")
        assert installed.returncode == 0, installed.stderr
        healthy = _doctor(daemon, home, "doctor", "--json")
        checks = _by_name(healthy)
        assert healthy.returncode == 0, healthy.stdout
        assert all(c["status"] in ("ok", "warn") for c in checks.values())
        for name in ("daemon", "version", "config", "data dir", "token", "socket", "hooks", "database", "spool"):
            assert checks[name]["status"] == "ok", checks[name]
        assert "user" in checks["hooks"]["detail"]
        assert "quick_check: ok" in checks["database"]["detail"]

        text = _doctor(daemon, home, "doctor")
        assert text.returncode == 0 and text.stdout.startswith("✓ daemon")
        ascii_text = _doctor(daemon, home, "doctor", encoding="ascii")
        assert ascii_text.returncode == 0 and ascii_text.stdout.startswith("ok daemon")

        assert checks["service"]["status"] == "warn" and "aod service install" in checks["service"]["fix"]
        assert _doctor(daemon, home, "service", "install", "--no-start").returncode == 0
        (data / "token").chmod(0o644)
        assert _doctor(daemon, home, "hooks", "uninstall").returncode == 0
        broken = _doctor(daemon, home, "doctor", "--json")
        checks = _by_name(broken)
        assert broken.returncode == 1
        assert checks["token"]["status"] == "fail" and f"chmod 600 {data / 'token'}" in checks["token"]["fix"]
        assert checks["hooks"]["status"] == "fail" and "aod hooks install" in checks["hooks"]["fix"]
        # Installed, not started (and here perhaps no user systemd to ask): a warning naming the unit.
        unit = Path(daemon.env["XDG_CONFIG_HOME"]) / "systemd" / "user" / "aod.service"
        assert checks["service"]["status"] == "warn" and str(unit) in checks["service"]["detail"]
        failing_text = _doctor(daemon, home, "doctor", encoding="ascii")
        assert failing_text.returncode == 1
        assert "XX token" in failing_text.stdout and f"fix: chmod 600 {data / 'token'}" in failing_text.stdout
    finally:
        daemon.stop()

    stopped = _doctor(daemon, home, "doctor", "--json")
    checks = _by_name(stopped)
    assert stopped.returncode == 1
    assert checks["daemon"]["status"] == "fail" and "aod serve" in checks["daemon"]["fix"]
    # Without a daemon the CLI checks the file itself, under the data dir lock.
    assert checks["database"]["status"] == "ok", checks["database"]

    # A config file that does not load: named, and the rest still checked on the same paths.
    daemon.config.write_text("[server\n")
    unparsable = _by_name(_doctor(daemon, home, "doctor", "--json"))
    assert unparsable["config"]["status"] == "fail" and str(daemon.config) in unparsable["config"]["fix"]
    assert unparsable["database"]["status"] == "ok" and unparsable["token"]["status"] == "fail"
