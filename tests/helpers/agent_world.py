"""An agent's world for reaction tests: a private tmux server with a pane standing in for the
agent, a git checkout on a branch, the `gh` stand-in on PATH, and a real `aod serve`.

The pane runs `cat > /dev/null`: whatever aod types into it is echoed by the terminal and stays
in the pane's history, where `tmux capture-pane` reads it back.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.helpers import gh_standin
from tests.helpers.daemon import Daemon
from tests.helpers.template_db import migrated_copy
from tests.helpers.tmux import TmuxServer

BRANCH = "feature-x"
FAST = """
[scm]
interval = "0.2s"
"""


class World:
    def __init__(self, root: Path, base_env: dict[str, str]) -> None:
        self.root = root
        self.gh_state = root / "gh"
        self.tmux_server = TmuxServer()
        self.env = {**base_env, **gh_standin.install(root / "bin", self.gh_state), **self.tmux_server.env}
        self.env.pop("TMUX", None)
        self.env.pop("TMUX_PANE", None)
        self.repo = root / "widget"
        self.repo.mkdir()
        subprocess.run(["git", "init", "-q", "-b", BRANCH, str(self.repo)], check=True)
        self.data_dir = root / "data"
        self.data_dir.mkdir(mode=0o700)
        migrated_copy(self.data_dir / "aod.db")  # a world's tests are not about migrating
        self.daemons: list[Daemon] = []
        self.pane = ""

    def tmux(self, *args: str) -> str:
        return self.tmux_server.tmux(*args).stdout

    def start_pane(self) -> str:
        self.tmux("new-session", "-d", "-s", "agent", "-x", "220", "-y", "50", "cat > /dev/null")
        self.pane = self.tmux("display-message", "-p", "-t", "agent", "#{pane_id}").strip()
        return self.pane

    def pane_text(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", self.pane)

    def daemon(self, config_text: str = FAST, env: dict[str, str] | None = None) -> Daemon:
        d = Daemon(self.data_dir, {**self.env, **(env or {})}, config_text)
        self.daemons.append(d)
        return d.start()

    def adopt_session(self, d: Daemon, agent_session_id: str = "agent-1", cwd: Path | None = None,
                      pane: str | None = None) -> str:
        """A session as the hook client reports it: SessionStart from a pane, in the checkout."""
        envelope = {
            "agent": "claude-code",
            "runtime": {"tmux_pane": pane if pane is not None else self.pane},
            "payload": {"session_id": agent_session_id, "hook_event_name": "SessionStart", "source": "startup",
                        "cwd": str(cwd or self.repo)},
        }
        assert d.post("/v1/events", envelope).status == 202
        sessions = d.get("/v1/sessions").body["items"]
        return next(s["id"] for s in sessions if s["agent_session_id"] == agent_session_id)

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"file:{self.data_dir / 'aod.db'}?mode=ro", uri=True, timeout=10) as c:
            return c.execute(sql, args).fetchall()

    def close(self) -> None:
        for d in self.daemons:
            if d.proc is not None and d.proc.poll() is None:
                d.kill()
        self.tmux_server.stop()


def world_fixture(short_dir: Path, aod_env: dict[str, str]) -> Iterator[World]:
    world = World(short_dir, aod_env)
    try:
        yield world
    finally:
        world.close()


def log_has(d: Daemon, text: str) -> bool:
    return text in d.log.read_text(errors="replace")
