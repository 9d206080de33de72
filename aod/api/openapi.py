"""The OpenAPI 3.1 document of the HTTP API, served at `GET /v1/openapi.json` (DESIGN §6).

This is the one place that says what each route takes and answers: docs/api.md's reference is
rendered from it (`python -m aod.api.openapi_markdown --write`), and tests/test_docs.py holds
it to the app: every route of the router is here and nothing else, each operationId is its
handler's name, every error code a route module raises is listed on one of that module's
operations, and the object schemas have exactly the keys a real daemon answers with. Value sets
(statuses, stream entities, PR states, the list limit) come from the code that enforces them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, get_args

from aiohttp import web

from aod import __version__
from aod.api.errors import json_response
from aod.api.params import MAX_LIMIT
from aod.cdc.cursor import ENTITIES
from aod.config import PRIORITIES
from aod.jobs import State as JobState
from aod.lifecycle.status import Activity, Status, TerminationReason
from aod.scm.observation import CHECK_STATUSES, MERGEABILITY, PR_STATES, REVIEW_DECISIONS

routes = web.RouteTableDef()
OPENAPI_VERSION = "3.1.0"

Json = dict[str, Any]
# In the order docs/api.md presents them.
TAGS = (
    ("ingest", "Hook events in. Both routes answer only after the commit."),
    ("sessions", "Sessions and projects."),
    ("events", "Stored hook events."),
    ("control", "Starting, talking to and ending agents in tmux."),
    ("pull requests", "Pull request observations, as the SCM observer records them."),
    ("escalations", "Pages for the human that the reactions recorded."),
    ("usage", "Tokens and cost from Claude Code's transcripts."),
    ("stream", "The live change stream."),
    ("look back", "Finding, replaying and exporting stored sessions."),
    ("operations", "Health, status, maintenance and this document."),
    ("dashboard", "The browser dashboard's page and files (aod/dashboard/), served as they are."),
)
# An error a route can answer: (HTTP status, `error.code`, when it happens).
Err = tuple[int, str, str]


@routes.get("/v1/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return json_response(document())


# --- schema shorthands --------------------------------------------------------------------------

_TYPES = {"s": "string", "i": "integer", "n": "number", "b": "boolean", "o": "object", "a": "array"}


def _props(spec: str) -> Json:
    """`"id:s uid:s? ok:b?"` -> JSON Schema properties; `?` means it may be null."""
    props: Json = {}
    for word in spec.split():
        name, _, kind = word.partition(":")
        nullable = kind.endswith("?")
        base = _TYPES[kind.rstrip("?")]
        props[name] = {"type": [base, "null"] if nullable else base}
    return props


def _object(spec: str, description: str = "", *, optional: tuple[str, ...] = (), **extra: Json) -> Json:
    """An object the daemon answers with: every property is always there, except the `optional` ones."""
    props = {**_props(spec), **extra}
    schema: Json = {"type": "object", "properties": props, "required": [k for k in props if k not in optional]}
    if description:
        schema["description"] = description
    return schema


def _input(spec: str, description: str = "", *, required: tuple[str, ...] = (), **extra: Json) -> Json:
    """An object a client sends: only `required` must be there."""
    schema = _object(spec, description, optional=(), **extra)  # given: mypy reads an unnamed one as filled by **extra
    schema["required"] = list(required)
    return schema


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: Json) -> Json:
    return {"type": "array", "items": items}


def _enum(values: Any, nullable: bool = False) -> Json:
    listed = [str(v) for v in values]
    return {"type": ["string", "null"], "enum": [*listed, None]} if nullable else {"type": "string", "enum": listed}


def _page(item: str) -> Json:
    return {
        "type": "object",
        "properties": {"items": _array(_ref(item)), "next_cursor": {"type": ["string", "null"]}},
        "required": ["items", "next_cursor"],
        "title": f"page of [{item}](#{item.lower()})",
        "description": "A keyset page: pass `next_cursor` back as `cursor` for the next one (null: no more).",
    }


SESSION_COLUMNS = (
    "id:s project_id:s? agent:s agent_session_id:s? status:s activity:s activity_at:s? error:s? error_at:s? "
    "is_alive:b? termination_reason:s? runtime:s? runtime_handle:s? pid:i? workspace_path:s? "
    "branch:s? title:s? created_at:s updated_at:s last_event_at:s? ended_at:s?"
)
EVENT_SUMMARY = (
    "id:i uid:s session_id:s? agent:s kind:s tool_name:s? tool_use_id:s? occurred_at:s received_at:s "
    "duration_ms:i? ok:b? payload_bytes:i trimmed:b"
)


def _session() -> Json:
    schema = _object(SESSION_COLUMNS, "A session: the columns of `sessions`; `status` is derived from the others.")
    props = schema["properties"]
    props["status"] = _enum(Status)
    props["activity"] = _enum(Activity)
    props["termination_reason"] = _enum(TerminationReason, nullable=True)
    # In the listing and the detail; not in the spawn and kill answers.
    props["usage"] = {"type": ["object", "null"], "description": "Tokens and cost from its transcript (null "
                      "before any): `messages`, the four token counts, `cost_usd`, `unpriced_messages`, "
                      "`sidechain_messages`, `sidechain_cost_usd` (subagents, included in the totals), `models` "
                      "(messages per model), `updated_at`."}
    return schema


def _session_with(description: str, **extra: Json) -> Json:
    """A Session with more fields (the detail view, the spawn and kill answers)."""
    schema = {"allOf": [_ref("Session"), _object("", "", optional=(), **extra)],
              "title": "[Session](#session) with " + ", ".join(f"`{name}`" for name in extra)}
    return {**schema, "description": description} if description else schema


def _schemas() -> Json:
    tracker = _object("session_id:s reaction:s attempts:i first_at:s last_at:s? last_signature:s? "
                      "escalated_at:s? resolved_at:s?", "The durable budget of one (session, reaction) episode, "
                      "with the nudges it decided (newest first).", nudges=_array(_ref("Nudge")))
    nudge = _object("id:i session_id:s reaction:s signature:s message:s status:s attempts:i created_at:s "
                    "next_attempt_at:s last_error:s? typing_since:s? sent_at:s?",
                    "A send-to-agent message (the nudge outbox row).")
    delivery = _object("id:i escalation_id:i notifier:s status:s attempts:i next_attempt_at:s? last_error:s? "
                       "sent_at:s?", "One notifier's delivery of an escalation (the outbox row).")
    escalation = _object("id:i session_id:s? reaction:s priority:s message:s created_at:s acked_at:s?",
                         "A page for the human, with its deliveries.", deliveries=_array(_ref("Delivery")))
    escalation["properties"]["priority"] = _enum(PRIORITIES)
    check = _object("pr_url:s name:s commit_sha:s status:s url:s? created_at:s updated_at:s")
    comment = _object("pr_url:s comment_id:s author:s? path:s? line:i? body:s? resolved:b created_at:s")
    pr = _object("url:s session_id:s? number:i? state:s? draft:b? review_decision:s? mergeability:s? ci_state:s? "
                 "head_sha:s? title:s? updated_at:s", "A pull request with its checks and review comments.",
                 checks=_array(check), comments=_array(comment))
    return {
        "SearchHit": _object("session_id:s? event_id:i occurred_at:s kind:s snippet:s",
                             "One event a search found; `snippet` is HTML-escaped, its matches in `<mark>…</mark>`."),
        "Error": _error_schema(None),
        "Session": _session(),
        "SessionDetail": _session_with("A session with its PRs, reaction trackers, escalations and latest events.",
                                       prs=_array(_ref("Pr")), trackers=_array(_ref("Tracker")),
                                       escalations=_array(_ref("Escalation")), events=_array(_ref("EventSummary"))),
        "EventSummary": _object(EVENT_SUMMARY, "An event in a list: its payload only with `payload=1`.",
                                optional=("payload",), payload={"type": "object"}),
        "Event": _object(EVENT_SUMMARY, "An event with the hook payload as stored (trimmed when `trimmed`).",
                         payload={"type": "object"}),
        "Project": _object("id:s path:s name:s origin_url:s? created_at:s archived_at:s? sessions:i "
                           "last_active_at:s?", "A project (git root) with its session count."),
        "Pr": pr,
        "Tracker": tracker,
        "Nudge": nudge,
        "Escalation": escalation,
        "Delivery": delivery,
        "Envelope": _envelope(),
        "IngestSummary": _object("accepted:i duplicates:i", "What became of the items, answered after the commit.",
                                 rejected=_array(_object("index:i error:s"))),
        "PrObservation": _observation(),
        "PruneReport": _object("dry_run:b events_before:s change_log_before:s events:i change_log:i "
                               "floor_before:i floor_after:i waiting_for_forward:b",
                               "What retention deleted (or would delete); `waiting_for_forward`: old rows kept"
                               " because [forward.postgres] has not shipped them yet."),
        "Status": _status(),
        "CheckReport": _object("ok:b db_path:s full:b", "The database self-check.",
                               checks=_array(_object("name:s ok:b detail:s"))),
        "Stats": _object(
            "", "Counts over a window of `occurred_at`; sessions that lived in it (created before its end, not "
            "ended before its start) by the status they have now.",
            sessions_by_status={"type": "object", "additionalProperties": {"type": "integer"}},
            events_per_minute=_array(_object("minute:s count:i", "`minute` is its start, `2026-11-29T07:05:00Z`")),
            tools=_array(_object("tool_name:s count:i failures:i p50_ms:i? p95_ms:i?",
                                 "`failures`: events with `ok` false; p50/p95: nearest rank over the known "
                                 "`duration_ms` (null when none is known)"))),
        "UsageTotals": _usage_totals(),
        "UsageItem": {"allOf": [_ref("UsageTotals"), _object(
            "key:s? first_at:s end:s active:b cost_per_hour:n?", "`key`: the day or month (the daemon's local "
            "calendar), model, project id or session id (null: no aod session or project known), or the block's "
            "start. Blocks also have `first_at` (its first message), `end` (start + 5 h), `active` (not over and "
            "a message in the last 5 h) and `cost_per_hour` (cost over the time from its first to its last "
            "message; null with one message).",
            optional=("first_at", "end", "active", "cost_per_hour"), last_at={"type": "string"})],
            "title": "[UsageTotals](#usagetotals) with `key`"},
        "Usage": _object("group_by:s since:s? until:s?", "Tokens and cost of the window, grouped; `since` and "
                         "`until` as stored (UTC).", items=_array(_ref("UsageItem")), total=_ref("UsageTotals"),
                         unpriced_models=_array({"type": "string"})),
        "Change": _object("seq:i entity:s op:s id:s session_id:s? project_id:s? at:s",
                          "The `data` of a stream frame: one change_log row.", data={"type": "object"}),
    }


def _usage_totals() -> Json:
    return _object(
        "messages:i input_tokens:i output_tokens:i cache_creation_input_tokens:i cache_read_input_tokens:i "
        "cost_usd:n unpriced_messages:i sidechain_messages:i sidechain_cost_usd:n",
        "One row per assistant message (deduplicated by message id + request id). `cost_usd` sums the priced "
        "messages only: `unpriced_messages` had a model with no price (never counted as free); `sidechain_*`: "
        "what subagents spent, included in the totals.",
        optional=("last_at",), models=_array({"type": "string"}), last_at={"type": "string"})


def _envelope() -> Json:
    runtime = _input("tmux_pane:s? pid:i?", "Where the agent runs: a tmux pane id like `%3`, its pid.")
    schema = _input("uid:s? agent:s occurred_at:s? session:s?", "One hook event as a client sends it.", required=("payload",),
                     runtime=runtime, payload={"type": "object", "description": "the hook's JSON, as the agent sent it"})
    schema["properties"]["occurred_at"] = {"type": ["string", "integer", "null"],
                                           "description": "RFC 3339, or epoch seconds / nanoseconds"}
    return schema


def _observation() -> Json:
    check = _input("name:s commit_sha:s? url:s?", required=("name", "status"), status=_enum(CHECK_STATUSES))
    comment = _input("comment_id:s author:s? path:s? line:i? body:s? resolved:b?", required=("comment_id",))
    comment["properties"]["comment_id"] = {"type": ["string", "integer"]}
    schema = _input("url:s number:i draft:b? head_sha:s? title:s?", "A PR as the SCM observer sees it.",
                    required=("url", "number", "state"),
                     state=_enum(PR_STATES), review_decision=_enum(REVIEW_DECISIONS, nullable=True),
                     mergeability=_enum(MERGEABILITY, nullable=True), checks=_array(check),
                     comments=_array(comment))
    return schema


def _status() -> Json:
    return _object(
        "version:s pid:i uptime_s:n ready:b socket:s tcp:s? data_dir:s", "What the daemon holds and how it is.",
        db=_object("path:s size_bytes:i schema_version:s? epoch:s"),
        storage=_object("state:s since:s? last_error:s? free_bytes:i?",
                        "`ok`, `full` or `readonly`: whether the database takes writes."),
        counts=_object("projects:i sessions:i events:i dead_letters:i"),
        sessions_by_status={"type": "object", "additionalProperties": {"type": "integer"}},
        spool=_object("path:s backlog:i rejected:i"),
        stream=_object("clients:i cut:i", "Live stream clients, and how many were cut for falling behind."),
        config=_object("path:s?", errors=_array({"type": "string"})),
        escalations=_object("open:i", "Escalations nobody has acknowledged yet.",
                            by_priority=_object(" ".join(f"{p}:i" for p in PRIORITIES))),
        notifiers=_array({"type": "string"}),
        routing=_object(" ".join(f"{p}:a" for p in PRIORITIES), "Which notifiers each priority pages."),
        forward=_object(
            "enabled:b target:s? tenant:s? circuit:s? failures_in_a_row:i cursor:i? head:i lag_rows:i lag_seconds:n "
            "forwarded_rows:i upserted_rows:i batches:i failures:i last_error:s? last_error_at:s? "
            "last_success_at:s? retention_waiting:b",
            "Forwarding to the team PostgreSQL ([forward.postgres]). `target`: the dsn without its password; "
            "`tenant`: the role it logs in as; `circuit`: `closed`, `open` (5 failures in a row: no attempt until "
            "`open_for` passed) or `half_open` (one probe batch); `cursor`: the last change_log seq the team store "
            "committed; `lag_rows` / `lag_seconds`: change_log rows not forwarded yet and the age of the oldest; "
            "`retention_waiting`: retention keeps rows past their age until they are forwarded.",
            backfill={**_object("sent_through:i until:i", "While a new team store is backfilled: the last event id "
                                "sent and the last one to send (the newest when it began); null otherwise."),
                      "type": ["object", "null"]}),
        jobs={"type": "object", "description": "The background jobs by name (reaper, cdc-poller, retention, ...). "
              "`state`: `running` a pass, `waiting` for `next_due` or a wake, `backoff` after a pass failed "
              "(`last_error`; it runs again at `next_due`, the pause doubling per failure in a row up to 60 s), "
              "`stopped`. `restarts` counts failed passes since start; `last_error` stays after a recovery.",
              "additionalProperties": _object("last_error:s? restarts:i next_due:s?",
                                              state=_enum(get_args(JobState)))},
    )


def _error_schema(codes: list[str] | None) -> Json:
    code: Json = {"type": "string"} if codes is None else {"type": "string", "enum": codes}
    return {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"],
                                 "properties": {"code": code, "message": {"type": "string"}}}},
    }


# --- parameters ---------------------------------------------------------------------------------


def _param(name: str, where: str, description: str, schema: Json | None = None) -> Json:
    return {"name": name, "in": where, "required": where == "path",
            "description": description, "schema": schema or {"type": "string"}}


def _query(name: str, description: str, schema: Json | None = None) -> Json:
    return _param(name, "query", description, schema)


def _path_id(what: str) -> Json:
    return _param("id", "path", f"the {what} id")


def _list_params() -> list[Json]:
    return [
        _query("limit", f"page size, 1 to {MAX_LIMIT} (default 50)",
               {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}),
        _query("cursor", "the `next_cursor` of the previous page"),
    ]


def _event_params() -> list[Json]:
    return [
        _query("kind", "hook event names, comma-separated or repeated (e.g. `PreToolUse,Stop`)"),
        _query("tool", "only this tool name (e.g. `Bash`)"),
        _query("since", "only events that occurred at or after this RFC 3339 instant", {"type": "string", "format": "date-time"}),
        _query("until", "only events that occurred before this RFC 3339 instant", {"type": "string", "format": "date-time"}),
        _query("order", "`desc` (newest first, the default) or `asc`", {"type": "string", "enum": ["desc", "asc"]}),
        _query("payload", "`1` adds each event's payload", {"type": "string", "enum": ["1", "true"]}),
        *_list_params(),
    ]


FLAG = {"type": "string", "enum": ["1", "true", "yes"]}
YES_NO = {"type": "string", "enum": ["1", "true", "yes", "0", "false", "no"]}

# --- errors -------------------------------------------------------------------------------------

BAD_PARAM = (400, "invalid_parameter", "a query parameter or field is malformed; the message names it")
NOT_FOUND = (404, "not_found", "no such {what}")
NOT_READY = (503, "not_ready", "the daemon is starting or stopping")
# Every route that reads a JSON body (aod/api/bodies.py).
BODY: tuple[Err, ...] = (
    (400, "invalid_json", "the body is not valid UTF-8 JSON"),
    (413, "body_too_large", "the body is larger than `ingest.max_body_bytes`"),
    (415, "unsupported_media_type", "the body is not sent as `Content-Type: application/json`"),
)
# Every route that writes (aod/api/errors.py): nothing of the request was stored.
STORAGE: tuple[Err, ...] = (
    (507, "storage_full", "the disk holding the database is full"),
    (507, "storage_readonly", "the database or its file system refuses writes"),
)
# Over TCP only (aod/api/security.py); the Unix socket needs no credentials.
HOST = (403, "forbidden_host", "over TCP: the `Host` is not a loopback name")
TOKEN = (401, "unauthorized", "over TCP: no valid token (Bearer header or `aod_session` cookie)")
ORIGIN = (403, "forbidden_origin", "over TCP: a state-changing request from a foreign `Origin`")
RUNTIME_FAILED = (502, "runtime_failed", "tmux (or the process) failed; the message has its error")


def _not_found(what: str) -> Err:
    return (NOT_FOUND[0], NOT_FOUND[1], NOT_FOUND[2].format(what=what))


def _responses(ok: Json, errors: tuple[Err, ...]) -> Json:
    """The success responses plus one JSON error response per status, listing its codes and when."""
    out = dict(ok)
    by_status: dict[int, list[tuple[str, str]]] = {}
    for status, code, when in errors:
        by_status.setdefault(status, []).append((code, when))
    for status in sorted(by_status):
        listed = by_status[status]
        out[str(status)] = {
            "description": "\n".join(f"- `{code}`: {when}" for code, when in listed),
            "content": {"application/json": {"schema": _error_schema(list(dict.fromkeys(c for c, _ in listed)))}},
        }
    return out


def _json(status: int, description: str, schema: Json) -> Json:
    return {str(status): {"description": description, "content": {"application/json": {"schema": schema}}}}


def _body(schema: Json, description: str) -> Json:
    return {"required": True, "description": description, "content": {"application/json": {"schema": schema}}}


@dataclass(frozen=True)
class Op:
    """One operation; the auth errors follow from its method, `stores` adds the storage errors."""

    handler: str
    tag: str
    summary: str
    ok: Json
    errors: tuple[Err, ...] = ()
    description: str = ""
    params: Sequence[Json] = ()
    body: Json | None = None
    stores: bool = False
    public: bool = False  # no token needed over TCP

    def render(self, method: str) -> Json:
        auth = (HOST,) if self.public else (TOKEN, HOST, *((ORIGIN,) if method != "get" else ()))
        operation: Json = {"operationId": self.handler, "tags": [self.tag], "summary": self.summary}
        if self.description:
            operation["description"] = self.description
        if self.params:
            operation["parameters"] = list(self.params)
        if self.body is not None:
            operation["requestBody"] = self.body
        operation["responses"] = _responses(self.ok, (*self.errors, *(STORAGE if self.stores else ()), *auth))
        if self.public:
            operation["security"] = []
        return operation


# --- the operations -----------------------------------------------------------------------------


def _paths() -> dict[str, dict[str, Op]]:
    return {
        "/v1/events": {
            "get": Op("list_events", "events", "Events, newest first",
                      _json(200, "a page of events", _page("EventSummary")), (BAD_PARAM,),
                      params=[_query("session", "only this session's events"), *_event_params()]),
            "post": Op(
                "post_events", "ingest", "Store hook events",
                _json(202, "stored (or recognised as duplicates) and committed", _ref("IngestSummary")),
                (*BODY, (400, "invalid_envelope", "a single envelope that cannot be stored, or `events` is not an array")),
                description="One envelope, or `{\"events\": [...]}`. In a batch an item that cannot be stored is a "
                "`rejected` entry and the others are stored; a single envelope that cannot be stored is a 400. "
                "Every refused item or body is kept in `dead_letters`. A resent `uid`, or the same content within "
                "`ingest.dedup_window`, counts as a duplicate.",
                body=_body({"oneOf": [_ref("Envelope"), _input("", required=("events",), events=_array(_ref("Envelope")))]},
                           "an envelope or a batch of them"),
                stores=True),
        },
        "/v1/hooks/{agent}": {
            "post": Op(
                "post_hook", "ingest", "Store one raw hook payload (Claude Code's `http` hook)",
                _json(202, "stored and committed", _ref("IngestSummary")),
                (*BODY, (400, "invalid_payload", "the payload cannot be stored as an event")),
                params=[_param("agent", "path", "the agent's name, e.g. `claude-code`")],
                body=_body({"type": "object"}, "the hook's JSON payload as the agent sends it"), stores=True),
        },
        "/v1/sessions": {
            "get": Op(
                "list_sessions", "sessions", "List sessions, most recently updated first",
                _json(200, "a page of sessions", _page("Session")), (BAD_PARAM,),
                params=[
                    _query("status", "display statuses, comma-separated or repeated", _enum(Status)),
                    _query("project", "only this project id"),
                    _query("agent", "only this agent"),
                    _query("active", "only sessions that have not terminated", FLAG),
                    *_list_params(),
                ]),
            "post": Op(
                "spawn_session", "control", "Spawn an agent in a new tmux session",
                _json(201, "the new session, plus `tmux_session`", _session_with("", tmux_session={"type": "string"})),
                (*BODY, BAD_PARAM, (400, "invalid_body", "the body is not a JSON object"),
                 (400, "command_not_found", "the command is not found on the daemon's `PATH` (nothing was created)"),
                 (409, "worktree_failed", "`git worktree add` failed"),
                 (422, "spawn_failed", "the agent ended at once; the message has its last output, and the "
                  "session stays, `exited`, with the reason in `error`"), RUNTIME_FAILED),
                description="Runs `command` (one argument through the shell, several as they are) in a detached "
                "tmux session `aod-<id>` with `AOD_SESSION_ID`, `AOD_DATA_DIR` and `AOD_SOCKET` set. `worktree` "
                "first adds a git worktree on a new branch `aod/<name or id>`.",
                body=_body(_input("project:s agent:s worktree:b name:s", required=("project", "command"),
                                  command=_array({"type": "string"})),
                           "`project` (an absolute path) and `command` are required"),
                stores=True),
        },
        "/v1/sessions/{id}": {
            "get": Op("get_session", "sessions", "One session with its PRs, trackers, escalations and latest events",
                      _json(200, "the session", _ref("SessionDetail")), (_not_found("session"),),
                      params=[_path_id("session")]),
        },
        "/v1/sessions/{id}/events": {
            "get": Op("session_events", "events", "A session's events, newest first",
                      _json(200, "a page of events", _page("EventSummary")), (BAD_PARAM, _not_found("session")),
                      params=[_path_id("session"), *_event_params()]),
        },
        "/v1/sessions/{id}/send": {
            "post": Op(
                "send_message", "control", "Type a message into the agent's tmux pane",
                _json(200, "typed", _object("sent:b session_id:s chars:i")),
                (*BODY, BAD_PARAM, (400, "invalid_body", "the body is not a JSON object"), _not_found("session"),
                 (409, "session_ended", "the session has ended"),
                 (409, "waiting_input", "the agent waits for an answer (send with `force` to type anyway)"),
                 (409, "no_runtime", "the session does not run in a tmux pane aod knows of"), RUNTIME_FAILED),
                params=[_path_id("session")],
                body=_body(_input("message:s force:b", required=("message",)), "`message` is required; `force` defaults to false")),
        },
        "/v1/sessions/{id}/kill": {
            "post": Op(
                "kill_session", "control", "End the agent's runtime; the session becomes `killed`",
                _json(200, "the session, plus `runtime_ended` (whether anything was still running)",
                      _session_with("", runtime_ended={"type": "boolean"})),
                (_not_found("session"), (409, "session_ended", "the session has already ended otherwise"),
                 RUNTIME_FAILED),
                description="Killing a killed session is a no-op (`runtime_ended` false).",
                params=[_path_id("session")], stores=True),
        },
        "/v1/sessions/{id}/pr": {
            "post": Op(
                "post_pr", "pull requests", "Record a PR observation, as the SCM observer does",
                _json(200, "the session's new status and the stored PR",
                      _object("", session=_object("id:s status:s"), pr=_ref("Pr"))),
                (*BODY, (400, "invalid_observation", "the observation does not have the documented shape"),
                 _not_found("session")),
                params=[_path_id("session")], body=_body(_ref("PrObservation"), "the observation"), stores=True),
        },
        "/v1/events/{id}": {
            "get": Op("get_event", "events", "One event with its payload",
                      _json(200, "the event", _ref("Event")), (_not_found("event"),),
                      params=[_param("id", "path", "the event id", {"type": "integer", "minimum": 1})]),
        },
        "/v1/projects": {
            "get": Op("list_projects", "sessions", "Every project, most recently active first",
                      _json(200, "all projects (`next_cursor` is always null)", _page("Project")), ()),
        },
        "/v1/escalations": {
            "get": Op("list_escalations", "escalations", "Escalations, newest first, each with its deliveries",
                      _json(200, "a page of escalations", _page("Escalation")),
                      (BAD_PARAM, _not_found("session (the `session` filter names none)")),
                      params=[
                         _query("open", "`1`: only those nobody has acknowledged", YES_NO),
                         _query("session", "only this session's escalations"),
                         _query("priority", "priorities, comma-separated or repeated", _enum(PRIORITIES)),
                         *_list_params(),
                      ]),
        },
        "/v1/escalations/{id}/ack": {
            "post": Op(
                "ack", "escalations", "Acknowledge an escalation; its undelivered pages are dropped",
                _json(200, "the escalation with its deliveries (idempotent: a second ack keeps the first time)",
                      _ref("Escalation")),
                (BAD_PARAM, _not_found("escalation")), params=[_path_id("escalation")], stores=True),
        },
        "/v1/stream": {
            "get": Op(
                "stream", "stream", "The live change stream (server-sent events)",
                {"200": {"description": "`text/event-stream`: see docs/api.md, \"The live stream\"",
                         "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
                (BAD_PARAM, NOT_READY),
                description="Every change after the cursor exactly once, in seq order, then live. Frames: "
                "`id: <epoch>:<seq>`, `event: <entity>`, `data:` a Change. A cursor that can no longer be "
                "served gets `event: reset` with `{\"head\"}`.",
                params=[
                    _param("Last-Event-ID", "header", "resume after this cursor (`<epoch>:<seq>`); wins over `after`"),
                    _query("after", "resume after this cursor, `<epoch>:<seq>` or a bare seq"),
                    _query("session", "only changes of this session"),
                    _query("entities", f"comma-separated subset of {', '.join(ENTITIES)}"),
                ]),
        },
        "/v1/search": {
            "get": Op(
                "search_events", "look back", "Full-text search over the stored events, newest first",
                _json(200, "a page of hits", _page("SearchHit")),
                (BAD_PARAM, (400, "invalid_query", "`q` is no valid FTS5 query; the message has SQLite's reason")),
                description="Searches prompts, tool commands, file paths, patterns and URLs, error messages "
                "and notification texts (an FTS5 index that a background job fills in batches, about half "
                "a second after the events were stored; retention removes pruned events from it in the "
                "same transaction). `q` is FTS5 query syntax: words "
                "(all must match), `\"a phrase\"`, `prefix*`, `OR`, `NOT`, `NEAR(a b)`. Hits come newest "
                "first; `snippet` is HTML-escaped text with each match in `<mark>…</mark>`.",
                params=[_query("q", "the FTS5 query (required, at most 1000 characters)"),
                        _query("session", "only this session's events"),
                        _query("project", "only events of this project id's sessions"),
                        _query("kind", "hook event names, comma-separated or repeated"),
                        _query("since", "only events that occurred at or after this RFC 3339 instant",
                               {"type": "string", "format": "date-time"}),
                        _query("until", "only events that occurred before this RFC 3339 instant",
                               {"type": "string", "format": "date-time"}),
                        *_list_params()]),
        },
        "/v1/sessions/{id}/replay": {
            "get": Op(
                "replay_session", "look back", "A session's events again, with their original timing (server-sent events)",
                {"200": {"description": "`text/event-stream`: see docs/api.md, \"Replay\"",
                         "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
                (BAD_PARAM, _not_found("session")),
                description="The session's events in commit order as `event: event` frames (the body of "
                "`/v1/stream`'s event frames, `at` the time the event occurred, plus `replay`: `gap_ms`, the "
                "original gap to the event before, and `shortened`), `id:` the event id. Each waits for its "
                "original gap divided by `speed`; a gap longer than `max_gap` waits `max_gap / speed` and is "
                "marked `shortened`. The last frame is `event: end` with `{\"events\", \"last_id\"}`. A "
                "reconnect with `Last-Event-ID` continues after that event, nothing repeated.",
                params=[_path_id("session"),
                        _query("speed", "how many times faster than it happened, 0.1 to 100 (default 1)",
                               {"type": "number", "minimum": 0.1, "maximum": 100, "default": 1}),
                        _query("from", "start at this event id, or at the first event that occurred at or after "
                               "this RFC 3339 instant"),
                        _query("max_gap", "the longest wait, in seconds of the original time, 0 to 3600 (default 10)",
                               {"type": "number", "minimum": 0, "maximum": 3600, "default": 10}),
                        _param("Last-Event-ID", "header", "resume after this event id; wins over `from`")]),
        },
        "/v1/sessions/{id}/export": {
            "get": Op(
                "export_session", "look back", "One session written out whole: JSONL or Markdown",
                {"200": {"description": "`application/x-ndjson` (jsonl) or `text/markdown` (md), streamed",
                         "content": {"application/x-ndjson": {"schema": {"type": "string"}},
                                     "text/markdown": {"schema": {"type": "string"}}}}},
                (BAD_PARAM, _not_found("session")),
                description="`jsonl`: every event of the session in id order, one JSON object per line: the "
                "event's columns and its `payload`; each line is also a valid envelope for `POST /v1/events` "
                "(`uid`, `agent`, `occurred_at`, `payload`, and `session`, the session id again), so an export re-ingests "
                "as it is, into the same session. `md`: the "
                "session's facts, PRs and checks, escalations, then its prompts, tool calls with durations "
                "and results, errors and notifications. Streamed page by page in constant memory.",
                params=[_path_id("session"),
                        _query("format", "`jsonl` (default) or `md`", _enum(("jsonl", "md")))]),
        },
        "/v1/status": {
            "get": Op("status", "operations", "What the daemon holds and how it is",
                      _json(200, "the status", _ref("Status")), ()),
        },
        "/v1/admin/prune": {
            "post": Op("prune_now", "operations", "Apply retention now",
                       _json(200, "what was deleted (or, with `dry_run`, would be)", _ref("PruneReport")), (),
                       params=[_query("dry_run", "only report what would be deleted", FLAG)], stores=True),
        },
        "/v1/admin/check": {
            "get": Op("check_database", "operations", "Verify the database (what `aod db check --json` prints)",
                      _json(200, "the report; `ok` is false when a check failed", _ref("CheckReport")), (BAD_PARAM,),
                      description="The read-only checks run on a reader; the trigger round trip runs in a "
                      "rolled-back savepoint of the writer (not run while the disk is full or read-only).",
                      params=[_query("full", "`1` adds `PRAGMA integrity_check` (slow on a large file)",
                                    YES_NO)]),
        },
        "/v1/stats": {
            "get": Op("get_stats", "events", "Sessions by status, events per minute, and per tool count, failures, p50/p95",
                      _json(200, "the stats of the window", _ref("Stats")),
                      ((*BAD_PARAM[:2], "`since`/`until` are no RFC 3339 instant, `since` is not before `until`, or "
                        "the window is longer than 7 days"), _not_found("session or project")),
                      description="The window is `since` (inclusive) to `until` (exclusive): `until` defaults to "
                      "now, `since` to an hour before `until`. `events_per_minute` has one entry for every minute "
                      "from the one holding `since` to the one holding the window's last instant, zeros "
                      "included, oldest first; `tools` is most used first.",
                      params=[_query("since", "window start, RFC 3339 (default: an hour before `until`)",
                                     {"type": "string", "format": "date-time"}),
                              _query("until", "window end, RFC 3339, exclusive (default: now)",
                                     {"type": "string", "format": "date-time"}),
                              _query("project", "only this project id's sessions and their events"),
                              _query("session", "only this session and its events")]),
        },
        "/v1/usage": {
            "get": Op("get_usage", "usage", "Tokens and cost grouped by day, month, model, project, session or 5-hour block",
                      _json(200, "the report", _ref("Usage")),
                      ((*BAD_PARAM[:2], "`group_by` is none of the groupings, `since`/`until` are neither a date "
                        "nor an RFC 3339 instant, or `since` is not before `until`"),),
                      description="From the transcripts of the sessions aod saw (tailed live) and of `aod import "
                      "claude`. Days and months are the daemon's local calendar, as ccusage reports them; 5-hour "
                      "blocks are ccusage's (a block starts at the hour of its first message; a message more than "
                      "5 h after its start or after the previous message starts the next one). Items are in key "
                      "order.",
                      params=[_query("group_by", "day (default), month, model, project, session or block",
                                     _enum(("day", "month", "model", "project", "session", "block"))),
                              _query("since", "window start: RFC 3339, or a date (`YYYY-MM-DD` / `YYYYMMDD`, the "
                                     "daemon's local midnight); default: the first message"),
                              _query("until", "window end, exclusive: RFC 3339, or a date (the whole day "
                                     "included); default: no end")]),
        },
        "/v1/import/claude": {
            "post": Op("import_claude", "usage", "Store what `aod import claude` read from Claude Code's transcripts",
                       _json(200, "what was stored", _object(
                           "sessions:i", "`matched`: the agent session ids whose aod session its hooks reported "
                           "(their events were left out, their usage taken); `events`: what ingest made of the "
                           "rest (as `POST /v1/events` answers); `usage`: new usage rows and ones already stored.",
                           matched=_array({"type": "string"}), events=_ref("IngestSummary"),
                           usage=_object("accepted:i duplicates:i"))),
                       (*BODY, (400, "invalid_body", "the body is not a JSON object, `sessions` is no array, a "
                                "session has no `agent_session_id`, or a usage item is malformed (the message "
                                "names it)")),
                       description="Safe while sessions run: events go through ingest like hook events, with "
                       "uids derived from the transcript (so importing again adds nothing); usage items are "
                       "priced by the daemon and keyed by message id + request id like the live tailer's rows.",
                       body=_body(_input(
                           "", "One entry per agent session (a long one may come in several).",
                           required=("sessions",), sessions=_array(_input(
                               "agent_session_id:s branch:s?", "Claude Code's session id, the git branch its "
                               "transcript names last (set on a session the import created and that has none), "
                               "its envelopes (`POST /v1/events`) "
                               "and its usage items: `message_id`, `request_id`, `agent_session_id`, `model`, "
                               "`input_tokens`, `output_tokens`, `cache_creation_input_tokens`, "
                               "`cache_creation_1h_tokens`, `cache_read_input_tokens`, `occurred_at`, "
                               "`is_sidechain`.", required=("agent_session_id",),
                               events=_array(_ref("Envelope")), usage=_array({"type": "object"})))),
                           "the sessions read"), stores=True),
        },
        "/v1/openapi.json": {
            "get": Op("openapi_json", "operations", "This document",
                      _json(200, "the OpenAPI document", {"type": "object"}), ()),
        },
        "/healthz": {
            "get": Op("healthz", "operations", "Liveness: the process answers (no token needed over TCP)",
                      _json(200, "alive", _object("ok:b")), (), public=True),
        },
        "/readyz": {
            "get": Op("readyz", "operations", "Readiness: started, and the database takes writes",
                      _json(200, "ready", _object("ready:b")),
                      (NOT_READY, (503, "storage_full", "the disk is full (ingest answers 507)"),
                       (503, "storage_readonly", "the database is read-only (ingest answers 507)"))),
        },
        "/metrics": {
            "get": Op("scrape", "operations", "Prometheus metrics (text format 0.0.4), every series prefixed `aod_`",
                      {"200": {"description": "the exposition text (`Content-Type: text/plain; version=0.0.4`)",
                               "content": {"text/plain": {"schema": {"type": "string"}}}}}, (),
                      description="Ingest `aod_ingest_events_total{result=\"accepted\"|\"duplicate\"|"
                      "\"rejected\"}` and `aod_ingest_rejected_by_reason_total{reason}` (the field at fault); "
                      "`aod_writer_batch_size` and `aod_writer_commit_seconds` histograms, "
                      "`aod_writer_queue_depth`; `aod_stream_clients`, `aod_stream_cuts_total`, "
                      "`aod_stream_poller_lag_rows`; `aod_reaper_probes_total{verdict}`, "
                      "`aod_reaper_tick_seconds`; `aod_nudges{state}`, `aod_deliveries{state}`, "
                      "`aod_escalations_open{priority}`, `aod_sessions_live`; `aod_spool_backlog_files`, "
                      "`aod_spool_rejected_files`; `aod_config_errors`; `aod_storage_state{state}`; "
                      "`aod_forward_enabled`, `aod_forward_circuit{state}` (closed, open, half_open), "
                      "`aod_forward_lag_rows`, `aod_forward_lag_seconds`, `aod_forward_rows_total`, "
                      "`aod_forward_failures_total` ([forward.postgres]). "
                      "Counters count since the daemon started; the database counts are read at each scrape."),
        },
        **_dashboard_paths(),
        "/login": {
            "get": Op(
                "login", "operations", "Browser login over TCP: sets the `aod_session` cookie",
                {"302": {"description": "the token matched: `Set-Cookie: aod_session=…` and a redirect to `/`"}},
                ((401, "unauthorized", "the token is missing or wrong"),),
                description="Handled by the TCP guard (aod/api/security.py) before routing, so it exists "
                "only over TCP; on the Unix socket it is a 404.",
                params=[_query("token", "the token of `<data_dir>/token`")], public=True),
        },
    }


def _dashboard_paths() -> dict[str, dict[str, Op]]:
    page = {"200": {"description": "index.html (the app's router reads the path); `ETag`, `Cache-Control: "
                    "no-cache`, a strict `Content-Security-Policy`; 304 when `If-None-Match` has the ETag",
                    "content": {"text/html": {"schema": {"type": "string"}}}}}
    pages: dict[str, dict[str, Op]] = {
        "/": {"get": Op("dashboard", "dashboard", "The dashboard's home: the attention board", page, ())},
        "/sessions/{id}": {"get": Op("dashboard_session", "dashboard", "The dashboard's session page (a deep link)",
                                     page, (), params=[_path_id("session")])},
        "/feed": {"get": Op("dashboard_feed", "dashboard", "The dashboard's live feed", page, ())},
        "/stats": {"get": Op("dashboard_stats", "dashboard", "The dashboard's stats page", page, ())},
    }
    asset = {"200": {"description": "the file (JavaScript module, CSS, SVG), with the same headers as the page",
                     "content": {"*/*": {"schema": {"type": "string"}}}}}
    pages["/assets/{name}"] = {"get": Op(
        "dashboard_asset", "dashboard", "One of the dashboard's files", asset, (_not_found("dashboard asset"),),
        params=[_param("name", "path", "a file name in aod/dashboard/")])}
    return pages


@cache
def document() -> Json:
    """The whole document; built once (it depends only on the code)."""
    spec = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "aod",
            "version": __version__,
            "description": "The local daemon that remembers every coding-agent session. The same API is "
            "served on the Unix socket (no credentials: the socket is 0600) and on loopback TCP "
            "(`server.tcp`), where every request but `/healthz` and `/login` needs the token.",
        },
        "servers": [{"url": "http://127.0.0.1:8765", "description": "loopback TCP, the default `server.tcp`"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": {path: {method: op.render(method) for method, op in ops.items()} for path, ops in _paths().items()},
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "the content of `<data_dir>/token`"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "aod_session",
                           "description": "set by `GET /login?token=…`"},
            },
        },
    }
    return spec
