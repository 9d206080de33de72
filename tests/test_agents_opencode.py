"""opencode through aod's plugin: `aod hooks install --agent opencode` writes it (idempotent, its
own file only), and node runs it as opencode would (the plugin's hooks called with the fixtures of
tests/fixtures/opencode/), its hook client posting to a real daemon."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from aod.cli.hooks_opencode import MARK
from tests.conftest import aod_command
from tests.helpers.daemon import Daemon
from tests.helpers.waiting import wait_for

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "opencode"
# The order a session fires them in, and the activity after each.
STEPS = [
    ("session.created", "idle"), ("chat.message", "active"), ("tool.execute.before", "active"),
    ("permission.asked", "waiting_input"), ("tool.execute.after", "active"), ("command.executed", "active"),
    ("session.idle", "idle"),
]
# Calls the plugin's hooks the way opencode does, with one fixture.
RUNNER = """
import { readFileSync } from "node:fs"
const [, , pluginPath, fixturePath] = process.argv
const { AodPlugin } = await import(pluginPath)
const payload = JSON.parse(readFileSync(fixturePath, "utf8"))
const hooks = await AodPlugin({ directory: payload.directory })
if (payload.type === "chat.message") {
  await hooks["chat.message"](payload.properties, { message: { sessionID: payload.properties.sessionID },
    parts: [{ type: "text", text: payload.prompt }, { type: "file", url: "file:///x" }] })
} else if (payload.type.startsWith("tool.execute.")) {
  await hooks[payload.type](payload.properties, { args: {} })
} else {
  await hooks.event({ event: { type: payload.type, properties: payload.properties } })
}
"""


def aod_hooks(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_"))}
    env["HOME"] = str(home)
    return subprocess.run([*aod_command(), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_install_is_idempotent_and_uninstall_removes_only_aods_file(home: Path) -> None:
    plugin = home / ".config" / "opencode" / "plugins" / "aod.js"
    first = aod_hooks(home, "hooks", "install", "--agent", "opencode")
    text = plugin.read_text()
    second = aod_hooks(home, "hooks", "install", "--agent", "opencode")

    assert first.returncode == 0 and "added aod's opencode plugin" in first.stdout
    assert second.returncode == 0 and "already installed" in second.stdout and plugin.read_text() == text
    assert text.startswith(MARK) and '"--agent", "opencode"]' in text

    removed = aod_hooks(home, "hooks", "uninstall", "--agent", "opencode")
    again = aod_hooks(home, "hooks", "uninstall", "--agent", "opencode")

    assert removed.returncode == 0 and not plugin.exists()
    assert again.returncode == 0 and "no aod plugin" in again.stdout


def test_a_users_own_aod_js_is_never_touched(home: Path) -> None:
    plugin = home / ".config" / "opencode" / "plugins" / "aod.js"
    plugin.parent.mkdir(parents=True)
    plugin.write_text("export const Mine = async () => ({})\n")

    install = aod_hooks(home, "hooks", "install", "--agent", "opencode")
    uninstall = aod_hooks(home, "hooks", "uninstall", "--agent", "opencode")

    assert install.returncode == 1 and "is not aod's plugin" in install.stderr
    assert uninstall.returncode == 1
    assert plugin.read_text() == "export const Mine = async () => ({})\n"


def only_session(daemon: Daemon) -> dict[str, Any]:
    items = daemon.get("/v1/sessions?agent=opencode&all=1").body["items"]
    assert len(items) == 1, items
    return daemon.session(items[0]["id"])


def test_the_plugin_reports_a_session_to_the_daemon(daemon: Daemon, home: Path, tmp_path: Path) -> None:
    done = aod_hooks(home, "--data-dir", str(daemon.data_dir), "--socket", str(daemon.socket),
                     "hooks", "install", "--agent", "opencode")
    assert done.returncode == 0, done.stderr
    # node 20 reads a .js file as CommonJS outside a "type": "module" package; opencode (Bun) does not.
    plugin = tmp_path / "aod-plugin.mjs"
    shutil.copy(home / ".config" / "opencode" / "plugins" / "aod.js", plugin)
    runner = tmp_path / "runner.mjs"
    runner.write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AOD_", "XDG_"))}

    def events_stored() -> int:
        return len(daemon.get("/v1/events?limit=100").body["items"])

    for count, (name, activity) in enumerate(STEPS, start=1):
        subprocess.run(["node", str(runner), str(plugin), str(FIXTURES / f"{name}.json")], env=env, check=True,
                       timeout=30)
        # The plugin does not wait for the client: wait here for the event to land.
        wait_for(lambda: events_stored() == count, message=name)  # noqa: B023 - called before count moves on
        assert only_session(daemon)["activity"] == activity, name

    session = only_session(daemon)
    assert (session["agent_session_id"], session["workspace_path"]) == ("ses_5b2e8f01a7ffe3xK9cQm2Lr4Tz",
                                                                       "/home/alice/src/my-project")
    assert session["title"] == "Add a test for the date parser"
    events = {e["kind"]: e for e in daemon.get(f"/v1/sessions/{session['id']}/events?limit=100").body["items"]}
    assert set(events) == {"SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest", "PostToolUse",
                           "command.executed", "Stop"}
    # before -> after by callID: the daemon timed the tool call.
    assert events["PostToolUse"]["tool_name"] == "bash" and events["PostToolUse"]["duration_ms"] is not None
    stored = daemon.get(f"/v1/events/{events['Stop']['id']}").body
    assert stored["payload"] == json.loads((FIXTURES / "session.idle.json").read_text())
