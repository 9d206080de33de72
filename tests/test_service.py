"""`aod service`: the rendered units as systemd and plistlib read them, and install/uninstall on real files.

systemctl runs for real: every test points XDG_RUNTIME_DIR at an empty directory and drops
DBUS_SESSION_BUS_ADDRESS, so no user instance can answer (as in a container) and no test can
touch the developer's own services.
"""

from __future__ import annotations

import fnmatch
import os
import plistlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from aod.service_units import Stamp, judge
from tests.conftest import REPO, run_aod

UNITS = ("aod.socket", "aod.service")


@pytest.fixture
def env(tmp_path: Path, aod_env: dict[str, str]) -> dict[str, str]:
    # A data dir with a space and a %: both need escaping in a unit file.
    home = tmp_path / "home"
    home.mkdir()
    data = tmp_path / "my data %i"
    return {**aod_env, "HOME": str(home), "AOD_DATA_DIR": str(data), "PATH": os.environ["PATH"],
            "DBUS_SESSION_BUS_ADDRESS": ""}


def _unit_dir(env: dict[str, str]) -> Path:
    return Path(env["XDG_CONFIG_HOME"]) / "systemd" / "user"


def _settings(text: str) -> list[tuple[str, str]]:
    return [tuple(line.split("=", 1)) for line in text.splitlines() if "=" in line and not line.startswith("#")]


@pytest.mark.skipif(sys.platform == "darwin", reason="systemd-analyze is Linux only")
def test_installed_units_pass_systemd_analyze_verify(env: dict[str, str], short_dir: Path) -> None:
    # Short: systemd also loads the user units sockets.target pulls in, with sockets under the runtime dir.
    env["XDG_RUNTIME_DIR"] = str(short_dir)
    result = run_aod("service", "install", "--no-start", env=env)
    assert result.returncode == 0, result.stderr
    files = [_unit_dir(env) / name for name in UNITS]
    assert all(judge(f.read_text()) is Stamp.OURS for f in files)
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/test installs the systemd package"
    # User mode needs only a runtime dir, not a running systemd; with --man=no it checks no man pages.
    verify = subprocess.run([analyze, "verify", "--user", "--man=no", *map(str, files)], capture_output=True,
                            text=True, env={**os.environ, "XDG_RUNTIME_DIR": env["XDG_RUNTIME_DIR"]}, timeout=60)
    # Only what concerns aod's units: a developer's machine may carry other user units with their own warnings.
    said = [line for line in (verify.stdout + verify.stderr).splitlines() if "aod" in line]
    assert (verify.returncode, said) == (0, [])

    service = dict(_settings(files[1].read_text()))
    assert {k: service[k] for k in ("Type", "WatchdogSec", "Restart", "NoNewPrivileges", "UMask")} == {
        "Type": "notify", "WatchdogSec": "30", "Restart": "on-failure", "NoNewPrivileges": "yes", "UMask": "0077"}
    assert 5 < int(service["TimeoutStopSec"]) <= 30
    data_dir = env["AOD_DATA_DIR"].replace("%", "%%")
    assert service["ExecStart"] == (f'"{os.path.abspath(sys.executable)}" "-m" "aod.cli.main" "serve" "--data-dir" '
                                    f'"{data_dir}" "--socket" "{data_dir}/aod.sock"')
    assert service["Environment"] == f'"PATH={env["PATH"]}"'
    assert not {"PrivateTmp", "ProtectHome", "ProtectSystem", "PrivateUsers"} & set(service)
    listen = [v for k, v in _settings(files[0].read_text()) if k == "ListenStream"]
    assert listen == [f"{data_dir}/aod.sock", "127.0.0.1:8765"]  # a named data dir has its own socket


