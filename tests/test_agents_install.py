"""`aod hooks install|uninstall --agent codex|gemini|cursor` into a temp HOME, as a user runs it:
the agent's own file, idempotent, the user's entries and keys untouched, uninstall exact."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aod.cli import hooks_codex, hooks_cursor, hooks_gemini
from aod.cli.hooks import DEFAULT_EVENTS, is_aod_handler
from tests.conftest import aod_command

FILES = {"codex": ".codex/hooks.json", "gemini": ".gemini/settings.json", "cursor": ".cursor/hooks.json"}
DEFAULTS = {"codex": hooks_codex.DEFAULT_EVENTS, "gemini": hooks_gemini.DEFAULT_EVENTS, "cursor": hooks_cursor.DEFAULT_EVENTS}
# A user's own configuration in each file, which aod must leave exactly as it is.
USERS: dict[str, dict[str, Any]] = {
    "codex": {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "~/bin/ding", "timeout": 3}]}]}},
    "gemini": {"theme": "GitHub", "hooks": {"BeforeTool": [
        {"matcher": "run_shell_command", "hooks": [{"type": "command", "command": "./guard.sh"}]}]}},
    "cursor": {"version": 1, "hooks": {"afterFileEdit": [{"command": "./format.sh"}], "stop": [{"command": "./ding.sh"}]}},
}


def aod(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_", "CODEX", "CLAUDE"))}
    # HOME is where the files go; PATH finds this aod (project scope writes `aod hook`).
    env.update(HOME=str(home), PATH=f"{Path(aod_command()[0]).parent}:{env.get('PATH', '')}")
    return subprocess.run([*aod_command(), "hooks", *args], capture_output=True, text=True, env=env, timeout=60, cwd=cwd)


def aod_commands(agent: str, doc: dict[str, Any]) -> dict[str, list[str]]:
    """Each event's aod command (argv), from the file as written."""
    found = {}
    for event, entries in doc.get("hooks", {}).items():
        handlers = entries if agent == "cursor" else [h for g in entries for h in g["hooks"]]
        ours = [shlex.split(h["command"]) for h in handlers if "aod/hook.py" in h["command"] or "aod hook" in h["command"]]
        assert all(argv[0] == "exec" for argv in ours)  # see aod.cli.hooks_agents.shell_command
        ours = [argv[1:] for argv in ours]
        assert len(ours) <= 1, (event, ours)
        if ours:
            found[event] = ours[0]
    return found


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.mark.parametrize("agent", sorted(FILES))
def test_install_twice_then_uninstall_leaves_the_users_file_as_it_was(agent: str, home: Path) -> None:
    path = home / FILES[agent]
    path.parent.mkdir()
    original = json.dumps(USERS[agent], indent=4)
    path.write_text(original)

    first = aod(home, "install", "--agent", agent)
    written = path.read_text()
    second = aod(home, "install", "--agent", agent)

    assert first.returncode == 0 and f"added {len(DEFAULTS[agent])} aod hook entries" in first.stdout, first.stderr
    assert second.returncode == 0 and "already installed" in second.stdout
    assert path.read_text() == written
    doc = json.loads(written)
    commands = aod_commands(agent, doc)
    assert list(commands) and set(commands) == set(DEFAULTS[agent])
    assert all(argv[-2:] == ["--agent", agent] for argv in commands.values())
    for key, value in USERS[agent].items():  # the user's keys and entries are all still there, first
        if key != "hooks":
            assert doc[key] == value
    for event, entries in USERS[agent]["hooks"].items():
        assert doc["hooks"][event][: len(entries)] == entries
    assert not (home / ".claude").exists()  # another agent's file is untouched

    removed = aod(home, "uninstall", "--agent", agent)
    again = aod(home, "uninstall", "--agent", agent)

    assert removed.returncode == 0 and f"removed {len(DEFAULTS[agent])} aod hook entries" in removed.stdout
    assert json.loads(path.read_text()) == USERS[agent]
    assert again.returncode == 0 and "no aod hook entries" in again.stdout


