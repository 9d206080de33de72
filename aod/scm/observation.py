"""A PR observation (DESIGN §5): validation of the JSON shape, and the CI state it implies.

The API (`POST /v1/sessions/{id}/pr`) and the `gh` observer both end here, so a posted
observation and a polled one are held to the same rules. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aod.shown import shown

PR_STATES = ("open", "closed", "merged")
REVIEW_DECISIONS = ("approved", "changes_requested", "review_required")
MERGEABILITY = ("mergeable", "conflicting", "unknown")
CHECK_STATUSES = ("queued", "in_progress", "passed", "failed", "skipped", "cancelled")
MAX_TEXT = 65536


class InvalidObservation(ValueError):
    """The observation does not have the DESIGN §5 shape; `str()` names the field."""


def _fail(key: str, expected: str, value: object) -> InvalidObservation:
    return InvalidObservation(f"{key}: expected {expected}, got {shown(value, 60)}")


def _text(obj: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidObservation(f"{where}{key}: required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(where + key, "a non-empty string" if required else "a string or null", value)
    return value[:MAX_TEXT]


def _choice(obj: Mapping[str, Any], key: str, where: str, options: Sequence[str], *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if isinstance(value, str) and value.lower() in options:
        return value.lower()
    expected = "one of " + ", ".join(f'"{o}"' for o in options) + ("" if required else " or null")
    if value is None:
        raise InvalidObservation(f"{where}{key}: required, {expected}")
    raise _fail(where + key, expected, value)


def _bool(obj: Mapping[str, Any], key: str, where: str) -> bool:
    value = obj.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _fail(where + key, "true or false", value)
    return value


def _int(obj: Mapping[str, Any], key: str, where: str, *, required: bool = False, minimum: int = 0) -> int | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidObservation(f"{where}{key}: required")
        return None
    # SQLite's INTEGER holds 64 bits signed: a larger number cannot be stored.
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value < 2**63:
        raise _fail(where + key, f"an integer from {minimum} to 2^63-1", value)
    return value


def _list(obj: Mapping[str, Any], key: str) -> list[Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _fail(key, "an array", value)
    return value


def _check(raw: object, index: int, head_sha: str | None) -> dict[str, Any]:
    where = f"checks[{index}]."
    if not isinstance(raw, Mapping):
        raise _fail(f"checks[{index}]", "an object", raw)
    sha = _text(raw, "commit_sha", where) or head_sha
    if not sha:
        raise InvalidObservation(f"{where}commit_sha: required when the PR has no head_sha")
    return {
        "name": _text(raw, "name", where, required=True),
        "status": _choice(raw, "status", where, CHECK_STATUSES, required=True),
        "commit_sha": sha,
        "url": _text(raw, "url", where),
    }


def _comment(raw: object, index: int) -> dict[str, Any]:
    where = f"comments[{index}]."
    if not isinstance(raw, Mapping):
        raise _fail(f"comments[{index}]", "an object", raw)
    comment_id = raw.get("comment_id")
    if isinstance(comment_id, int) and not isinstance(comment_id, bool):
        comment_id = str(comment_id)
    if not isinstance(comment_id, str) or not comment_id:
        raise _fail(where + "comment_id", "a non-empty string or an integer", comment_id)
    return {
        "comment_id": comment_id,
        "author": _text(raw, "author", where),
        "path": _text(raw, "path", where),
        "line": _int(raw, "line", where),
        "body": _text(raw, "body", where),
        "resolved": _bool(raw, "resolved", where),
    }


def parse_observation(raw: object) -> dict[str, Any]:
    """The observation normalized (lower-case enums, ci_state derived), or InvalidObservation.

    Unknown keys are ignored so that a client may send a superset (e.g. the session id).
    `comments` absent or null means "not observed": stored comments stay as they are.
    """
    if not isinstance(raw, Mapping):
        raise _fail("body", "a PR observation object", raw)
    url = _text(raw, "url", "", required=True)
    head_sha = _text(raw, "head_sha", "")
    raw_checks = _list(raw, "checks") or []
    checks = _dedup_checks([_check(c, i, head_sha) for i, c in enumerate(raw_checks)])
    raw_comments = _list(raw, "comments")
    comments = None if raw_comments is None else [_comment(c, i) for i, c in enumerate(raw_comments)]
    if comments is not None and len({c["comment_id"] for c in comments}) != len(comments):
        raise InvalidObservation("comments: comment_id must be unique")
    return {
        "url": url,
        "number": _int(raw, "number", "", required=True, minimum=1),
        "state": _choice(raw, "state", "", PR_STATES, required=True),
        "draft": _bool(raw, "draft", ""),
        "review_decision": _choice(raw, "review_decision", "", REVIEW_DECISIONS),
        "mergeability": _choice(raw, "mergeability", "", MERGEABILITY),
        "head_sha": head_sha,
        "title": _text(raw, "title", ""),
        "checks": checks,
        "comments": comments,
        "ci_state": ci_state(checks, head_sha),
    }


# A check name seen twice on one commit (two workflows with the same job name) counts once,
# with its worse result: one red run is enough to make the commit red.
_BADNESS = {"failed": 5, "in_progress": 4, "queued": 3, "cancelled": 2, "passed": 1, "skipped": 0}


def _dedup_checks(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept: dict[tuple[str, str], dict[str, Any]] = {}
    for check in checks:
        key = (check["name"], check["commit_sha"])
        if key not in kept or _BADNESS[check["status"]] > _BADNESS[kept[key]["status"]]:
            kept[key] = check
    return list(kept.values())


def ci_state(checks: Sequence[Mapping[str, Any]], head_sha: str | None) -> str | None:
    """failing / pending / passing from the checks of the head commit; None when it has none.

    Cancelled runs are neither red nor green: a cancelled run alone leaves the state pending
    (someone will re-run it), next to passed runs it is ignored.
    """
    statuses = [c["status"] for c in checks if head_sha is None or c["commit_sha"] == head_sha]
    if not statuses:
        return None
    if "failed" in statuses:
        return "failing"
    if any(s in ("queued", "in_progress") for s in statuses):
        return "pending"
    if all(s == "cancelled" for s in statuses):
        return "pending"
    return "passing"
