"""Read endpoints: sessions, events, projects, status, health (DESIGN §5)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import orjson
from aiohttp import web

from aod import __version__
from aod.api import params
from aod.api.context import AppContext, context
from aod.api.errors import STORAGE_MESSAGES, ApiError, json_response, storage_code
from aod.config import PRIORITIES
from aod.ingest import spool
from aod.lifecycle.status import Status
from aod.storage import dead_letters, escalations, events, meta, projects, prs, sessions, trackers, usage
from aod.storage.health import free_bytes

routes = web.RouteTableDef()
RECENT_EVENTS = 50


@routes.get("/v1/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    statuses = params.listed(request, "status")
    unknown = sorted(set(statuses) - set(Status))
    if unknown:
        raise ApiError(400, "invalid_parameter", f"status: unknown {', '.join(unknown)}; one of {', '.join(Status)}")
    flt = sessions.SessionFilter(
        statuses=statuses,
        project=request.query.get("project") or None,
        agent=request.query.get("agent") or None,
        active=request.query.get("active", "") in ("1", "true", "yes"),
    )
    limit, cursor = params.limit(request), request.query.get("cursor") or None
    return await params.page(request, lambda c: _with_usage(c, sessions.listing(c, flt, limit, cursor)))


def _with_usage(conn: Any, page: tuple[list[dict[str, Any]], str | None]) -> tuple[list[dict[str, Any]], str | None]:
    """Each session of a page with its tokens and cost (null before any), read in the same transaction."""
    items, cursor = page
    totals = usage.totals_for(conn, [item["id"] for item in items])
    for item in items:
        item["usage"] = totals.get(item["id"])
    return items, cursor


def _session_detail(conn: Any, session_id: str) -> dict[str, Any] | None:
    session = sessions.get(conn, session_id)
    if session is None:
        return None
    session["prs"] = prs.for_session(conn, session_id)
    session["trackers"] = trackers.for_session(conn, session_id)
    session["escalations"] = escalations.for_session(conn, session_id)
    session["usage"] = usage.session_totals(conn, session_id)
    session["events"], _ = events.listing(conn, events.EventFilter(session=session_id), RECENT_EVENTS, None)
    return session


@routes.get("/v1/sessions/{id}")
async def get_session(request: web.Request) -> web.Response:
    session_id = request.match_info["id"]
    found = await context(request).db.read(lambda c: _session_detail(c, session_id))
    if found is None:
        raise ApiError(404, "not_found", f"no session {session_id!r}")
    return json_response(found)


def _event_filter(request: web.Request, session: str | None) -> events.EventFilter:
    return events.EventFilter(
        session=session,
        kinds=params.listed(request, "kind"),
        tool=request.query.get("tool") or None,
        since=params.timestamp(request, "since"),
        until=params.timestamp(request, "until"),
    )


async def _events_page(request: web.Request, session: str | None) -> web.Response:
    flt = _event_filter(request, session)
    limit, cursor = params.limit(request), request.query.get("cursor") or None
    ascending = request.query.get("order", "desc") == "asc"
    with_payload = request.query.get("payload", "") in ("1", "true")
    return await params.page(request, lambda c: events.listing(c, flt, limit, cursor, ascending=ascending, payload=with_payload))


@routes.get("/v1/sessions/{id}/events")
async def session_events(request: web.Request) -> web.Response:
    session_id = request.match_info["id"]
    if not await context(request).db.read(lambda c: sessions.exists(c, session_id)):
        raise ApiError(404, "not_found", f"no session {session_id!r}")
    return await _events_page(request, session_id)


@routes.get("/v1/events")
async def list_events(request: web.Request) -> web.Response:
    return await _events_page(request, request.query.get("session") or None)


@routes.get("/v1/events/{id:[0-9]+}")
async def get_event(request: web.Request) -> web.Response:
    text = request.match_info["id"]
    # Ids are SQLite rowids: one that does not fit in 63 bits names no event (and cannot be bound).
    event_id = int(text) if len(text) <= 19 else -1
    found = await context(request).db.read(lambda c: events.get(c, event_id)) if 0 < event_id < 2**63 else None
    if found is None:
        raise ApiError(404, "not_found", f"no event {text}")
    found["payload"] = orjson.Fragment(found["payload"])
    found.pop("content_key", None)
    return json_response(found)


@routes.get("/v1/projects")
async def list_projects(request: web.Request) -> web.Response:
    return json_response({"items": await context(request).db.read(projects.listing), "next_cursor": None})


def _counts(conn: Any) -> dict[str, Any]:
    return {
        "counts": {
            "projects": projects.count(conn),
            "sessions": sessions.count(conn),
            "events": events.count(conn),
            "dead_letters": dead_letters.count(conn),
        },
        "sessions_by_status": sessions.counts_by_status(conn),
        "escalations": _open_escalations(conn),
        "schema_version": meta.get(conn, "schema_version"),
        "epoch": meta.db_epoch(conn),
    }


def _open_escalations(conn: Any) -> dict[str, Any]:
    by_priority = {p: 0 for p in PRIORITIES} | escalations.open_by_priority(conn)
    return {"open": sum(by_priority.values()), "by_priority": by_priority}


def _file_facts(ctx: AppContext) -> dict[str, int | None]:
    db = ctx.db.path
    size = sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())
    backlog = sum(1 for p in ctx.spool_dir.glob("*.json")) if ctx.spool_dir.is_dir() else 0
    free = free_bytes(db.parent)
    return {"size": size, "free": free, "backlog": backlog, "rejected": spool.rejected_count(ctx.spool_dir)}


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    ctx = context(request)
    facts = await ctx.db.read(_counts)
    files = await asyncio.to_thread(_file_facts, ctx)
    return json_response({
        "version": __version__,
        "pid": os.getpid(),
        "uptime_s": round(time.monotonic() - ctx.started_at, 3),
        "ready": ctx.state.ready and not ctx.db.health.degraded,
        "socket": str(ctx.config.socket_path),
        "tcp": ctx.state.tcp_address,
        "data_dir": str(ctx.config.data_dir),
        "db": {"path": str(ctx.db.path), "size_bytes": files["size"],
               "schema_version": facts.pop("schema_version"), "epoch": facts.pop("epoch")},
        # Whether the database takes writes: "ok", "full" or "readonly" (ingest answers 507 meanwhile).
        "storage": {**ctx.db.health.snapshot(), "free_bytes": files["free"]},
        **facts,
        "spool": {"path": str(ctx.spool_dir), "backlog": files["backlog"], "rejected": files["rejected"]},
        "stream": _stream_facts(ctx),
        "config": {"path": str(ctx.config.config_path) if ctx.config.config_path else None,
                   "errors": ctx.config_errors},
        # Where escalations go: with no notifier routed they are recorded but reach no one.
        "notifiers": sorted(ctx.config.notifiers),
        "routing": {priority: list(names) for priority, names in ctx.config.routing.items()},
        # A job whose step raised shows "backoff" and its error until it runs again (restarts counts them).
        "jobs": ctx.jobs.status(),
        "forward": await ctx.forward_status(),
    })


def _stream_facts(ctx: AppContext) -> dict[str, int]:
    """Live SSE clients now, and how many were cut for not keeping up since the daemon started."""
    return {"clients": ctx.broadcaster.subscribers, "cut": ctx.broadcaster.cut_count}


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"ok": True})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    ctx = context(request)
    if not ctx.state.ready:
        raise ApiError(503, "not_ready", "starting: the spool is still being ingested")
    kind = ctx.db.health.state
    if kind != "ok":
        raise ApiError(503, storage_code(kind), STORAGE_MESSAGES[kind])
    return json_response({"ready": True})