@pytest.mark.parametrize("agent", sorted(FILES))
def test_a_file_aod_created_is_removed_again_and_other_agents_stay(agent: str, home: Path) -> None:
    assert aod(home, "install").returncode == 0  # Claude Code's, alongside
    assert aod(home, "install", "--agent", agent).returncode == 0
    assert (home / FILES[agent]).exists()

    done = aod(home, "uninstall", "--agent", agent)

    assert done.returncode == 0 and "removed the file" in done.stdout
    assert not (home / FILES[agent]).exists()
    claude = json.loads((home / ".claude" / "settings.json").read_text())
    assert all(is_aod_handler(g["hooks"][0]) for groups in claude["hooks"].values() for g in groups)
    assert len(claude["hooks"]) == len(DEFAULT_EVENTS)


def test_project_scope_writes_aod_on_path_into_the_projects_file(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    done = aod(home, "install", "--agent", "gemini", "--scope", "project", "--project-dir", str(project))

    assert done.returncode == 0, done.stderr
    commands = aod_commands("gemini", json.loads((project / ".gemini" / "settings.json").read_text()))
    assert set(map(tuple, commands.values())) == {("aod", "hook", "--agent", "gemini")}
    assert not (home / ".gemini").exists()
    # That shell form is aod's too: uninstall finds it.
    assert aod(home, "uninstall", "--agent", "gemini", "--scope", "project", "--project-dir", str(project)).returncode == 0
    assert not (project / ".gemini" / "settings.json").exists()


def test_events_narrow_the_install_and_unknown_ones_are_written_with_a_warning(home: Path) -> None:
    assert aod(home, "install", "--agent", "cursor").returncode == 0
    done = aod(home, "install", "--agent", "cursor", "--events", "beforeSubmitPrompt,stop,afterSomethingNew")

    assert done.returncode == 0
    assert "afterSomethingNew: not among the cursor events aod knows" in done.stderr
    doc = json.loads((home / ".cursor" / "hooks.json").read_text())
    assert sorted(doc["hooks"]) == ["afterSomethingNew", "beforeSubmitPrompt", "stop"]


def test_claude_codes_options_are_refused_for_other_agents(home: Path) -> None:
    http = aod(home, "install", "--agent", "codex", "--http")
    local = aod(home, "install", "--agent", "cursor", "--scope", "local")
    lower = aod(home, "install", "--events", "stop")

    assert http.returncode == 1 and "--http is Claude Code's alone" in http.stderr
    assert local.returncode == 1 and "--scope local is Claude Code's alone" in local.stderr
    assert lower.returncode == 1 and "not a Claude Code hook event" in lower.stderr
    assert list(home.iterdir()) == []


def test_entries_an_older_aod_wrote_with_an_event_agent_name_are_still_aods(home: Path) -> None:
    # Before --agent chose the configuration, `aod hooks install --agent NAME` wrote Claude Code
    # entries whose events carried NAME: they are recognised, replaced and removed as aod's.
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir()
    old = {"type": "command", "command": "/old/venv/bin/python", "args": ["-S", "/old/aod/hook.py", "--agent", "my-claude"],
           "async": True}
    settings.write_text(json.dumps({"hooks": {"Stop": [{"hooks": [old]}]}}))

    done = aod(home, "uninstall")

    assert done.returncode == 0 and "removed 1 aod hook entry" in done.stdout
    assert not settings.exists()


def test_dry_run_shows_the_diff_and_writes_nothing(home: Path) -> None:
    done = aod(home, "install", "--agent", "gemini", "--dry-run")

    assert done.returncode == 0
    assert f"+++ {home / '.gemini' / 'settings.json'} (after)" in done.stdout
    assert '+            "command": "exec ' in done.stdout
    assert f"dry run: would have added {len(DEFAULTS['gemini'])} aod hook entries" in done.stdout
    assert not (home / ".gemini").exists()