def test_plist_has_the_keys_launchd_needs(env: dict[str, str]) -> None:
    result = run_aod("service", "print", "--launchd", env=env)
    assert result.returncode == 0, result.stderr
    plist = plistlib.loads(result.stdout.encode())
    assert judge(result.stdout) is Stamp.OURS
    assert plist["Label"] == "local.aod"
    assert plist["ProgramArguments"][:4] == [os.path.abspath(sys.executable), "-m", "aod.cli.main", "serve"]
    assert plist["ProgramArguments"][4:6] == ["--data-dir", env["AOD_DATA_DIR"]]
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    log = str(Path(env["HOME"]) / "Library" / "Logs" / "aod.log")
    assert (plist["StandardOutPath"], plist["StandardErrorPath"]) == (log, log)
    assert plist["EnvironmentVariables"] == {"PATH": env["PATH"]}


def test_install_and_uninstall_touch_only_what_install_wrote(env: dict[str, str]) -> None:
    units = _unit_dir(env)
    assert run_aod("service", "install", "--no-start", env=env).returncode == 0
    again = run_aod("service", "install", "--no-start", env=env)  # its own files: replaced
    assert again.returncode == 0, again.stderr
    printed = run_aod("service", "print", env=env).stdout
    assert all((units / name).read_text() in printed for name in UNITS)

    service = units / "aod.service"
    service.write_text(service.read_text() + "Nice=5\n")  # the user's edit
    refused = run_aod("service", "uninstall", env=env)
    assert refused.returncode == 1
    assert f"not removing {service}: installed by aod, edited since" in refused.stderr
    assert sorted(p.name for p in units.iterdir()) == sorted(UNITS)  # nothing removed, not even aod.socket
    assert run_aod("service", "install", "--no-start", env=env).returncode == 1
    assert service.read_text().endswith("Nice=5\n")

    forced = run_aod("service", "uninstall", "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert not list(units.iterdir())
    assert "could not stop the service" in forced.stderr  # no manager answers here: said, and the files went anyway

    assert run_aod("service", "install", "--no-start", env=env).returncode == 0
    broken = {**env, "AOD_CONFIG": str(Path(env["HOME"]) / "missing.toml")}
    assert run_aod("service", "install", "--no-start", env=broken).returncode == 2  # rendering needs the config
    assert run_aod("service", "uninstall", env=broken).returncode == 0  # removing does not
    assert not list(units.iterdir())

    service.write_text("[Service]\nExecStart=/bin/true\n")  # not aod's at all
    assert run_aod("service", "install", "--no-start", env=env).returncode == 1
    assert run_aod("service", "uninstall", env=env).returncode == 1
    assert service.read_text() == "[Service]\nExecStart=/bin/true\n"
    assert judge(service.read_text()) is Stamp.FOREIGN


def test_without_a_service_manager_install_writes_the_files_and_says_what_to_do(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = run_aod("service", "install", env=env)
    assert result.returncode == 1
    assert all(judge((_unit_dir(env) / name).read_text()) is Stamp.OURS for name in UNITS)
    assert "not started: no systemd user instance answers for you" in result.stderr
    assert "Failed to connect to bus" in result.stderr
    assert "`aod serve` in a terminal or a tmux" in result.stderr and "loginctl enable-linger" in result.stderr
    status = run_aod("service", "status", env=env)
    assert status.returncode == 1
    assert re.search(r"^aod\.service: installed by aod \(.*\); no systemd user instance", status.stdout, re.M)

    bare = tmp_path / "bin"  # a PATH with no systemctl on it
    bare.mkdir()
    result = run_aod("service", "install", env={**env, "PATH": str(bare)})
    assert result.returncode == 1
    assert "systemctl is not on PATH (this system does not run systemd)" in result.stderr


def test_packaging_holds_the_templates_the_wheel_ships() -> None:
    shipped = REPO / "aod" / "packaging"
    assert (REPO / "packaging").resolve() == shipped.resolve()  # DESIGN's packaging/ is the package data
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["aod"]
    files = sorted(p.relative_to(REPO / "aod").as_posix() for p in shipped.rglob("*") if p.is_file())
    assert files == ["packaging/launchd/local.aod.plist", "packaging/systemd/aod.service",
                     "packaging/systemd/aod.socket"]
    assert all(any(fnmatch.fnmatch(f, pattern) for pattern in patterns) for f in files)
