"""`aod hooks install|uninstall` on real settings files, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aod.cli.hooks import (
    ALL_EVENTS,
    DEFAULT_EVENTS,
    TOOL_EVENTS,
    command_handler,
    hook_argv,
    http_handler,
    install_entries,
    is_aod_handler,
    uninstall_entries,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "claude-code"
AOD_SCRIPT = Path(sys.executable).parent / "aod"


HOOK_PY = str(Path(__file__).resolve().parent.parent / "aod" / "hook.py")


def same_argv(actual: list[str], expected: list[str]) -> bool:
    """Equal argvs, where the interpreter may be named python or python3 (the console
    script's shebang) as long as it is the same file, i.e. the same virtualenv."""
    return actual[1:] == expected[1:] and os.path.samefile(actual[0], expected[0])

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


def aod_argv_of(doc: dict[str, Any], event: str = "PreToolUse") -> list[str]:
    (group,) = aod_groups(doc, event)
    handler = group["hooks"][0]
    return [handler["command"], *handler["args"]]


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
        # Exec form (no shell), and async: the agent does not wait for a hook that only observes.
        assert handler.keys() == {"type", "command", "args", "async"}, event
        assert (handler["type"], handler["async"]) == ("command", True)
        assert same_argv([handler["command"], *handler["args"]], [sys.executable, "-S", HOOK_PY])
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
    # An `aod` on PATH, as scripts/run puts one in ~/.local/bin.
    env = env_for(home, PATH=f"{AOD_SCRIPT.parent}{os.pathsep}{os.environ.get('PATH', '')}")

    by_flag = run_cli(cli, "install", "--scope", "project", "--project-dir", str(project), env=env)
    other = tmp_path / "other"
    other.mkdir()
    by_cwd = run_cli(cli, "install", "--scope", "project", env=env, cwd=other)
    local = run_cli(cli, "install", "--scope", "local", env=env, cwd=other)

    assert [by_flag.returncode, by_cwd.returncode, local.returncode] == [0, 0, 0]
    for settings in (project / ".claude/settings.json", other / ".claude/settings.json", other / ".claude/settings.local.json"):
        assert set(json.loads(settings.read_text())["hooks"]) == set(DEFAULT_EVENTS), settings
    # The committed file names the `aod` that PATH finds, never this machine's virtualenv.
    for settings in (project / ".claude/settings.json", other / ".claude/settings.json"):
        text = settings.read_text()
        assert sys.prefix not in text and "hook.py" not in text
        assert aod_argv_of(json.loads(text)) == ["aod", "hook"]
    assert same_argv(aod_argv_of(json.loads((other / ".claude/settings.local.json").read_text())),
                     [sys.executable, "-S", HOOK_PY])
    assert not (home / ".claude").exists()


def test_project_scope_without_aod_on_path_is_refused(cli: list[str], home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    env = env_for(home, PATH="/nonexistent")

    done = run_cli(cli, "install", "--scope", "project", "--project-dir", str(project), env=env)

    assert done.returncode == 1
    assert "no `aod` on PATH" in done.stderr and "--scope local" in done.stderr
    assert not (project / ".claude").exists()


# --- the installed command works -----------------------------------------------------------------


def test_the_installed_command_delivers_to_the_spool(cli: list[str], home: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "hook-data"
    assert run_cli(cli, "--data-dir", str(data_dir), "install", env=env_for(home)).returncode == 0
    doc = json.loads((home / ".claude" / "settings.json").read_text())
    argv = aod_argv_of(doc, "PostToolUse")
    assert argv[-2:] == ["--data-dir", str(data_dir)]
    fixture = (FIXTURES / "PostToolUse.json").read_bytes()
    # Claude Code spawns the exec form directly (no shell), from the project's directory.
    env = env_for(home, AOD_SOCKET=str(tmp_path / "no-daemon.sock"))

    done = subprocess.run(argv, input=fixture, capture_output=True, env=env, cwd=tmp_path, timeout=30)

    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    (spooled,) = (data_dir / "spool").iterdir()
    envelope = json.loads(spooled.read_bytes())
    assert envelope["payload"] == json.loads(fixture)
    assert envelope["agent"] == "claude-code"


def test_paths_with_spaces_need_no_quoting(tmp_path: Path) -> None:
    data_dir = tmp_path / "Application Support" / "it's $aod"

    handler = command_handler(hook_argv("claude-code", ["--data-dir", str(data_dir)]))

    assert handler["args"][-2:] == ["--data-dir", str(data_dir)]
    assert is_aod_handler(handler)


# --- what counts as aod's ------------------------------------------------------------------------


def test_a_stale_entry_of_another_install_is_replaced(cli: list[str], home: Path) -> None:
    settings = home / ".claude" / "settings.json"
    stale = "/old/venv/bin/python3 -S '/old/site packages/aod/hook.py' --agent claude-code"
    doc = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": stale, "timeout": 5}]}],
                     "WorktreeCreate": [{"hooks": [{"type": "command", "command": stale}]}]}}
    settings.parent.mkdir()
    settings.write_text(json.dumps(doc))

    done = run_cli(cli, "install", env=env_for(home))

    assert done.returncode == 0
    assert "updated 1 aod hook entry" in done.stdout
    assert "removed 1 aod hook entry" in done.stdout
    after = json.loads(settings.read_text())
    assert "WorktreeCreate" not in after["hooks"]
    assert same_argv(aod_argv_of(after, "Stop"), hook_argv())
    assert stale not in settings.read_text()


def test_uninstall_keeps_the_users_handlers_in_a_shared_group(cli: list[str], home: Path) -> None:
    settings = home / ".claude" / "settings.json"
    theirs = {"type": "command", "command": "notify-send done"}
    ours = command_handler(hook_argv())
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


@pytest.mark.parametrize(
    "handler",
    [
        {"type": "command", "command": "aod", "args": ["hook", "--verbose"]},
        {"type": "command", "command": "/usr/bin/aod", "args": ["status"]},
        {"type": "command", "command": "python3", "args": ["/x/aod/hook.py"]},
        {"type": "command", "command": "python3", "args": "-S /x/aod/hook.py"},
        {"type": "command", "command": "bash", "args": ["-c", "aod hook"]},
        {"type": "http", "url": "http://example.com:8765/v1/hooks/claude-code"},
        {"type": "http", "url": "http://127.0.0.1:8765/v1/events"},
    ],
)
def test_handlers_that_are_not_exactly_aods_are_left_alone(handler: dict[str, Any]) -> None:
    doc = {"hooks": {"Stop": [{"hooks": [handler]}]}}

    assert not is_aod_handler(handler)
    assert uninstall_entries(doc)[0] == doc


def test_uninstall_by_agent_removes_only_that_agents_entries() -> None:
    codex = command_handler(hook_argv("codex"))
    default = command_handler(hook_argv())
    doc = {"hooks": {"Stop": [{"hooks": [codex]}, {"hooks": [default]}]}}

    after, changes = uninstall_entries(doc, agent="codex")

    assert after == {"hooks": {"Stop": [{"hooks": [default]}]}}
    assert changes.removed == 1
    assert doc["hooks"]["Stop"][0] == {"hooks": [codex]}  # the input is not modified


def test_install_entries_is_idempotent_and_uninstall_inverts_it() -> None:
    events = ("Stop", "PreToolUse")
    doc = {"a": 1, "hooks": {"Stop": [], "PreToolUse": [USER_HOOK]}, "z": 2}

    handlers = {e: command_handler(["py", "-S", "/p/aod/hook.py"]) for e in events}
    once, first = install_entries(doc, handlers)
    twice, second = install_entries(once, handlers)
    back, removed = uninstall_entries(twice)

    assert (first.added, second.changed) == (2, False)
    assert twice == once
    assert back == {"a": 1, "hooks": {"PreToolUse": [USER_HOOK]}, "z": 2}  # "Stop": [] was emptied by aod's removal
    assert removed.removed == 2


# --- options and files ---------------------------------------------------------------------------


def test_an_agent_aod_cannot_configure_is_a_usage_error(cli: list[str], home: Path) -> None:
    done = run_cli(cli, "install", "--agent", "aider", env=env_for(home))

    assert done.returncode == 2
    assert "invalid choice: 'aider'" in done.stderr
    assert not (home / ".claude").exists()


def test_worktree_create_is_refused(home: Path) -> None:
    done = run_cli([sys.executable, "-m", "aod.cli.hooks"], "install", "--events", "Stop,WorktreeCreate",
                   env=env_for(home))

    assert done.returncode == 2
    assert "WorktreeCreate's hook replaces git's worktree creation" in done.stderr
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
    # events None: the chosen agent's own default events.
    assert (before.agent, before.events, before.dry_run, before.http) == ("claude-code", None, False, False)
    assert (after.hooks_command, after.data_dir, after.dry_run, after.agent) == ("uninstall", "D", True, "claude-code")
    with pytest.raises(SystemExit):
        parser.parse_args(["hooks"])


# --- every event, and the http form --------------------------------------------------------------


def test_default_events_are_every_event_of_claude_code_but_three() -> None:
    # The events issue 15 names as missing, among the 31 of the hooks reference.
    assert {"PermissionDenied", "PostToolBatch", "TaskCompleted", "PostCompact", "Setup", "InstructionsLoaded",
            "ConfigChange", "UserPromptExpansion", "DirectoryAdded", "ElicitationResult"} <= set(DEFAULT_EVENTS)
    assert len(ALL_EVENTS) == len(set(ALL_EVENTS)) == 31
    # A hook there replaces git's worktree creation; watches only named files; fires per text chunk.
    assert set(ALL_EVENTS) - set(DEFAULT_EVENTS) == {"WorktreeCreate", "FileChanged", "MessageDisplay"}
    assert "PermissionDenied" in TOOL_EVENTS


def test_http_install_posts_to_the_daemons_port_and_uninstall_removes_it(
    cli: list[str], home: Path, daemon: Any
) -> None:
    import urllib.request

    settings = home / ".claude" / "settings.json"
    write_original(settings)
    env = env_for(home, AOD_SOCKET=str(daemon.socket), AOD_DATA_DIR=str(daemon.data_dir))

    done = run_cli(cli, "install", "--http", env=env)

    assert done.returncode == 0, done.stderr
    assert f'export AOD_TOKEN="$(cat {daemon.data_dir / "token"})"' in done.stdout
    doc = json.loads(settings.read_text())
    tcp = daemon.status()["tcp"]
    (stop,) = aod_groups(doc, "Stop")[0]["hooks"]
    assert stop == {"type": "http", "url": f"http://{tcp}/v1/hooks/claude-code",
                    "headers": {"Authorization": "Bearer ${AOD_TOKEN}"}, "allowedEnvVars": ["AOD_TOKEN"], "timeout": 2}
    # SessionStart and Setup take no http hook: they keep the command hook.
    for event in ("SessionStart", "Setup"):
        (handler,) = aod_groups(doc, event)[0]["hooks"]
        assert (handler["type"], handler["async"]) == ("command", True)
    assert all(aod_groups(doc, e)[0]["hooks"][0]["type"] == "http" for e in DEFAULT_EVENTS
               if e not in ("SessionStart", "Setup"))
    # What Claude Code sends: the payload as the body, the header with $AOD_TOKEN resolved.
    token = (daemon.data_dir / "token").read_text().strip()
    headers = {k: v.replace("${AOD_TOKEN}", token) for k, v in stop["headers"].items()}
    body = (FIXTURES / "Stop.json").read_bytes()
    post = urllib.request.Request(stop["url"], data=body, headers={**headers, "Content-Type": "application/json"})
    with urllib.request.urlopen(post, timeout=10) as answer:
        assert answer.status == 202 and json.load(answer)["accepted"] == 1
    events = daemon.get("/v1/events").body["items"]
    assert [e["kind"] for e in events] == ["Stop"]
    assert "already installed" in run_cli(cli, "install", "--http", env=env).stdout

    done = run_cli(cli, "uninstall", env=env)

    assert done.returncode == 0
    assert json.loads(settings.read_text()) == ORIGINAL


def test_http_install_refuses_without_a_tcp_listener(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[server]\ntcp = ""\n')
    env = env_for(home, AOD_SOCKET=str(tmp_path / "no-daemon.sock"))

    done = run_cli([sys.executable, "-m", "aod.cli.hooks"], "--config", str(config), "install", "--http", env=env)

    assert done.returncode == 1
    assert 'server.tcp is ""' in done.stderr
    assert not (home / ".claude").exists()


# --- async hooks arrive out of order -------------------------------------------------------------


def wait_reading_stdin(proc: subprocess.Popen[bytes]) -> None:
    """Until `proc` blocks reading its stdin pipe (Linux: its wchan), or a generous while elsewhere."""
    wchan = Path(f"/proc/{proc.pid}/wchan")
    if not wchan.parent.exists():
        time.sleep(0.5)
        return
    deadline = time.monotonic() + 20
    while "pipe_read" not in wchan.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, "the hook client never read its stdin"
        time.sleep(0.005)


def test_late_arrival_of_an_earlier_event_does_not_move_the_session_back(home: Path, daemon: Any) -> None:
    """Claude Code does not wait for async hooks, so a prompt's hook may deliver after the Stop
    that followed it. The client stamps occurred_at when it starts; the session follows that."""
    assert run_cli([sys.executable, "-m", "aod.cli.hooks"], "install", env=env_for(home)).returncode == 0
    doc = json.loads((home / ".claude" / "settings.json").read_text())
    env = env_for(home, AOD_SOCKET=str(daemon.socket), AOD_DATA_DIR=str(daemon.data_dir))
    payloads = {e: json.loads((FIXTURES / f"{e}.json").read_bytes()) for e in ("SessionStart", "UserPromptSubmit", "Stop")}
    payloads["Stop"]["background_tasks"] = []  # a turn that ended with nothing left running: idle
    fired = []
    for event in payloads:  # in this order, as the agent fires them
        proc = subprocess.Popen(aod_argv_of(doc, event), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        fired.append((event, proc))
        wait_reading_stdin(proc)  # it stamped its occurred_at at start, before the next one starts
    for event, proc in [fired[0], fired[2], fired[1]]:  # the prompt arrives last
        out, err = proc.communicate(json.dumps(payloads[event]).encode(), timeout=30)
        assert (proc.returncode, out, err) == (0, b"", b""), event

    events = daemon.get("/v1/events").body["items"]
    by_time = sorted(events, key=lambda e: e["occurred_at"])
    assert [e["kind"] for e in by_time] == ["SessionStart", "UserPromptSubmit", "Stop"]
    assert [e["kind"] for e in sorted(events, key=lambda e: e["id"])] == ["SessionStart", "Stop", "UserPromptSubmit"]
    (session,) = daemon.get("/v1/sessions").body["items"]
    assert session["status"] == "idle"  # the Stop, not the prompt that arrived after it
    assert session["last_event_at"] == by_time[-1]["occurred_at"]


def test_http_install_without_a_daemon_takes_server_tcp_and_needs_no_aod_on_path(home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    config = tmp_path / "config.toml"
    config.write_text('[server]\ntcp = "127.0.0.1:9911"\n')
    env = env_for(home, PATH="/nonexistent", AOD_SOCKET=str(tmp_path / "no-daemon.sock"))
    cli = [sys.executable, "-m", "aod.cli.hooks", "--config", str(config)]

    only_http = run_cli(cli, "install", "--http", "--scope", "project", "--project-dir", str(project),
                        "--events", "Stop,PreToolUse", env=env)
    with_start = run_cli(cli, "install", "--http", "--scope", "project", "--project-dir", str(project), env=env)

    assert only_http.returncode == 0, only_http.stderr
    doc = json.loads((project / ".claude" / "settings.json").read_text())
    assert [aod_groups(doc, e)[0]["hooks"][0]["url"] for e in ("Stop", "PreToolUse")] == \
        ["http://127.0.0.1:9911/v1/hooks/claude-code"] * 2
    # SessionStart takes no http hook, and a committed file cannot name this venv: refused.
    assert with_start.returncode == 1 and "no `aod` on PATH" in with_start.stderr
    assert json.loads((project / ".claude" / "settings.json").read_text()) == doc


# The agent spawns the hook (stdin: an inherited pipe), waits until it reads, and exits at once.
AGENT_THAT_EXITS = """
import pathlib, subprocess, sys, time
hook = subprocess.Popen(sys.argv[2:], stdin=int(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wchan = pathlib.Path(f"/proc/{hook.pid}/wchan")
while "pipe_read" not in wchan.read_text():
    time.sleep(0.005)
print(hook.pid, flush=True)
"""


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="needs Linux /proc")
def test_an_async_hook_names_its_agent_even_after_the_agent_exited(home: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "hook-data"
    assert run_cli([sys.executable, "-m", "aod.cli.hooks"], "--data-dir", str(data_dir), "install",
                   env=env_for(home)).returncode == 0
    argv = aod_argv_of(json.loads((home / ".claude" / "settings.json").read_text()), "SessionEnd")
    read_end, write_end = os.pipe()
    env = env_for(home, AOD_SOCKET=str(tmp_path / "no-daemon.sock"))
    agent = subprocess.Popen([sys.executable, "-c", AGENT_THAT_EXITS, str(read_end), *argv], env=env,
                             pass_fds=(read_end,), stdout=subprocess.PIPE, text=True)
    os.close(read_end)
    hook_pid = int(agent.communicate(timeout=30)[0])

    with os.fdopen(write_end, "wb") as stdin:  # the payload arrives after the agent is gone
        stdin.write((FIXTURES / "SessionEnd.json").read_bytes())
    deadline = time.monotonic() + 20
    while not list((data_dir / "spool").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.01)

    assert agent.returncode == 0 and hook_pid != agent.pid
    (spooled,) = (data_dir / "spool").glob("*.json")
    assert json.loads(spooled.read_bytes())["runtime"]["pid"] == agent.pid


def test_aod_hook_imports_no_other_command() -> None:
    # `aod hook` is what project scope writes; it starts for every event, so importing the
    # entry point must not import every command's module (~25 ms a firing).
    code = "import sys, aod.cli.main; print(sorted(m for m in sys.modules if m.startswith('aod.cli.')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.replace("'", '"')) == ["aod.cli.main"]


def test_doctor_reads_exec_form_aod_hook_and_http_entries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from aod.cli.doctor import _hook_scope

    config_dir = tmp_path / "claude"
    config_dir.mkdir()
    doc = {"hooks": {"Stop": [{"hooks": [http_handler("127.0.0.1:8765")]}],
                     "SessionStart": [{"hooks": [command_handler(["aod", "hook"])]}],
                     "PreToolUse": [{"matcher": "*", "hooks": [command_handler(hook_argv())]}]}}
    (config_dir / "settings.json").write_text(json.dumps(doc))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("PATH", str(AOD_SCRIPT.parent))

    found = _hook_scope("user")
    monkeypatch.setenv("PATH", "/nonexistent")
    missing = _hook_scope("user")

    assert len(found.entries) == 3
    assert all(e.interpreter_exists and e.client_exists for e in found.entries)
    (gone,) = [e for e in missing.entries if not e.client_exists]
    assert gone.client == "aod"
