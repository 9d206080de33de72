"""A session as Markdown for people (`aod export ID --format md`): a header with its facts, PRs and
their checks, and escalations, then its events in order, each rendered alone (so an export of
100k events holds one page of them at a time): prompts, tool calls with their durations and
results, errors, notifications, stops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

RESULT_CHARS = 400  # a tool result is cut here: the JSONL export has it whole
_FENCE = "```"


def header(session: Mapping[str, Any], prs: Sequence[Mapping[str, Any]], escalations: Sequence[Mapping[str, Any]]) -> str:
    lines = [f"# Session {session['id']}", ""]
    for label, key in (("Agent", "agent"), ("Project", "project_id"), ("Branch", "branch"), ("Title", "title"),
                       ("Status", "status"), ("Started", "created_at"), ("Ended", "ended_at"),
                       ("Ended because", "termination_reason"), ("Workspace", "workspace_path")):
        if session.get(key):
            lines.append(f"- **{label}:** {_inline(session[key])}")
    if prs:
        lines += ["", "## Pull requests", ""]
        for pr in prs:
            draft = " (draft)" if pr.get("draft") else ""
            lines.append(f"- [#{pr.get('number')} {_inline(pr.get('title') or '')}]({pr['url']}): "
                         f"{pr.get('state') or 'unknown'}{draft}, CI {pr.get('ci_state') or 'unknown'}, "
                         f"review {pr.get('review_decision') or 'none'}")
            for check in pr.get("checks") or []:
                lines.append(f"  - check {_inline(check['name'])}: {check['status']} (commit {str(check['commit_sha'])[:12]})")
    if escalations:
        lines += ["", "## Escalations", ""]
        for esc in escalations:
            acked = f", acknowledged {esc['acked_at']}" if esc.get("acked_at") else ", not acknowledged"
            lines.append(f"- {esc['created_at']} **{esc['priority']}** {esc['reaction']}: {_inline(esc['message'])}{acked}")
    lines += ["", "## Events", ""]
    return "\n".join(lines) + "\n"


def event(row: Mapping[str, Any]) -> str:
    """One event as a Markdown block; "" for what a reader does not need (a PreToolUse, whose
    call is shown with its result at the PostToolUse)."""
    kind = row["kind"]
    payload = _payload(row.get("payload"))
    at = row["occurred_at"]
    if kind == "UserPromptSubmit":
        return f"### {at} Prompt\n\n{_quote(_text(payload.get('prompt')))}\n\n"
    if kind in ("PostToolUse", "PostToolUseFailure"):
        return _tool_call(row, payload)
    if kind == "PreToolUse":
        return ""
    if kind == "Notification":
        return f"- {at} Notification: {_inline(_text(payload.get('message')))}\n\n"
    if kind in ("Stop", "SubagentStop", "StopFailure", "SessionEnd", "SessionStart"):
        why = payload.get("reason") or payload.get("source") or payload.get("error")
        return f"- {at} {kind}{': ' + _inline(_text(why)) if why else ''}\n\n"
    return f"- {at} {kind}\n\n"


def _tool_call(row: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    tool = row.get("tool_name") or "tool"
    raw_input = payload.get("tool_input")
    tool_input: dict[str, Any] = raw_input if isinstance(raw_input, dict) else {}
    what = next((tool_input[k] for k in ("command", "file_path", "notebook_path", "path", "pattern", "url", "query")
                 if isinstance(tool_input.get(k), str)), "")
    failed = row["kind"] == "PostToolUseFailure" or row.get("ok") is False
    took = f", {row['duration_ms'] / 1000:.1f} s" if isinstance(row.get("duration_ms"), int) else ""
    head = f"### {row['occurred_at']} {tool}{' failed' if failed else ''}{took}\n\n"
    body = f"{_FENCE}\n{_fenced(what)}\n{_FENCE}\n\n" if what else ""
    result = payload.get("error") if failed else payload.get("tool_response")
    if result not in (None, "", {}):
        body += f"{'Error' if failed else 'Result'}:\n\n{_FENCE}\n{_fenced(_cut(_text(result)))}\n{_FENCE}\n\n"
    return head + body


def _payload(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = orjson.loads(raw) if isinstance(raw, (str, bytes)) else None
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("stdout"), str):  # Bash's result: its output is the result
        return "\n".join(str(value[k]).rstrip("\n") for k in ("stdout", "stderr") if value.get(k))
    return orjson.dumps(value).decode()


def _cut(text: str) -> str:
    return text if len(text) <= RESULT_CHARS else text[:RESULT_CHARS] + f"… ({len(text) - RESULT_CHARS} more characters)"


def _fenced(text: str) -> str:
    # A fence inside the text would end the block early: break it with a zero-width space.
    return text.replace(_FENCE, "`\u200b``")


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in (text or "(empty)").splitlines()) or "> (empty)"


def _inline(value: Any) -> str:
    return " ".join(str(value).split())
