"""Starting an agent in a new detached tmux session, and giving it a git worktree first."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aod.runtime import tmux

# A spawned agent's terminal: wide enough that a TUI does not wrap every line.
WIDTH, HEIGHT = 200, 50
GIT_TIMEOUT = 60.0


class SpawnError(RuntimeError):
    """The agent could not be started; the message is worded for the user."""


@dataclass(frozen=True)
class SpawnedPane:
    tmux_session: str
    pane_id: str
    pane_pid: int | None


async def start_in_tmux(
    name: str, *, cwd: Path, command: Sequence[str], env: Mapping[str, str], timeout: float = tmux.DEFAULT_TIMEOUT
) -> SpawnedPane:
    """`command` in a new detached tmux session called `name` (or `name-2`, ... if taken).

    One argument runs through the shell (`aod spawn -- "claude --model x"`); several are run
    as they are. `env` is set in the session, so it reaches the agent and its hooks whatever
    environment the tmux server itself was started with.
    """
    options = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    for attempt in range(1, 10):
        session = name if attempt == 1 else f"{name}-{attempt}"
        result = await tmux.run(
            "new-session", "-d", "-s", session, "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(cwd),
            "-P", "-F", "#{pane_id} #{pane_pid}", *options, "--", *command,
            timeout=timeout,
        )
        if result.returncode == 0:
            pane_id, _, pid = result.stdout.strip().partition(" ")
            return SpawnedPane(session, pane_id, int(pid) if pid.isdigit() else None)
        if "duplicate session" not in result.stderr:
            raise SpawnError(f"tmux could not start the agent: {result.stderr.strip() or result.returncode}")
    raise SpawnError(f"tmux sessions {name} to {name}-9 all exist already")


def tmux_session_name(session_id: str) -> str:
    # tmux reads '.' and ':' in a target as window and pane separators.
    return "aod-" + re.sub(r"[^A-Za-z0-9_-]", "-", session_id)


def branch_name(session_id: str, name: str | None) -> str:
    label = re.sub(r"[^a-z0-9._-]+", "-", (name or "").lower()).strip("-.") or session_id
    return f"aod/{label}"


async def add_worktree(repo: Path, path: Path, branch: str, *, timeout: float = GIT_TIMEOUT) -> None:
    """`git worktree add -b BRANCH PATH` in `repo`: a new checkout of HEAD on a new branch."""
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    try:
        proc = await asyncio.create_subprocess_exec(
            "git", "-C", str(repo), "worktree", "add", "-b", branch, str(path),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise SpawnError(f"cannot run git: {exc}") from None
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise SpawnError(f"git worktree add did not finish within {timeout:g}s") from None
    if proc.returncode != 0:
        message = err.decode("utf-8", "replace").strip()
        raise SpawnError(f"git worktree add failed: {message or proc.returncode}")
