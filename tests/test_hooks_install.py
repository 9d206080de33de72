"""`aod hooks install|uninstall` on real settings files, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aod.cli.hooks import (
    DEFAULT_EVENTS,
    TOOL_EVENTS,
    hook_command,
    install_entries,
    is_aod_handler,
    uninstall_entries,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "claude-code"
AOD_SCRIPT = Path(sys.executable).parent / "aod"


def same_command(actual: str, expected: str) -> bool:
    """Equal commands, where the interpreter may be named python or python3 (the console
    script's shebang) as long as it is the same file, i.e. the same virtualenv."""
    a, e = shlex.split(actual), shlex.split(expected)
    return a[1:] == e[1:] and os.path.samefile(a[0], e[0])

USER_HOOK = {"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/guard.sh", "timeout": 10}]}
ORIGINAL: dict[str, Any] = {
    "model": "opus",
    "permissions": {"allow": ["Bash(npm test:*)"], "deny": []},
    "hooks": {"PreToolUse": [USER_HOOK]},
    "statusLine": {"type": "command", "command": "echo hi"},
    "env": {"FOO": "bär"},
}
# Hand-written layout (4-space indent, no trailing newline): an unchanged file keeps it.
ORIGINAL_TEXT = json.dumps(ORIGINAL, indent=4, ensure_ascii=False)




@pytest.fixture(params=["module", "console"])
def cli(request: pytest.FixtureRequest) -> list[str]:
    """`python -m aod.cli.hooks ACTION`, and `aod hooks ACTION` once main.py registers it."""
    if request.param == "module":
        return [sys.executable, "-m", "aod.cli.hooks"]
    return [str(AOD_SCRIPT), "hooks"]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_", "CLAUDE"))}
    env.update(HOME=str(home), **extra)
    return env


