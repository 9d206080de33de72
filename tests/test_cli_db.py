"""`aod db migrate|check` as a user runs them: the installed console script, in a subprocess."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from aod import __version__
from tests.conftest import run_aod


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
