"""Controlling sessions: spawn, send, kill (DESIGN §5). The HTTP handlers check the request's
shape and call these; what is refused is a `Refused` with the error code the API answers.

Spawn reserves the id and writes the session row before the agent starts, so its first hook
finds the session it names; every write goes through the `FactWriter`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import apsw

from aod.lifecycle.status import Activity, TerminationReason
from aod.runtime import spawn as spawning
from aod.runtime import tmux
from aod.runtime.kill import KillError, end_runtime
from aod.runtime.send import RuntimeSendError, send_to_session
from aod.sessions.facts import FactWriter
from aod.sessions.projects import ProjectLocation, locate
from aod.shown import shown
from aod.storage import projects, sessions
from aod.storage.database import Database
from aod.timefmt import now_iso

RefusalCode = Literal[
    "invalid_parameter", "command_not_found", "not_found", "worktree_failed", "session_ended", "waiting_input",
    "no_runtime", "spawn_failed", "runtime_failed",
]


class Refused(Exception):
    """A control request that cannot be done; `code` is the API's error code."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SpawnRequest:
    project: Path
    command: tuple[str, ...]
    agent: str
    worktree: bool
    name: str | None


class SessionControl:
    def __init__(self, db: Database, facts: FactWriter, *, data_dir: Path, socket_path: Path) -> None:
        self.db = db
        self.facts = facts
        self.data_dir = data_dir  # worktrees go under it; the agent's hooks are told where it is
        self.socket_path = socket_path

    async def session(self, session_id: str) -> dict[str, Any]:
        found = await self.db.read(lambda c: sessions.get(c, session_id))
        if found is None:
            raise Refused("not_found", f"no session {session_id!r}")
        return found

    # --- spawn ----------------------------------------------------------------------------------

    async def spawn(self, spec: SpawnRequest) -> tuple[dict[str, Any], str]:
        """Start the agent in a detached tmux session; the session and that tmux session's name."""
        if not await asyncio.to_thread(spec.project.is_dir):
            raise Refused("invalid_parameter", f"project: expected an existing directory, got {shown(str(spec.project))}")
        if await asyncio.to_thread(shutil.which, "tmux") is None:
            raise Refused("runtime_failed", "tmux is not installed (not found on the daemon's PATH)")
        location = await asyncio.to_thread(locate, str(spec.project))
        if spec.worktree and not await asyncio.to_thread((Path(location.path) / ".git").exists):
            raise Refused("invalid_parameter", f"project: {spec.project} is not in a git repository (needed for worktree)")
        # The daemon's PATH, which the agent is given too: where it is looked up is where it runs.
        path = os.environ.get("PATH", os.defpath)
        # Before anything exists: a typo leaves no session, worktree or branch behind. A worktree is
        # a checkout of the repository root, so a relative path is looked up from there.
        start_dir = Path(location.path) if spec.worktree else spec.project
        try:
            await asyncio.to_thread(spawning.find_program, spec.command, cwd=start_dir, path=path)
        except spawning.CommandNotFound as exc:
            raise Refused("command_not_found", f"command: {exc}") from None
        now = now_iso()
        project_id, session_id = await self.db.write(lambda c: _reserve_id(c, location, now))

        workspace, branch = spec.project, None
        if spec.worktree:
            branch = spawning.branch_name(session_id, spec.name)
            workspace = self.data_dir / "worktrees" / session_id
            try:
                await spawning.add_worktree(Path(location.path), workspace, branch)
            except spawning.SpawnError as exc:
                raise Refused("worktree_failed", str(exc)) from None

        fields = {
            "id": session_id, "project_id": project_id, "agent": spec.agent, "runtime": "tmux",
            "workspace_path": str(workspace), "branch": branch, "title": spec.name,
        }
        # The row exists before the agent does: its first hook must find the session it names.
        await self.db.write(lambda c: self.facts.create(c, fields, now=now_iso()))
        env = {
            "AOD_SESSION_ID": session_id,
            "AOD_DATA_DIR": str(self.data_dir),
            "AOD_SOCKET": str(self.socket_path),
            # Said outright: not every tmux version hands a new session its client's PATH rather than
            # the server's own, and the program was looked up on this one.
            "PATH": path,
        }
        try:
            pane = await spawning.start_in_tmux(
                spawning.tmux_session_name(session_id), cwd=workspace, command=spec.command, env=env
            )
        except spawning.AgentExited as exc:
            last_line = exc.output.rsplit("\n", 1)[-1][:200]
            await self._spawn_failed(session_id, f"{exc}: {last_line}" if last_line else str(exc))
            shown_output = f"; its last output:\n{exc.output}" if exc.output else "; it printed nothing"
            raise Refused("spawn_failed", f"session {session_id} ended at once: {exc}{shown_output}") from None
        except (spawning.SpawnError, tmux.TmuxError) as exc:
            await self._spawn_failed(session_id, str(exc))
            raise Refused("runtime_failed", str(exc)) from None
        started = {"runtime_handle": pane.pane_id, "pid": pane.pane_pid, "is_alive": True}
        session = await self.db.write(lambda c: self.facts.write(c, session_id, started, now=now_iso()))
        return session or {}, pane.tmux_session

    async def _spawn_failed(self, session_id: str, reason: str) -> None:
        now = now_iso()
        await self.db.write(lambda c: self.facts.spawn_failed(c, session_id, reason, now=now))

    # --- send -----------------------------------------------------------------------------------

    async def send(self, session_id: str, message: str, *, force: bool) -> str:
        """Type `message` into the agent's pane; the session's id."""
        session = await self.session(session_id)
        sid = session["id"]
        if session["termination_reason"] is not None:
            raise Refused("session_ended", f"session {sid} has ended ({session['status']}); nothing to type into")
        if session["activity"] == Activity.WAITING_INPUT and not force:
            raise Refused("waiting_input", f"session {sid} is waiting for input (a permission or question "
                          "prompt is open); typing now would answer it. Send with force to type anyway")
        if session["runtime"] != "tmux" or not session["runtime_handle"]:
            raise Refused("no_runtime", f"session {sid} does not run in a tmux pane aod knows of")
        try:
            await send_to_session(session, message)
        except RuntimeSendError as exc:
            raise Refused("runtime_failed", str(exc)) from None
        return str(sid)

    # --- kill -----------------------------------------------------------------------------------

    async def kill(self, session_id: str) -> tuple[dict[str, Any], bool]:
        """End the agent's runtime and mark the session `killed`; the session, and whether
        anything was still running. Killing a killed session is a no-op."""
        session = await self.session(session_id)
        sid, reason = session["id"], session["termination_reason"]
        if reason == TerminationReason.KILLED:
            return session, False
        if reason is not None:
            raise Refused("session_ended", f"session {sid} has already ended ({session['status']})")
        try:
            ended = await end_runtime(session)
        except KillError as exc:
            raise Refused("runtime_failed", f"could not end the runtime of {sid}: {exc}") from None
        killed = await self.db.write(lambda c: self.facts.killed(c, sid, now=now_iso()))
        return killed or session, ended


def _reserve_id(conn: apsw.Connection, location: ProjectLocation, now: str) -> tuple[str, str]:
    """A fresh `{project}-{n}`, the same numbering adopted sessions get."""
    project_id = projects.ensure(conn, location.path, location.name, location.origin_url, now)
    return project_id, sessions.new_id(conn, project_id)