def run_cli(cli: list[str], *args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def write_original(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ORIGINAL_TEXT, encoding="utf-8")
    path.chmod(0o644)


def aod_groups(doc: dict[str, Any], event: str) -> list[dict[str, Any]]:
    return [g for g in doc["hooks"].get(event, []) if any(is_aod_handler(h) for h in g["hooks"])]


def aod_command_of(doc: dict[str, Any], event: str = "PreToolUse") -> str:
    (group,) = aod_groups(doc, event)
    return group["hooks"][0]["command"]


# --- install, reinstall, uninstall ---------------------------------------------------------------


def test_install_adds_one_entry_per_event_and_keeps_everything_else(cli: list[str], home: Path, tmp_path: Path) -> None:
    config_dir = tmp_path / "claude-config"
    settings = config_dir / "settings.json"
    write_original(settings)
    env = env_for(home, CLAUDE_CONFIG_DIR=str(config_dir))

    done = run_cli(cli, "install", env=env)

    assert done.returncode == 0, done.stderr
    assert f"added {len(DEFAULT_EVENTS)} aod hook entries in {settings}" in done.stdout
    doc = json.loads(settings.read_text())
    assert list(doc) == list(ORIGINAL)
    assert {k: v for k, v in doc.items() if k != "hooks"} == {k: v for k, v in ORIGINAL.items() if k != "hooks"}
    assert list(doc["hooks"]) == list(dict.fromkeys(["PreToolUse", *DEFAULT_EVENTS]))
    assert doc["hooks"]["PreToolUse"][0] == USER_HOOK
    for event in DEFAULT_EVENTS:
        (group,) = aod_groups(doc, event)
        assert group.get("matcher") == ("*" if event in TOOL_EVENTS else None), event
        (handler,) = group["hooks"]
        assert handler.keys() == {"type", "command", "timeout"} and (handler["type"], handler["timeout"]) == ("command", 5)
        assert same_command(handler["command"], hook_command())
    argv = shlex.split(aod_command_of(doc))
    assert same_command(aod_command_of(doc), shlex.join(
        [os.path.abspath(sys.executable), "-S", str(Path(__file__).resolve().parent.parent / "aod" / "hook.py")]))
    assert argv[1:] == ["-S", str(Path(__file__).resolve().parent.parent / "aod" / "hook.py")]
    assert (config_dir / "settings.json.bak").read_text(encoding="utf-8") == ORIGINAL_TEXT
    assert stat.S_IMODE(settings.stat().st_mode) == 0o644
    assert sorted(p.name for p in config_dir.iterdir()) == ["settings.json", "settings.json.bak"]
    assert not (home / ".claude").exists()


def test_install_twice_changes_nothing(cli: list[str], home: Path) -> None:
    settings = home / ".claude" / "settings.json"
    write_original(settings)
    env = env_for(home)
    assert run_cli(cli, "install", env=env).returncode == 0
    first = settings.read_bytes()
    first_mtime = settings.stat().st_mtime_ns

    again = run_cli(cli, "install", env=env)

    assert again.returncode == 0
    assert "already installed" in again.stdout
    assert settings.read_bytes() == first
    assert settings.stat().st_mtime_ns == first_mtime
    assert (settings.parent / "settings.json.bak").read_text(encoding="utf-8") == ORIGINAL_TEXT


def test_uninstall_restores_the_original(cli: list[str], home: Path) -> None:
    settings = home / ".claude" / "settings.json"
    write_original(settings)
    env = env_for(home)
    assert run_cli(cli, "install", env=env).returncode == 0

    done = run_cli(cli, "uninstall", env=env)

    assert done.returncode == 0
    assert f"removed {len(DEFAULT_EVENTS)} aod hook entries from {settings}" in done.stdout
    restored = json.loads(settings.read_text())
    assert restored == ORIGINAL
    assert list(restored) == list(ORIGINAL)
    assert "no aod hook entries" in run_cli(cli, "uninstall", env=env).stdout


def test_install_into_a_missing_file_then_uninstall(cli: list[str], home: Path) -> None:
    env = env_for(home)

    done = run_cli(cli, "install", env=env)

    settings = home / ".claude" / "settings.json"
    assert done.returncode == 0
    doc = json.loads(settings.read_text())
    assert list(doc) == ["hooks"]
    assert set(doc["hooks"]) == set(DEFAULT_EVENTS)
    assert not (settings.parent / "settings.json.bak").exists()
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    dry = run_cli(cli, "uninstall", "--dry-run", env=env)
    assert dry.returncode == 0 and f"would have removed {len(DEFAULT_EVENTS)} aod hook entries" in dry.stdout
    assert set(json.loads(settings.read_text())["hooks"]) == set(DEFAULT_EVENTS)

    done = run_cli(cli, "uninstall", env=env)

    # Nothing but aod's entries was in it: no empty `{}` is left behind, and no backup of them.
    assert done.returncode == 0
    assert f"from {settings}, and removed the file" in done.stdout
    assert list(settings.parent.iterdir()) == []
    assert "no aod hook entries" in run_cli(cli, "uninstall", env=env).stdout


def test_uninstall_keeps_a_symlinked_file_even_when_it_empties(cli: list[str], home: Path, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles" / "claude-settings.json"
    dotfiles.parent.mkdir()
    dotfiles.write_text("{}\n")
    (home / ".claude").mkdir()
    link = home / ".claude" / "settings.json"
    link.symlink_to(dotfiles)
    assert run_cli(cli, "install", env=env_for(home)).returncode == 0

    assert run_cli(cli, "uninstall", env=env_for(home)).returncode == 0

    assert link.is_symlink() and json.loads(dotfiles.read_text()) == {}


def test_dry_run_shows_the_change_and_writes_nothing(cli: list[str], home: Path) -> None:
    settings = home / ".claude" / "settings.json"
    write_original(settings)
    env = env_for(home)

    done = run_cli(cli, "install", "--dry-run", env=env)

    assert done.returncode == 0
    assert settings.read_text(encoding="utf-8") == ORIGINAL_TEXT
    assert sorted(p.name for p in settings.parent.iterdir()) == ["settings.json"]
    added = [line for line in done.stdout.splitlines() if line.startswith("+") and "aod/hook.py" in line]
    assert len(added) == len(DEFAULT_EVENTS)
    assert "dry run: would have added" in done.stdout
    assert run_cli(cli, "install", env=env).returncode == 0
    installed = settings.read_bytes()
    dry_uninstall = run_cli(cli, "uninstall", "--dry-run", env=env)
    assert "would have removed" in dry_uninstall.stdout
    assert settings.read_bytes() == installed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"model": "opus",}', "is not valid JSON"),
        ('{"hooks": {', "is not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"hooks": "none"}', '"hooks" is a string'),
        ('{"hooks": {"Stop": {"hooks": []}}}', '"hooks.Stop" is an object'),
    ],
)
def test_a_file_it_cannot_edit_is_refused_untouched(cli: list[str], home: Path, content: str, message: str) -> None:
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(content)

    done = run_cli(cli, "install", env=env_for(home))

    assert done.returncode == 1
    assert message in done.stderr
    assert str(settings) in done.stderr or '"hooks' in done.stderr
    assert done.stdout == ""
    assert settings.read_text() == content
    assert sorted(p.name for p in settings.parent.iterdir()) == ["settings.json"]


