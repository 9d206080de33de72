"""Controlling sessions: spawn (`POST /v1/sessions`), send, kill (DESIGN §5)."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
from aiohttp import web

from aod.api.bodies import read_json_object
from aod.api.context import AppContext, context
from aod.api.errors import ApiError, json_response
from aod.ingest.envelope import InvalidItem, parse_envelope
from aod.ingest.projects import ProjectLocation, locate
from aod.lifecycle import manager
from aod.lifecycle.status import Activity, TerminationReason
from aod.runtime import spawn as spawning
from aod.runtime.kill import KillError, end_runtime
from aod.runtime.send import RuntimeSendError, send_to_session
from aod.shown import shown
from aod.storage import projects, sessions
from aod.timefmt import now_iso

routes = web.RouteTableDef()
DEFAULT_AGENT = "claude-code"
MAX_MESSAGE_CHARS = 1 << 20
MAX_NAME_CHARS = 120


def _bad(field: str, expected: str, value: object) -> ApiError:
    return ApiError(400, "invalid_parameter", f"{field}: expected {expected}, got {shown(value)}")


async def _session(ctx: AppContext, session_id: str) -> dict[str, Any]:
    found = await ctx.db.read(lambda c: sessions.get(c, session_id))
    if found is None:
        raise ApiError(404, "not_found", f"no session {session_id!r}")
    return found


# --- spawn --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpawnRequest:
    project: Path
    command: tuple[str, ...]
    agent: str
    worktree: bool
    name: str | None


def _spawn_request(body: dict[str, Any]) -> SpawnRequest:
    known = {"project", "command", "agent", "worktree", "name"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
    project = body.get("project")
    if not isinstance(project, str) or not project.startswith("/"):
        raise _bad("project", "an absolute path", project)
    command = body.get("command")
    # A NUL cannot pass into a program's arguments (exec refuses it): refused here, not by tmux.
    if not isinstance(command, list) or not command or not all(isinstance(a, str) and a and "\0" not in a for a in command):
        raise _bad("command", "a non-empty array of non-empty strings without NUL", command)
    agent = body.get("agent") or DEFAULT_AGENT
    try:  # the same rule as an envelope's agent name, so hooks from the spawned agent match it
        parse_envelope({"agent": agent, "payload": {}}, received_at=now_iso())
    except InvalidItem:
        raise _bad("agent", "a name of letters, digits, '.', '_', ':' or '-'", agent) from None
    worktree = body.get("worktree", False)
    if not isinstance(worktree, bool):
        raise _bad("worktree", "true or false", worktree)
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS or "\0" in name):
        raise _bad("name", f"a non-empty string of at most {MAX_NAME_CHARS} characters", name)
    return SpawnRequest(Path(project), tuple(command), agent, worktree, name.strip() if name else None)


def _reserve_id(conn: apsw.Connection, location: ProjectLocation, now: str) -> tuple[str, str]:
    """A fresh `{project}-{n}`, the same numbering adopted sessions get."""
    project_id = projects.ensure(conn, location.path, location.name, location.origin_url, now)
    return project_id, sessions.new_id(conn, project_id)


@routes.post("/v1/sessions")
async def spawn_session(request: web.Request) -> web.Response:
    ctx = context(request)
    spec = _spawn_request(await read_json_object(request))
    if not await asyncio.to_thread(spec.project.is_dir):
        raise _bad("project", "an existing directory", str(spec.project))
    if await asyncio.to_thread(shutil.which, "tmux") is None:
        raise ApiError(502, "runtime_failed", "tmux is not installed (not found on the daemon's PATH)")
    location = await asyncio.to_thread(locate, str(spec.project))
    if spec.worktree and not await asyncio.to_thread((Path(location.path) / ".git").exists):
        raise ApiError(400, "invalid_parameter", f"project: {spec.project} is not in a git repository (needed for worktree)")
    # The daemon's PATH, which the agent is given too: where it is looked up is where it runs.
    path = os.environ.get("PATH", os.defpath)
    # Before anything exists: a typo leaves no session, worktree or branch behind. A worktree is
    # a checkout of the repository root, so a relative path is looked up from there.
    start_dir = Path(location.path) if spec.worktree else spec.project
    try:
        await asyncio.to_thread(spawning.find_program, spec.command, cwd=start_dir, path=path)
    except spawning.CommandNotFound as exc:
        raise ApiError(400, "command_not_found", f"command: {exc}") from None
    now = now_iso()
    project_id, session_id = await ctx.db.write(lambda c: _reserve_id(c, location, now))

    workspace, branch = spec.project, None
    if spec.worktree:
        branch = spawning.branch_name(session_id, spec.name)
        workspace = ctx.config.data_dir / "worktrees" / session_id
        try:
            await spawning.add_worktree(Path(location.path), workspace, branch)
        except spawning.SpawnError as exc:
            raise ApiError(409, "worktree_failed", str(exc)) from None

    stuck_after = ctx.config.lifecycle.stuck_after
    fields = {
        "id": session_id, "project_id": project_id, "agent": spec.agent, "runtime": "tmux",
        "workspace_path": str(workspace), "branch": branch, "title": spec.name,
    }
    # The row exists before the agent does: its first hook must find the session it names.
    await ctx.db.write(lambda c: manager.create_session(c, fields, now=now_iso(), stuck_after=stuck_after))
    env = {
        "AOD_SESSION_ID": session_id,
        "AOD_DATA_DIR": str(ctx.config.data_dir),
        "AOD_SOCKET": str(ctx.config.socket_path),
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
        await _end_failed_spawn(ctx, session_id, f"{exc}: {last_line}" if last_line else str(exc))
        shown_output = f"; its last output:\n{exc.output}" if exc.output else "; it printed nothing"
        raise ApiError(422, "spawn_failed", f"session {session_id} ended at once: {exc}{shown_output}") from None
    except (spawning.SpawnError, spawning.tmux.TmuxError) as exc:
        await _end_failed_spawn(ctx, session_id, str(exc))
        raise ApiError(502, "runtime_failed", str(exc)) from None
    started = {"runtime_handle": pane.pane_id, "pid": pane.pane_pid, "is_alive": True}
    session = await ctx.db.write(lambda c: manager.write_facts(c, session_id, started, now=now_iso(), stuck_after=stuck_after))
    return json_response({**(session or {}), "tmux_session": pane.tmux_session}, 201)


async def _end_failed_spawn(ctx: AppContext, session_id: str, reason: str) -> None:
    """The reserved session ends `exited`, saying why, so it never waits for the reaper as idle."""
    now = now_iso()
    failed = {"activity": Activity.EXITED.value, "termination_reason": TerminationReason.EXITED.value,
              "ended_at": now, "error": f"spawn failed: {reason}", "error_at": now, "is_alive": False}
    stuck_after = ctx.config.lifecycle.stuck_after
    await ctx.db.write(lambda c: manager.write_facts(c, session_id, failed, now=now, stuck_after=stuck_after))


# --- send ---------------------------------------------------------------------------------------


@routes.post("/v1/sessions/{id}/send")
async def send_message(request: web.Request) -> web.Response:
    ctx = context(request)
    body = await read_json_object(request)
    message, force = body.get("message"), body.get("force", False)
    if not isinstance(message, str) or not message or len(message) > MAX_MESSAGE_CHARS:
        raise _bad("message", f"a non-empty string of at most {MAX_MESSAGE_CHARS} characters", message)
    if not isinstance(force, bool):
        raise _bad("force", "true or false", force)
    session = await _session(ctx, request.match_info["id"])
    sid = session["id"]
    if session["termination_reason"] is not None:
        raise ApiError(409, "session_ended", f"session {sid} has ended ({session['status']}); nothing to type into")
    if session["activity"] == Activity.WAITING_INPUT and not force:
        raise ApiError(409, "waiting_input", f"session {sid} is waiting for input (a permission or question "
                       "prompt is open); typing now would answer it. Send with force to type anyway")
    if session["runtime"] != "tmux" or not session["runtime_handle"]:
        raise ApiError(409, "no_runtime", f"session {sid} does not run in a tmux pane aod knows of")
    try:
        await send_to_session(session, message)
    except RuntimeSendError as exc:
        raise ApiError(502, "runtime_failed", str(exc)) from None
    return json_response({"sent": True, "session_id": sid, "chars": len(message)})


# --- kill ---------------------------------------------------------------------------------------


@routes.post("/v1/sessions/{id}/kill")
async def kill_session(request: web.Request) -> web.Response:
    ctx = context(request)
    session = await _session(ctx, request.match_info["id"])
    sid, reason = session["id"], session["termination_reason"]
    if reason == TerminationReason.KILLED:
        return json_response({**session, "runtime_ended": False})
    if reason is not None:
        raise ApiError(409, "session_ended", f"session {sid} has already ended ({session['status']})")
    try:
        ended = await end_runtime(session)
    except KillError as exc:
        raise ApiError(502, "runtime_failed", f"could not end the runtime of {sid}: {exc}") from None
    stuck_after = ctx.config.lifecycle.stuck_after
    killed = await ctx.db.write(lambda c: manager.mark_killed(c, sid, now=now_iso(), stuck_after=stuck_after))
    return json_response({**(killed or session), "runtime_ended": ended})
