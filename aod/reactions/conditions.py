"""Which reaction conditions hold for a session, from its stored facts. Pure: no I/O.

Each condition carries a signature (what one nudge covers) and the content worth sending:
the failing checks with their URLs, the unresolved review comments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aod.lifecycle.status import Activity, PrFacts, Status, TerminationReason, pr_status
from aod.reactions.rules import Condition
from aod.timefmt import seconds_from_iso

# The CI brake: this many runs of one check in a row failed (one run per commit).
BRAKE_RUNS = 3
MAX_COMMENT = 1000
# Sessions that ended like this prompt the `exited` reaction (killed is the human's own doing).
EXIT_REASONS = (TerminationReason.EXITED.value, TerminationReason.RUNTIME_LOST.value)
# An exit that happened longer ago than this when aod learns of it is history, not news: `aod import
# claude` ends every session of a transcript that went quiet, and nobody is to be paged for those.
EXIT_NEWS_FOR = 3600.0


@dataclass(frozen=True)
class SessionView:
    session: Mapping[str, Any]
    # Each PR with "checks" (of its head commit) and "comments".
    prs: Sequence[Mapping[str, Any]] = ()
    # (pr_url, check name) -> statuses of its last runs, newest first; for failing checks only.
    check_runs: Mapping[tuple[str, str], Sequence[str]] = field(default_factory=dict)


def _open_prs(view: SessionView) -> list[Mapping[str, Any]]:
    if view.session.get("termination_reason") is not None:
        return []
    return [pr for pr in view.prs if pr.get("state") == "open"]


def _short(sha: str | None) -> str:
    return (sha or "?")[:12]


def ci_failed(view: SessionView, now: float, stuck_after: float) -> Condition | None:
    failing = [pr for pr in _open_prs(view) if pr.get("ci_state") == "failing"]
    if not failing:
        return None
    signature, lines, brakes = [], [], []
    for pr in failing:
        signature.append(f"{pr['url']}@{pr.get('head_sha') or ''}")
        lines.append(f"Failing checks on {pr['url']} (commit {_short(pr.get('head_sha'))}):")
        for check in pr.get("checks") or ():
            if check.get("status") != "failed":
                continue
            lines.append(f"- {check['name']}" + (f": {check['url']}" if check.get("url") else ""))
            runs = view.check_runs.get((pr["url"], check["name"]), ())
            if len(runs) >= BRAKE_RUNS and all(s == "failed" for s in runs[:BRAKE_RUNS]):
                brakes.append(check["name"])
    brake = None
    if brakes:
        brake = f"{', '.join(sorted(set(brakes)))} failed on the last {BRAKE_RUNS} runs"
    return Condition(" ".join(sorted(signature)), "\n".join(lines), brake)


def changes_requested(view: SessionView, now: float, stuck_after: float) -> Condition | None:
    asking = [pr for pr in _open_prs(view) if pr.get("review_decision") == "changes_requested"]
    if not asking:
        return None
    signature, lines = [], []
    for pr in asking:
        unresolved = [c for c in pr.get("comments") or () if not c.get("resolved")]
        ids = ",".join(sorted(str(c["comment_id"]) for c in unresolved))
        signature.append(f"{pr['url']}#{ids}" if ids else f"{pr['url']}@{pr.get('head_sha') or ''}")
        lines.append(f"Review comments on {pr['url']}:" if unresolved else f"Changes requested on {pr['url']}.")
        for c in unresolved:
            where = c.get("path") or ""
            if where and c.get("line") is not None:
                where += f":{c['line']}"
            who = c.get("author") or "reviewer"
            body = " ".join(str(c.get("body") or "").split())
            if len(body) > MAX_COMMENT:
                body = body[: MAX_COMMENT - 1] + "…"
            lines.append(f"- {who}" + (f" on {where}" if where else "") + f": {body}")
    return Condition(" ".join(sorted(signature)), "\n".join(lines))


def needs_input(view: SessionView, now: float, stuck_after: float) -> Condition | None:
    s = view.session
    if s.get("termination_reason") is not None or s.get("activity") != Activity.WAITING_INPUT:
        return None
    return Condition(f"waiting@{s.get('activity_at') or s.get('last_event_at') or ''}",
                     f"Session {s['id']} is waiting for input.")


def stuck(view: SessionView, now: float, stuck_after: float) -> Condition | None:
    s = view.session
    last = s.get("last_event_at")
    if s.get("termination_reason") is not None or s.get("activity") != Activity.ACTIVE or not last:
        return None
    silent = now - seconds_from_iso(last)
    if silent <= stuck_after:
        return None
    return Condition(f"silent@{last}", f"Session {s['id']} has sent no event since {last}.")


def approved_and_green(view: SessionView, now: float, stuck_after: float) -> Condition | None:
    ready = [pr for pr in _open_prs(view) if pr_status(_facts(pr)) is Status.MERGEABLE]
    if not ready:
        return None
    return Condition(" ".join(sorted(f"{pr['url']}@{pr.get('head_sha') or ''}" for pr in ready)),
                     "\n".join(f"Ready to merge: {pr['url']}" for pr in ready))


def exited(view: SessionView, now: float, stuck_after: float) -> Condition | None:
    s = view.session
    reason = s.get("termination_reason")
    if reason not in EXIT_REASONS:
        return None
    ended = s.get("ended_at")
    if ended and now - seconds_from_iso(ended) > EXIT_NEWS_FOR:
        return None
    how = "exited" if reason == TerminationReason.EXITED else "was lost (its runtime is gone)"
    return Condition(f"{reason}@{s.get('ended_at') or ''}", f"Session {s['id']} {how}.")


def merged(view: SessionView, now: float, stuck_after: float) -> Condition | None:
    done = sorted(pr["url"] for pr in view.prs if pr.get("state") == "merged")
    if not done:
        return None
    return Condition(" ".join(done), "\n".join(f"Merged: {url}" for url in done))


def _facts(pr: Mapping[str, Any]) -> PrFacts:
    return PrFacts(state=pr.get("state") or "open", draft=bool(pr.get("draft")),
                   review_decision=pr.get("review_decision"), mergeability=pr.get("mergeability"),
                   ci_state=pr.get("ci_state"))


CONDITIONS: Mapping[str, Callable[[SessionView, float, float], Condition | None]] = {
    "ci-failed": ci_failed,
    "changes-requested": changes_requested,
    "needs-input": needs_input,
    "stuck": stuck,
    "approved-and-green": approved_and_green,
    "exited": exited,
    "merged": merged,
}


def conditions(view: SessionView, now: float, stuck_after: float) -> dict[str, Condition | None]:
    return {key: check(view, now, stuck_after) for key, check in CONDITIONS.items()}


def stuck_due_at(view: SessionView, stuck_after: float) -> float | None:
    """When an active session would become stuck if nothing arrives: the engine wakes then."""
    s = view.session
    last = s.get("last_event_at")
    if s.get("termination_reason") is not None or s.get("activity") != Activity.ACTIVE or not last:
        return None
    return seconds_from_iso(last) + stuck_after
