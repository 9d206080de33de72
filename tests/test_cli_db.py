"""`aod db migrate|check` as a user runs them: the installed console script, in a subprocess, on a
file of its own or through a real running daemon."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

from aod import __version__
from aod.storage.lock import DataDirLock
from aod.storage.migrate import migration_ids
from tests.conftest import run_aod
from tests.helpers.daemon import Daemon, SocketClient


def test_migrate_then_check_on_a_fresh_data_dir(data_dir: Path, aod_env: dict[str, str]) -> None:
    first = run_aod("db", "migrate", "--data-dir", str(data_dir), env=aod_env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_schema" in first.stdout
    again = run_aod("db", "migrate", "--data-dir", str(data_dir), env=aod_env)
    assert again.returncode == 0 and "is up to date" in again.stdout

    check = run_aod("db", "check", "--data-dir", str(data_dir), "--json", env=aod_env)
    assert check.returncode == 0, check.stdout
    report = json.loads(check.stdout)
    assert report["ok"] is True
    assert report["db_path"] == str(data_dir / "aod.db")
    names = {c["name"] for c in report["checks"]}
    assert {"journal_mode", "integrity", "schema version", "cdc triggers", "change_log trigger"} <= names


def test_global_options_work_before_and_after_the_subcommand(tmp_path: Path, aod_env: dict[str, str]) -> None:
    before, after, env_dir = tmp_path / "before", tmp_path / "after", tmp_path / "env"
    assert run_aod("--data-dir", str(before), "db", "migrate", env=aod_env).returncode == 0
    assert run_aod("db", "migrate", "--data-dir", str(after), env=aod_env).returncode == 0
    assert run_aod("db", "migrate", env=aod_env | {"AOD_DATA_DIR": str(env_dir)}).returncode == 0
    for d in (before, after, env_dir):
        assert (d / "aod.db").exists()
    # The flag wins over the environment.
    flagged = run_aod("db", "check", "--data-dir", str(before), env=aod_env | {"AOD_DATA_DIR": str(env_dir)})
    assert f"database {before / 'aod.db'}" in flagged.stdout


def test_default_data_dir_follows_xdg(aod_env: dict[str, str]) -> None:
    result = run_aod("db", "migrate", env=aod_env)
    assert result.returncode == 0, result.stderr
    assert (Path(aod_env["XDG_DATA_HOME"]) / "aod" / "aod.db").exists()


def test_check_reports_a_missing_database(data_dir: Path, aod_env: dict[str, str]) -> None:
    result = run_aod("db", "check", "--data-dir", str(data_dir / "nowhere"), env=aod_env)
    assert result.returncode == 1
    assert "run `aod db migrate`" in result.stdout


def test_check_fails_on_a_missing_trigger(data_dir: Path, aod_env: dict[str, str]) -> None:
    assert run_aod("db", "migrate", "--data-dir", str(data_dir), env=aod_env).returncode == 0
    with sqlite3.connect(data_dir / "aod.db") as c:
        c.execute("DROP TRIGGER events_cdc_insert")
    result = run_aod("db", "check", "--data-dir", str(data_dir), env=aod_env)
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "missing: events_cdc_insert" in result.stdout
    assert "change_log trigger" in result.stdout


def test_invalid_config_is_one_clear_message(data_dir: Path, tmp_path: Path, aod_env: dict[str, str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[storage]\nsynchronous = "sometimes"\n')
    result = run_aod("db", "migrate", "--data-dir", str(data_dir), "--config", str(config), env=aod_env)
    assert result.returncode == 2
    assert str(config) in result.stderr and "storage.synchronous" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (data_dir / "aod.db").exists()


def test_config_file_in_the_default_place_is_read(tmp_path: Path, aod_env: dict[str, str]) -> None:
    chosen = tmp_path / "from-config"
    config = Path(aod_env["XDG_CONFIG_HOME"]) / "aod" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'data_dir = "{chosen}"\n')
    assert run_aod("db", "migrate", env=aod_env).returncode == 0
    assert (chosen / "aod.db").exists()


def test_usage_and_version(aod_env: dict[str, str]) -> None:
    bare = run_aod(env=aod_env)
    assert bare.returncode == 2 and "db" in bare.stdout
    assert run_aod("--version", env=aod_env).stdout.strip() == __version__
    unknown = run_aod("db", "explode", env=aod_env)
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr


# --- with a daemon running: it owns the file ----------------------------------------------------


def test_check_goes_through_a_running_daemon(daemon: Daemon) -> None:
    quick = run_aod("db", "check", "--json", env=daemon.env)
    assert quick.returncode == 0, quick.stderr
    online = json.loads(quick.stdout)
    assert online["ok"] is True and online["full"] is False
    assert online["db_path"] == str(daemon.data_dir / "aod.db")
    integrity = {c["name"]: c for c in online["checks"]}["integrity"]
    assert integrity["detail"] == "quick_check: ok"
    full = json.loads(run_aod("db", "check", "--json", "--full", env=daemon.env).stdout)
    assert full["full"] is True and {c["name"]: c for c in full["checks"]}["integrity"]["detail"] == "integrity_check: ok"
    text = run_aod("db", "check", env=daemon.env)
    assert text.returncode == 0 and f"checked by the daemon on {daemon.socket}" in text.stdout
    # The round trip's session was rolled back inside the daemon's writer: nobody sees it.
    assert daemon.get("/v1/sessions").body["items"] == []
    assert [(c["name"], c["ok"]) for c in online["checks"]][-1] == ("change_log trigger", True)

    # The same report as the CLI makes on its own once the daemon is gone.
    assert daemon.stop() == 0
    offline = json.loads(run_aod("db", "check", "--json", env=daemon.env).stdout)
    assert offline.keys() == online.keys()
    assert [(c["name"], c["ok"]) for c in offline["checks"]] == [(c["name"], c["ok"]) for c in online["checks"]]


def test_the_daemon_checks_the_file_for_real(daemon: Daemon) -> None:
    # Another connection changes the schema under the running daemon; its check must see it.
    with contextlib.closing(sqlite3.connect(daemon.data_dir / "aod.db")) as c:
        c.execute("DROP TRIGGER sessions_cdc_insert")
    result = run_aod("db", "check", env=daemon.env)
    assert result.returncode == 1, result.stdout
    assert "missing: sessions_cdc_insert" in result.stdout
    assert "FAIL  change_log trigger" in result.stdout and "0 rows logged" in result.stdout
    assert "checked by the daemon" in result.stdout


def test_check_refuses_a_bad_flag(api: SocketClient) -> None:
    reply = api.get("/v1/admin/check?full=maybe")
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_parameter"
    assert "full" in reply.body["error"]["message"]


def test_migrate_with_a_running_daemon_says_the_daemon_migrates(daemon: Daemon) -> None:
    latest = migration_ids()[-1]
    result = run_aod("db", "migrate", env=daemon.env)
    assert result.returncode == 0, result.stderr
    assert f"the daemon on {daemon.socket}" in result.stdout and "migrates" in result.stdout
    assert f"schema version {latest}" in result.stdout and "nothing pending" in result.stdout

    # A daemon started by older code (before the newest migration was installed) reports an
    # older schema version in /v1/status, which reads it from the file.
    with contextlib.closing(sqlite3.connect(daemon.data_dir / "aod.db")) as c, c:
        c.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (migration_ids()[0],))
    behind = run_aod("db", "migrate", env=daemon.env)
    assert behind.returncode == 1
    assert f"schema version {migration_ids()[0]}" in behind.stdout
    assert "restart the daemon" in behind.stderr and latest in behind.stderr
    assert migration_ids()[0] + "," not in behind.stderr  # applied ones are not listed as pending


def test_a_locked_data_dir_without_a_daemon(data_dir: Path, aod_env: dict[str, str]) -> None:
    assert run_aod("db", "migrate", "--data-dir", str(data_dir), env=aod_env).returncode == 0
    with DataDirLock(data_dir):  # what a daemon that stopped answering looks like
        for args in (["db", "check"], ["db", "migrate"]):
            result = run_aod(*args, "--data-dir", str(data_dir), "--socket", str(data_dir / "none.sock"), env=aod_env)
            assert result.returncode == 2, result.stdout
            assert "in use by another aod process" in result.stderr and "no daemon is answering" in result.stderr
