"""`gh` JSON → PR observations (DESIGN §5 shape), tolerantly.

gh's field values are GitHub's GraphQL enums (OPEN, CHANGES_REQUESTED, …). Anything this
module does not recognise becomes "unknown"/null rather than an error: a new GitHub enum value
must not stop aod from watching the PR. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# `gh pr list --json` fields the observer asks for.
PR_FIELDS = (
    "number,url,state,isDraft,title,headRefOid,reviewDecision,mergeable,statusCheckRollup,reviews"
)

_CHECK_RUN_CONCLUSIONS = {
    "success": "passed",
    "neutral": "passed",
    "skipped": "skipped",
    "cancelled": "cancelled",
    "stale": "cancelled",
    "failure": "failed",
    "timed_out": "failed",
    "startup_failure": "failed",
    "action_required": "failed",
}
_STATUS_CONTEXT_STATES = {
    "success": "passed",
    "failure": "failed",
    "error": "failed",
    "pending": "queued",
    "expected": "queued",
}


class GhOutputError(ValueError):
    """gh printed something that is not the JSON it was asked for."""


def _lower(value: object) -> str:
    return value.lower() if isinstance(value, str) else ""


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def check_from_rollup(item: Mapping[str, Any], head_sha: str) -> dict[str, Any] | None:
    """One statusCheckRollup entry: a CheckRun (Actions and apps) or a StatusContext (commit status)."""
    if "context" in item and "name" not in item:  # StatusContext
        name = _str(item.get("context"))
        status = _STATUS_CONTEXT_STATES.get(_lower(item.get("state")), "queued")
        url = _str(item.get("targetUrl"))
    else:
        name = _str(item.get("name"))
        run_status = _lower(item.get("status"))
        if run_status == "completed":
            # An unknown conclusion is neither red nor green: nudging an agent over it would be noise.
            status = _CHECK_RUN_CONCLUSIONS.get(_lower(item.get("conclusion")), "cancelled")
        elif run_status == "in_progress":
            status = "in_progress"
        else:  # queued, waiting, pending, requested, or a state gh does not name yet
            status = "queued"
        url = _str(item.get("detailsUrl"))
    if name is None:
        return None
    return {"name": name, "status": status, "commit_sha": head_sha, "url": url}


def _review_comments(pr: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Review bodies that ask for changes: what a reviewer wrote outside the diff."""
    found = []
    for review in pr.get("reviews") or []:
        if not isinstance(review, Mapping) or _lower(review.get("state")) != "changes_requested":
            continue
        body = _str(review.get("body"))
        review_id = _str(review.get("id"))
        if body and review_id:
            author = review.get("author")
            found.append({
                "comment_id": review_id,
                "author": _str(author.get("login")) if isinstance(author, Mapping) else None,
                "path": None, "line": None, "body": body, "resolved": False,
            })
    return found


def observation_from_gh(pr: Mapping[str, Any]) -> dict[str, Any]:
    """One element of `gh pr list --json PR_FIELDS` as a raw observation (validated afterwards)."""
    head_sha = _str(pr.get("headRefOid")) or ""
    checks = []
    for item in pr.get("statusCheckRollup") or []:
        if isinstance(item, Mapping):
            check = check_from_rollup(item, head_sha)
            if check is not None:
                checks.append(check)
    mergeable = _lower(pr.get("mergeable"))
    return {
        "url": pr.get("url"),
        "number": pr.get("number"),
        "state": _lower(pr.get("state")) or None,
        "draft": pr.get("isDraft") is True,
        "review_decision": _lower(pr.get("reviewDecision")) or None,
        "mergeability": mergeable if mergeable in ("mergeable", "conflicting") else "unknown",
        "head_sha": head_sha or None,
        "title": _str(pr.get("title")),
        "checks": checks,
        "comments": _review_comments(pr),
    }


def prs_from_list(doc: object) -> list[dict[str, Any]]:
    if not isinstance(doc, list):
        raise GhOutputError(f"gh pr list: expected a JSON array, got {type(doc).__name__}")
    return [observation_from_gh(pr) for pr in doc if isinstance(pr, Mapping)]


REVIEW_THREADS_QUERY = """
query($owner: String!, $repo: String!, $number: Int!) {
  repository(owner: $owner, name: $repo) {
    pullRequest(number: $number) {
      reviewThreads(first: 100) {
        nodes { isResolved path line comments(first: 50) { nodes { id author { login } body path line } } }
      }
    }
  }
}
"""


def thread_comments(doc: object) -> list[dict[str, Any]]:
    """Line comments from the review-threads GraphQL answer, each with its thread's resolved flag."""
    threads: Any = doc
    for key in ("data", "repository", "pullRequest", "reviewThreads", "nodes"):
        threads = threads.get(key) if isinstance(threads, Mapping) else None
    if not isinstance(threads, list):
        raise GhOutputError("gh api graphql: no data.repository.pullRequest.reviewThreads.nodes in the answer")
    found = []
    for thread in threads:
        if not isinstance(thread, Mapping):
            continue
        nodes = thread.get("comments", {}).get("nodes") if isinstance(thread.get("comments"), Mapping) else None
        for comment in nodes or []:
            if not isinstance(comment, Mapping) or not _str(comment.get("id")):
                continue
            author = comment.get("author")
            line = comment.get("line", thread.get("line"))
            found.append({
                "comment_id": comment["id"],
                "author": _str(author.get("login")) if isinstance(author, Mapping) else None,
                "path": _str(comment.get("path")) or _str(thread.get("path")),
                "line": line if isinstance(line, int) and not isinstance(line, bool) and line >= 0 else None,
                "body": _str(comment.get("body")),
                "resolved": thread.get("isResolved") is True,
            })
    return found
