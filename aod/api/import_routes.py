"""`POST /v1/import/claude`: what `aod import claude` read from Claude Code's transcripts, stored
through the daemon (so an import is safe while it runs). Events go through ingest like any hook
event (uids derived from the transcript: importing again adds nothing), except for sessions the
hooks already reported, whose events are there already: of those only the usage is taken."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from aod.api.bodies import read_json_object
from aod.api.context import context
from aod.api.errors import ApiError, json_response
from aod.sessions.facts import FactWriter
from aod.storage import events, usage
from aod.timefmt import now_iso
from aod.transcripts.importer import UID_PREFIX
from aod.transcripts.rows import usage_item
from aod.usage.prices import configured

routes = web.RouteTableDef()
SOURCE = "import:claude"


def _sessions(body: dict[str, Any]) -> list[dict[str, Any]]:
    found = body.get("sessions")
    if not isinstance(found, list):
        raise ApiError(400, "invalid_body", "sessions: expected an array")
    for i, s in enumerate(found):
        where = f"sessions[{i}]"
        if not isinstance(s, dict) or not isinstance(s.get("agent_session_id"), str) or not s["agent_session_id"]:
            raise ApiError(400, "invalid_body", f"{where}.agent_session_id: expected a string")
        for key in ("events", "usage"):
            if not isinstance(s.get(key, []), list):
                raise ApiError(400, "invalid_body", f"{where}.{key}: expected an array")
        branch = s.get("branch")
        if branch is not None and not (isinstance(branch, str) and 0 < len(branch) <= 255):
            raise ApiError(400, "invalid_body", f"{where}.branch: expected a branch name or null")
    return found


def _markers(items: list[Any]) -> list[str]:
    """The uid that says a part was stored whole already: its last event's. The Stop and SessionEnd
    that close a session carry the time of its last line in theirs: a transcript that grew since
    ends with new ones, and is ingested again (its old events found duplicates by uid)."""
    last = items[-1] if items and isinstance(items[-1], dict) else None
    uid = last.get("uid") if last is not None else None
    return [uid] if isinstance(uid, str) else []


def _set_branches(conn: Any, facts: FactWriter, branches: dict[str, str], now: str) -> None:
    """The transcript's git branch on the sessions it created (the session writer sets it; one a
    session already has, from a spawn, stays)."""
    for agent_session_id, row in usage.without_branch(conn, branches).items():
        facts.write(conn, row["id"], {"branch": branches[agent_session_id]}, now=now, row=row)


@routes.post("/v1/import/claude")
async def import_claude(request: web.Request) -> web.Response:
    ctx = context(request)
    found = _sessions(await read_json_object(request))
    table = configured(ctx.config)
    rows = []
    for i, s in enumerate(found):
        for j, item in enumerate(s.get("usage", [])):
            try:
                rows.append(usage_item(item, table))
            except ValueError as exc:
                raise ApiError(400, "invalid_body", f"sessions[{i}].usage[{j}].{exc}") from None
    ids = [s["agent_session_id"] for s in found]
    hooked = await ctx.db.read(lambda c: usage.reported_by_hooks(c, ids, UID_PREFIX))
    wanted = [s for s in found if s["agent_session_id"] not in hooked and s.get("events")]
    marks = {i: _markers(s["events"]) for i, s in enumerate(wanted)}
    present = await ctx.db.read(lambda c: events.existing_uids(c, [u for m in marks.values() for u in m]))
    whole = {i for i, m in marks.items() if m and set(m) <= present}
    stored = [s for i, s in enumerate(wanted) if i in whole]
    todo = [e for i, s in enumerate(wanted) if i not in whole for e in s["events"]]
    summary = (await ctx.ingestor.ingest(todo, source=SOURCE)).body() if todo else \
        {"accepted": 0, "duplicates": 0, "rejected": []}
    found_before = summary["duplicates"]
    assert isinstance(found_before, int)
    summary["duplicates"] = found_before + sum(len(s["events"]) for s in stored)
    now = now_iso()
    branches = {s["agent_session_id"]: s["branch"] for s in found
                if s.get("branch") and s["agent_session_id"] not in hooked}

    def store(conn: Any) -> int:
        added = usage.store(conn, rows, now)
        _set_branches(conn, ctx.ingestor.facts, branches, now)
        return added

    added = await ctx.db.write(store)
    return json_response({"sessions": len(found), "matched": sorted(hooked), "events": summary,
                          "usage": {"accepted": added, "duplicates": len(rows) - added}})
