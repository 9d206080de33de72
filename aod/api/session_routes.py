"""Controlling sessions over HTTP: spawn (`POST /v1/sessions`), send, kill (DESIGN §5).

The handlers check the request's shape; `aod.sessions.control` does the rest, and what it
refuses is answered with its error code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, assert_never

from aiohttp import web

from aod.api.bodies import read_json_object
from aod.api.context import context
from aod.api.errors import ApiError, json_response
from aod.ingest.envelope import InvalidItem, parse_envelope
from aod.sessions.control import Refused, SpawnRequest
from aod.shown import shown
from aod.timefmt import now_iso

routes = web.RouteTableDef()
DEFAULT_AGENT = "claude-code"
MAX_MESSAGE_CHARS = 1 << 20
MAX_NAME_CHARS = 120


def _bad(field: str, expected: str, value: object) -> ApiError:
    return ApiError(400, "invalid_parameter", f"{field}: expected {expected}, got {shown(value)}")


def _refused(exc: Refused) -> ApiError:
    """The answer to a refusal of `aod.sessions.control` (written out: tests/test_docs.py reads the pairs)."""
    message = str(exc)
    match exc.code:
        case "invalid_parameter":
            return ApiError(400, "invalid_parameter", message)
        case "command_not_found":
            return ApiError(400, "command_not_found", message)
        case "not_found":
            return ApiError(404, "not_found", message)
        case "worktree_failed":
            return ApiError(409, "worktree_failed", message)
        case "session_ended":
            return ApiError(409, "session_ended", message)
        case "waiting_input":
            return ApiError(409, "waiting_input", message)
        case "no_runtime":
            return ApiError(409, "no_runtime", message)
        case "spawn_failed":
            return ApiError(422, "spawn_failed", message)
        case "runtime_failed":
            return ApiError(502, "runtime_failed", message)
        case _:
            assert_never(exc.code)


# --- spawn --------------------------------------------------------------------------------------


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


@routes.post("/v1/sessions")
async def spawn_session(request: web.Request) -> web.Response:
    spec = _spawn_request(await read_json_object(request))
    try:
        session, tmux_session = await context(request).control.spawn(spec)
    except Refused as exc:
        raise _refused(exc) from None
    return json_response({**session, "tmux_session": tmux_session}, 201)


# --- send ---------------------------------------------------------------------------------------


@routes.post("/v1/sessions/{id}/send")
async def send_message(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    message, force = body.get("message"), body.get("force", False)
    if not isinstance(message, str) or not message or len(message) > MAX_MESSAGE_CHARS:
        raise _bad("message", f"a non-empty string of at most {MAX_MESSAGE_CHARS} characters", message)
    if not isinstance(force, bool):
        raise _bad("force", "true or false", force)
    try:
        sid = await context(request).control.send(request.match_info["id"], message, force=force)
    except Refused as exc:
        raise _refused(exc) from None
    return json_response({"sent": True, "session_id": sid, "chars": len(message)})


# --- kill ---------------------------------------------------------------------------------------


@routes.post("/v1/sessions/{id}/kill")
async def kill_session(request: web.Request) -> web.Response:
    try:
        session, ended = await context(request).control.kill(request.match_info["id"])
    except Refused as exc:
        raise _refused(exc) from None
    return json_response({**session, "runtime_ended": ended})