def test_project_scope_writes_the_project_settings(cli: list[str], home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    env = env_for(home)

    by_flag = run_cli(cli, "install", "--scope", "project", "--project-dir", str(project), env=env)
    other = tmp_path / "other"
    other.mkdir()
    by_cwd = run_cli(cli, "install", "--scope", "project", env=env, cwd=other)
    local = run_cli(cli, "install", "--scope", "local", env=env, cwd=other)

    assert [by_flag.returncode, by_cwd.returncode, local.returncode] == [0, 0, 0]
    for settings in (project / ".claude/settings.json", other / ".claude/settings.json", other / ".claude/settings.local.json"):
        assert set(json.loads(settings.read_text())["hooks"]) == set(DEFAULT_EVENTS), settings
    assert not (home / ".claude").exists()


# --- the installed command works -----------------------------------------------------------------


def test_the_installed_command_delivers_to_the_spool(cli: list[str], home: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "hook-data"
    assert run_cli(cli, "--data-dir", str(data_dir), "install", "--agent", "codex", env=env_for(home)).returncode == 0
    doc = json.loads((home / ".claude" / "settings.json").read_text())
    command = aod_command_of(doc, "PostToolUse")
    assert command.endswith(f"--agent codex --data-dir {shlex.quote(str(data_dir))}")
    fixture = (FIXTURES / "PostToolUse.json").read_bytes()
    # Claude Code runs the command through a shell, from the project's directory.
    shell = shutil.which("bash") or "/bin/sh"
    env = env_for(home, AOD_SOCKET=str(tmp_path / "no-daemon.sock"))

    done = subprocess.run([shell, "-c", command], input=fixture, capture_output=True, env=env, cwd=tmp_path, timeout=30)

    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    (spooled,) = (data_dir / "spool").iterdir()
    envelope = json.loads(spooled.read_bytes())
    assert envelope["payload"] == json.loads(fixture)
    assert envelope["agent"] == "codex"


def test_paths_with_spaces_are_quoted(tmp_path: Path) -> None:
    data_dir = tmp_path / "Application Support" / "it's aod"

    command = hook_command("claude-code", ["--data-dir", str(data_dir)])

    assert shlex.split(command)[-2:] == ["--data-dir", str(data_dir)]
    assert is_aod_handler({"type": "command", "command": command})


# --- what counts as aod's ------------------------------------------------------------------------


def test_a_stale_entry_of_another_install_is_replaced(cli: list[str], home: Path) -> None:
    settings = home / ".claude" / "settings.json"
    stale = "/old/venv/bin/python3 -S '/old/site packages/aod/hook.py' --agent claude-code"
    doc = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": stale, "timeout": 5}]}],
                     "Setup": [{"hooks": [{"type": "command", "command": stale}]}]}}
    settings.parent.mkdir()
    settings.write_text(json.dumps(doc))

    done = run_cli(cli, "install", env=env_for(home))

    assert done.returncode == 0
    assert "updated 1 aod hook entry" in done.stdout
    assert "removed 1 aod hook entry" in done.stdout
    after = json.loads(settings.read_text())
    assert "Setup" not in after["hooks"]
    assert same_command(aod_command_of(after, "Stop"), hook_command())
    assert stale not in settings.read_text()


def test_uninstall_keeps_the_users_handlers_in_a_shared_group(cli: list[str], home: Path) -> None:
    settings = home / ".claude" / "settings.json"
    theirs = {"type": "command", "command": "notify-send done"}
    ours = {"type": "command", "command": hook_command()}
    settings.parent.mkdir()
    settings.write_text(json.dumps({"hooks": {"Stop": [{"hooks": [theirs, ours]}]}}))

    done = run_cli(cli, "uninstall", env=env_for(home))

    assert done.returncode == 0
    assert json.loads(settings.read_text()) == {"hooks": {"Stop": [{"hooks": [theirs]}]}}


