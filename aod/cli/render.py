"""Readable text from the daemon's API JSON. Pure functions: no I/O, `now` and width are inputs.

Every renderer tolerates missing keys, because the CLI may be newer or older than the daemon it
talks to and a crash on a missing field would hide everything else the daemon did send.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

__all__ = [
    "STATUS_ORDER",
    "Col",
    "change_line",
    "clock_time",
    "events_table",
    "format_bytes",
    "format_duration_ms",
    "format_uptime",
    "relative_time",
    "session_detail",
    "sessions_table",
    "status_report",
    "table",
]

ELLIPSIS = "…"
GAP = "  "
# The display statuses of DESIGN §4, most urgent first: `aod status` lists them in this order so
# the ones that need the human come first.
STATUS_ORDER = (
    "needs_input", "ci_failed", "changes_requested", "stuck", "draft", "review_pending", "pr_open",
    "approved", "mergeable", "working", "idle", "merged", "exited", "killed", "lost",
)

Row = Mapping[str, Any]
Getter = str | Callable[[Row], Any]


@dataclass(frozen=True)
class Col:
    """A column. `shrink=False` keeps a value whole (an id the user will copy into `aod show`)."""

    header: str
    get: Getter
    align: str = "left"
    shrink: bool = True


ColumnSpec = Col | tuple[str, Getter]


# --- cells -----------------------------------------------------------------------------------


def _clean(value: Any) -> str:
    if value is None or value == "":
        return "-"
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text
    # Titles come from agent prompts: a newline would break the row and an escape sequence
    # would reach the user's terminal, so every control character becomes a space.
    return "".join(" " if (ch < " " or "\x7f" <= ch < "\xa0") else ch for ch in text)


def _char_width(ch: str) -> int:
    import unicodedata  # only for non-ASCII text; most tables never need it

    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _width(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def _fit(text: str, width: int) -> str:
    """`text` cut to `width` terminal cells, ending with an ellipsis when something was cut."""
    if _width(text) <= width:
        return text
    if width <= 0:
        return ""
    if text.isascii():
        return text[: width - 1] + ELLIPSIS
    out, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + ELLIPSIS


def _pad(text: str, width: int, align: str) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if align == "right" else text + fill


def _col(spec: ColumnSpec) -> Col:
    return spec if isinstance(spec, Col) else Col(spec[0], spec[1])


def _value(row: Row, get: Getter) -> Any:
    return get(row) if callable(get) else row.get(get)


def _widths(natural: list[int], floors: list[int], budget: int) -> list[int]:
    """Shrink the widest shrinkable columns first (a common cap), never below their floors."""
    if sum(natural) <= budget:
        return natural

    def total(cap: int) -> int:
        return sum(min(n, max(cap, f)) for n, f in zip(natural, floors, strict=True))

    lo, hi = 0, max(natural)
    # Largest cap whose total fits; if even cap 0 overflows (floors alone too wide), use floors.
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if total(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    widths = [min(n, max(lo, f)) for n, f in zip(natural, floors, strict=True)]
    # Hand the cells lost to integer rounding back to the leftmost columns still cut short.
    spare = budget - sum(widths)
    for i, (w, n) in enumerate(zip(widths, natural, strict=True)):
        if spare <= 0:
            break
        if w < n:
            extra = min(spare, n - w)
            widths[i] += extra
            spare -= extra
    return widths


def table(rows: Sequence[Row], columns: Sequence[ColumnSpec], width: int | None = None) -> str:
    """Aligned columns under a header row, cut with an ellipsis to fit `width` cells.

    `width` defaults to the terminal's. Without rows, the header alone (the caller decides
    whether "nothing" deserves a sentence instead).
    """
    if width is None:
        width = shutil.get_terminal_size().columns
    cols = [_col(c) for c in columns]
    cells = [[_clean(_value(row, c.get)) for c in cols] for row in rows]
    natural = [max([_width(c.header), *(_width(line[i]) for line in cells)]) for i, c in enumerate(cols)]
    # A shrinkable column keeps at least its header's width (and never less than "x…").
    floors = [n if not c.shrink else min(n, max(_width(c.header), 2)) for c, n in zip(cols, natural, strict=True)]
    budget = max(0, width - len(GAP) * (len(cols) - 1))
    widths = _widths(natural, floors, budget)
    lines = []
    for line in [[c.header for c in cols], *cells]:
        parts = [
            _pad(_fit(text, w), w, c.align) for text, w, c in zip(line, widths, cols, strict=True)
        ]
        lines.append(GAP.join(parts).rstrip())
    return "\n".join(lines)


# --- times, sizes, durations ------------------------------------------------------------------


def _parse_time(iso: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return None
    # The API speaks UTC; a timestamp without an offset is UTC, not the viewer's local time.
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _span(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def relative_time(iso: str | None, now: datetime) -> str:
    """"12s ago", "5m ago", "3h ago", "2d ago"; "-" for no time; the raw text if unparsable."""
    if not iso:
        return "-"
    t = _parse_time(iso)
    if t is None:
        return iso
    seconds = int((_aware(now) - t).total_seconds())
    # A timestamp slightly ahead of this machine's clock is skew, not the future.
    if seconds < 0:
        return "0s ago" if seconds > -5 else f"in {_span(-seconds)}"
    return f"{_span(seconds)} ago"


def clock_time(iso: str | None, now: datetime, tz: tzinfo | None = None) -> str:
    """Wall-clock time in `tz` (default local): "10:00:05" today, "11-21 10:00:05" this year."""
    if not iso:
        return "-"
    t = _parse_time(iso)
    if t is None:
        return iso
    local, today = (t.astimezone(tz), _aware(now).astimezone(tz))
    if local.date() == today.date():
        return local.strftime("%H:%M:%S")
    if local.year == today.year:
        return local.strftime("%m-%d %H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def format_duration_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    minutes, seconds = divmod(int(ms // 1000), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def format_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _yes_no(value: Any) -> str:
    # The API answers true/false; a daemon from before that answered 1/0, which reads the same here.
    if value is None:
        return "-"
    return "yes" if value else "no"


def _alive(value: Any) -> str:
    # null is a fact of its own here (no probe has answered yet), not a missing field.
    return "unknown" if value is None else _yes_no(value)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


# --- tables -----------------------------------------------------------------------------------


def sessions_table(items: Sequence[Row], now: datetime | None = None, width: int | None = None) -> str:
    if not items:
        return "no sessions"
    at = _now(now)
    columns: list[ColumnSpec] = [
        Col("ID", "id", shrink=False),
        Col("STATUS", "status", shrink=False),
        ("ACTIVITY", "activity"),
        ("AGENT", "agent"),
        ("PROJECT", "project_id"),
        ("BRANCH", "branch"),
        Col("LAST EVENT", lambda s: relative_time(s.get("last_event_at"), at), shrink=False),
        ("TITLE", "title"),
    ]
    # Only when a session has one: a column of dashes would cost every listing its width.
    if any(s.get("error") for s in items):
        columns.insert(3, ("ERROR", lambda s: _last_error(s, at)))
    return table(items, columns, width)


def _last_error(s: Row, now: datetime) -> str:
    """"rate_limit (3m ago)": a StopFailure's error stays until the agent's next change of activity."""
    error = s.get("error")
    if not error:
        return "-"
    return f"{_clean(error)} ({relative_time(s['error_at'], now)})" if s.get("error_at") else _clean(error)


def _event_columns(now: datetime, tz: tzinfo | None, with_session: bool) -> list[ColumnSpec]:
    cols: list[ColumnSpec] = [
        Col("ID", "id", align="right", shrink=False),
        Col("TIME", lambda e: clock_time(e.get("occurred_at"), now, tz), shrink=False),
    ]
    if with_session:
        cols.append(Col("SESSION", "session_id"))
    cols += [
        ("KIND", "kind"),
        ("TOOL", "tool_name"),
        Col("DURATION", lambda e: format_duration_ms(e.get("duration_ms")), align="right", shrink=False),
        Col("OK", lambda e: _yes_no(e.get("ok")), shrink=False),
    ]
    return cols


def events_table(
    items: Sequence[Row], now: datetime | None = None, width: int | None = None, tz: tzinfo | None = None
) -> str:
    if not items:
        return "no events"
    return table(items, _event_columns(_now(now), tz, with_session=True), width)


# --- status -----------------------------------------------------------------------------------


def _by_status(counts: Mapping[str, int]) -> str:
    known = [s for s in STATUS_ORDER if counts.get(s)]
    others = sorted(s for s in counts if s not in STATUS_ORDER and counts[s])
    return ", ".join(f"{s} {counts[s]}" for s in [*known, *others]) or "none"


def _plural(n: Any, word: str) -> str:
    if not isinstance(n, int):
        return f"? {word}s"
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _fields(pairs: Sequence[tuple[str, str]]) -> list[str]:
    pad = max(len(label) for label, _ in pairs)
    return [f"{label:<{pad}}  {value}" for label, value in pairs]


def status_report(status: Mapping[str, Any]) -> str:
    db = status.get("db") or {}
    counts = status.get("counts") or {}
    spool = status.get("spool") or {}
    config = status.get("config") or {}
    head = f"aod {status.get('version', '?')} running, pid {status.get('pid', '?')}, up {format_uptime(status.get('uptime_s'))}"
    db_bits = [format_bytes(db.get("size_bytes")), f"schema {db.get('schema_version', '?')}"]
    if db.get("epoch"):
        db_bits.append(f"epoch {db['epoch']}")
    backlog = spool.get("backlog")
    errors = list(config.get("errors") or [])
    pairs = [
        ("socket", _clean(status.get("socket"))),
        ("tcp", status.get("tcp") or "off"),
        ("database", f"{_clean(db.get('path'))} ({', '.join(db_bits)})"),
        (
            "counts",
            ", ".join([
                _plural(counts.get("projects"), "project"),
                _plural(counts.get("sessions"), "session"),
                _plural(counts.get("events"), "event"),
                _plural(counts.get("dead_letters"), "dead letter"),
            ]),
        ),
        ("sessions", _by_status(status.get("sessions_by_status") or {})),
        ("pages", _open_escalations(status.get("escalations"))),
        ("notify", _notify(status)),
        ("storage", _storage(status.get("storage"))),
        ("jobs", _jobs(status.get("jobs"))),
        ("spool", f"{_clean(spool.get('path'))} ({'?' if backlog is None else backlog} waiting)"),
        (
            "config",
            f"{config.get('path') or '(none: defaults)'}"
            + (f" ({_plural(len(errors), 'error')})" if errors else " (ok)"),
        ),
    ]
    lines = [head, *_fields(pairs)]
    # The daemon keeps the last good config when the file is invalid: say why, or the user
    # wonders why an edit had no effect.
    lines += [f"  - {_clean(e)}" for e in errors]
    return "\n".join(lines)


def _open_escalations(escalations: Mapping[str, Any] | None) -> str:
    if not escalations:
        return "-"  # a daemon from before escalations were counted
    by_priority = escalations.get("by_priority") or {}
    if not escalations.get("open"):
        return "no open escalations"
    counts = ", ".join(f"{_clean(p)} {n}" for p, n in by_priority.items() if n)
    return f"{_plural(escalations['open'], 'open escalation')} ({counts}): aod escalations --open"


def _notify(status: Mapping[str, Any]) -> str:
    """Which notifier gets which priority, and loudly when escalations reach no one."""
    notifiers, routing = status.get("notifiers"), status.get("routing")
    if notifiers is None or routing is None:
        return "-"
    if not any(routing.values()):
        return ("NO ONE: escalations are only recorded; install notify-send, or set [notifiers] and"
                " [routing] in the config")
    routed = [f"{_clean(name)} ({', '.join(p for p, names in routing.items() if name in names) or 'unrouted'})"
              for name in notifiers]
    nowhere = [p for p, names in routing.items() if not names]
    return "; ".join([", ".join(routed), *([f"{', '.join(nowhere)}: no one"] if nowhere else [])])


def _jobs(jobs: Mapping[str, Any] | None) -> str:
    if not jobs:
        return "-"  # a daemon from before its jobs were reported
    failing = [(name, job) for name, job in jobs.items() if job.get("state") == "backoff"]
    if not failing:
        return f"{len(jobs)} ok"
    # Loud and named: a failing job (the reaper, the stream) goes on failing quietly otherwise.
    return "; ".join(f"{_clean(name)} FAILING ({_plural(job.get('restarts'), 'restart')}, next try "
                     f"{_clean(job.get('next_due'))}): {_clean(job.get('last_error'))}" for name, job in failing)


def _storage(storage: Mapping[str, Any] | None) -> str:
    if not storage:
        return "-"  # a daemon from before storage health was reported
    free = storage.get("free_bytes")
    room = "" if free is None else f", {format_bytes(free)} free"
    state = storage.get("state")
    if state == "ok":
        return f"ok{room}"
    # Loud, and saying what it means for new events: the user may only ever look here.
    name = {"full": "FULL", "readonly": "READ-ONLY"}.get(str(state), _clean(state))
    return f"{name} since {_clean(storage.get('since'))}{room}: ingest answers 507 ({_clean(storage.get('last_error'))})"


# --- one session ------------------------------------------------------------------------------


def _when(iso: str | None, now: datetime) -> str:
    return "-" if not iso else f"{iso} ({relative_time(iso, now)})"


def _session_header(s: Row, now: datetime) -> list[str]:
    runtime = " ".join(str(x) for x in (s.get("runtime"), s.get("runtime_handle")) if x)
    if s.get("pid"):
        runtime = f"{runtime} pid {s['pid']}".strip()
    agent = _clean(s.get("agent"))
    if s.get("agent_session_id"):
        agent += f" (agent session {s['agent_session_id']})"
    pairs = [
        ("session", f"{_clean(s.get('id'))}  {_clean(s.get('status'))}"),
        ("title", _clean(s.get("title"))),
        ("project", _clean(s.get("project_id"))),
        ("agent", agent),
        ("activity", f"{_clean(s.get('activity'))}, alive {_alive(s.get('is_alive'))}"),
        *([("error", _last_error(s, now))] if s.get("error") else []),
        ("branch", _clean(s.get("branch"))),
        ("workspace", _clean(s.get("workspace_path"))),
        ("runtime", runtime or "-"),
        ("created", _when(s.get("created_at"), now)),
        ("updated", _when(s.get("updated_at"), now)),
        ("last event", _when(s.get("last_event_at"), now)),
    ]
    if s.get("ended_at") or s.get("termination_reason"):
        pairs.append(("ended", f"{_when(s.get('ended_at'), now)}, {_clean(s.get('termination_reason'))}"))
    return _fields(pairs)


def _pr_lines(pr: Row) -> list[str]:
    bits = [_clean(pr.get("state"))]
    if pr.get("draft"):
        bits.append("draft")
    if pr.get("review_decision"):
        bits.append(f"review {pr['review_decision']}")
    if pr.get("mergeability"):
        bits.append(str(pr["mergeability"]))
    if pr.get("ci_state"):
        bits.append(f"ci {pr['ci_state']}")
    number = f"#{pr['number']}" if pr.get("number") is not None else "#?"
    lines = [f"  {number} {_clean(pr.get('title'))}", f"    {', '.join(bits)}", f"    {_clean(pr.get('url'))}"]
    checks = pr.get("checks") or []
    if checks:
        lines.append("    checks:")
        pad = max(_width(_clean(c.get("status"))) for c in checks)
        for c in checks:
            line = f"      {_pad(_clean(c.get('status')), pad, 'left')}  {_clean(c.get('name'))}"
            if c.get("status") == "failed" and c.get("url"):
                line += f"  {c['url']}"
            lines.append(line)
    comments = pr.get("comments") or []
    if comments:
        unresolved = sum(1 for c in comments if not c.get("resolved"))
        lines.append(f"    comments: {len(comments)} ({unresolved} unresolved)")
    return lines


def _tracker_line(t: Row, now: datetime) -> str:
    bits = [f"attempts {t.get('attempts', '?')}"]
    if t.get("first_at"):
        bits.append(f"since {relative_time(t['first_at'], now)}")
    if t.get("last_at"):
        bits.append(f"last {relative_time(t['last_at'], now)}")
    if t.get("escalated_at"):
        bits.append(f"escalated {relative_time(t['escalated_at'], now)}")
    if t.get("resolved_at"):
        bits.append(f"resolved {relative_time(t['resolved_at'], now)}")
    return f"  {_clean(t.get('reaction'))}: {', '.join(bits)}"


def _usage_lines(u: Row) -> list[str]:
    """Tokens and cost from the session's transcript; subagents' share and unpriced models said apart."""
    tokens = sum(int(u.get(k) or 0) for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                               "cache_read_input_tokens"))
    cost = f"${float(u.get('cost_usd') or 0):,.2f}"
    lines = [f"  {cost} for {tokens:,} tokens in {_plural(int(u.get('messages') or 0), 'message')}"
             f" (input {int(u.get('input_tokens') or 0):,}, output {int(u.get('output_tokens') or 0):,},"
             f" cache write {int(u.get('cache_creation_input_tokens') or 0):,},"
             f" cache read {int(u.get('cache_read_input_tokens') or 0):,})"]
    if u.get("sidechain_messages"):
        lines.append(f"  subagents: ${float(u.get('sidechain_cost_usd') or 0):,.2f} in "
                     f"{_plural(int(u['sidechain_messages']), 'message')}")
    models = u.get("models") or {}
    if models:
        lines.append("  models: " + ", ".join(f"{_clean(m)} ({n})" for m, n in sorted(models.items())))
    if u.get("unpriced_messages"):
        lines.append(f"  not priced: {_plural(int(u['unpriced_messages']), 'message')} of a model with no price")
    return lines


def _escalation_line(e: Row, now: datetime) -> str:
    acked = f"acked {relative_time(e['acked_at'], now)}" if e.get("acked_at") else "NOT ACKED"
    return (
        f"  #{_clean(e.get('id'))} {_clean(e.get('priority'))} {_clean(e.get('reaction'))}"
        f" {relative_time(e.get('created_at'), now)}, {acked}: {_clean(e.get('message'))}"
    )


def session_detail(
    session: Mapping[str, Any],
    now: datetime | None = None,
    width: int | None = None,
    tz: tzinfo | None = None,
) -> str:
    """Header fields, then PRs, trackers, escalations and recent events, each only if present."""
    at = _now(now)
    blocks = ["\n".join(_session_header(session, at))]
    prs = session.get("prs") or []
    if prs:
        blocks.append("\n".join(["pull requests", *(line for pr in prs for line in _pr_lines(pr))]))
    usage = session.get("usage")
    if usage:
        blocks.append("\n".join(["usage", *_usage_lines(usage)]))
    trackers = session.get("trackers") or []
    if trackers:
        blocks.append("\n".join(["reactions", *(_tracker_line(t, at) for t in trackers)]))
    escalations = session.get("escalations") or []
    if escalations:
        blocks.append("\n".join(["escalations", *(_escalation_line(e, at) for e in escalations)]))
    events = session.get("events") or []
    if events:
        # Every event here belongs to this session: a SESSION column would only repeat the id.
        room = (width if width is not None else shutil.get_terminal_size().columns) - 2
        rows = table(events, _event_columns(at, tz, with_session=False), room)
        blocks.append("\n".join(["recent events", *(f"  {line}" for line in rows.splitlines())]))
    return "\n\n".join(blocks)


# --- the live stream (aod events --follow) ----------------------------------------------------


def _change_summary(entity: str, op: str, d: Row) -> str:
    if entity == "event":
        bits = [_clean(d.get("kind"))]
        if d.get("tool_name"):
            bits.append(_clean(d["tool_name"]))
        if d.get("duration_ms") is not None:
            bits.append(format_duration_ms(d["duration_ms"]))
        if d.get("ok") is not None and not d["ok"]:  # false (0 from an older daemon); null: not known
            bits.append("failed")
        return " ".join(bits)
    if entity == "session":
        if op == "insert":
            return f"new session ({_clean(d.get('agent'))})"
        summary = f"{_clean(d.get('status'))} (activity {_clean(d.get('activity'))})"
        return summary + (f", ended: {_clean(d['termination_reason'])}" if d.get("termination_reason") else "")
    if entity == "pr":
        number = f"#{d['number']}" if d.get("number") is not None else "#?"
        return f"PR {number} {_clean(d.get('state'))}, ci {_clean(d.get('ci_state'))}, review {_clean(d.get('review_decision'))}"
    if entity == "check":
        return f"check {_clean(d.get('name'))}: {_clean(d.get('status'))}"
    if entity == "escalation":
        acked = ", acked" if d.get("acked_at") else ""
        return f"escalation #{_clean(d.get('id'))} {_clean(d.get('priority'))}{acked}: {_clean(d.get('message'))}"
    return f"{_clean(entity)} {_clean(op)}"


def change_line(change: Mapping[str, Any], now: datetime | None = None, tz: tzinfo | None = None) -> str:
    """One stream change as one line: time, session, what changed."""
    entity = str(change.get("entity") or "?")
    data = change.get("data")
    summary = _change_summary(entity, str(change.get("op") or ""), data if isinstance(data, Mapping) else {})
    when = clock_time(change.get("at"), _now(now), tz)
    return f"{when}  {_clean(change.get('session_id'))}  {entity:<10}  {summary}"