@pytest.mark.parametrize(
    "command",
    [
        "python3 -S /x/aod/hook.py | tee /tmp/log",
        "python3 /x/aod/hook.py",
        "python3 -u /x/aod/hook.py",
        "python3 -S /x/aod/hook.py --agent",
        "python3 -S /x/aod/hook.py --verbose",
        "python3 -S /x/not-aod/hook.py",
        "aod hook",
        "python3 -S '/x/aod/hook.py",
    ],
)
def test_commands_that_are_not_exactly_aods_are_left_alone(command: str) -> None:
    doc = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": command}]}]}}

    assert not is_aod_handler(doc["hooks"]["Stop"][0]["hooks"][0])
    assert uninstall_entries(doc)[0] == doc


def test_uninstall_by_agent_removes_only_that_agents_entries() -> None:
    codex = {"type": "command", "command": hook_command("codex")}
    default = {"type": "command", "command": hook_command()}
    doc = {"hooks": {"Stop": [{"hooks": [codex]}, {"hooks": [default]}]}}

    after, changes = uninstall_entries(doc, agent="codex")

    assert after == {"hooks": {"Stop": [{"hooks": [default]}]}}
    assert changes.removed == 1
    assert doc["hooks"]["Stop"][0] == {"hooks": [codex]}  # the input is not modified


def test_install_entries_is_idempotent_and_uninstall_inverts_it() -> None:
    events = ("Stop", "PreToolUse")
    doc = {"a": 1, "hooks": {"Stop": [], "PreToolUse": [USER_HOOK]}, "z": 2}

    once, first = install_entries(doc, "py -S /p/aod/hook.py", events)
    twice, second = install_entries(once, "py -S /p/aod/hook.py", events)
    back, removed = uninstall_entries(twice)

    assert (first.added, second.changed) == (2, False)
    assert twice == once
    assert back == {"a": 1, "hooks": {"PreToolUse": [USER_HOOK]}, "z": 2}  # "Stop": [] was emptied by aod's removal
    assert removed.removed == 2


# --- options and files ---------------------------------------------------------------------------


def test_an_invalid_agent_name_is_a_usage_error(cli: list[str], home: Path) -> None:
    done = run_cli(cli, "install", "--agent", "no spaces", env=env_for(home))

    assert done.returncode == 2
    assert "invalid agent name" in done.stderr
    assert not (home / ".claude").exists()


def test_events_option_installs_that_subset(cli: list[str], home: Path) -> None:
    done = run_cli(cli, "install", "--events", "Stop, PreToolUse,Stop", env=env_for(home))

    assert done.returncode == 0
    doc = json.loads((home / ".claude" / "settings.json").read_text())
    assert list(doc["hooks"]) == ["Stop", "PreToolUse"]


def test_a_symlinked_settings_file_stays_a_symlink(cli: list[str], home: Path, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles" / "claude-settings.json"
    write_original(dotfiles)
    (home / ".claude").mkdir()
    link = home / ".claude" / "settings.json"
    link.symlink_to(dotfiles)

    assert run_cli(cli, "install", env=env_for(home)).returncode == 0

    assert link.is_symlink()
    assert set(json.loads(dotfiles.read_text())["hooks"]) == set(DEFAULT_EVENTS)
    assert (dotfiles.parent / "claude-settings.json.bak").read_text(encoding="utf-8") == ORIGINAL_TEXT


def test_add_parser_takes_global_options_before_or_after(tmp_path: Path) -> None:
    import argparse

    from aod.cli.hooks import add_parser

    # As aod/cli/main.py builds it: global options on every level, SUPPRESSed so none overwrites another.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=argparse.SUPPRESS)
    common.add_argument("--socket", default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="aod", parents=[common])
    add_parser(parser.add_subparsers(dest="command"), [common])

    before = parser.parse_args(["--data-dir", "D", "hooks", "install", "--scope", "project"])
    after = parser.parse_args(["hooks", "uninstall", "--data-dir", "D", "--dry-run"])

    assert (before.command, before.hooks_command, before.data_dir, before.scope) == ("hooks", "install", "D", "project")
    assert (before.agent, before.events, before.dry_run) == ("claude-code", DEFAULT_EVENTS, False)
    assert (after.hooks_command, after.data_dir, after.dry_run, after.agent) == ("uninstall", "D", True, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["hooks"])
