"""The SCM observer: polls `gh` for the PRs of each live session's branch and records them.

Every `scm.interval` each live session with a branch is observed: `gh pr list --head BRANCH`
(state, draft, review decision, mergeability, head commit and its check rollup, reviews),
and, for an open PR whose reviewer asked for changes, its review threads through
`gh api graphql` (line comments with their resolved flag). At most `scm.max_concurrent` gh
processes run at once. A session whose fetch failed is retried with backoff (the interval
doubling, up to ten minutes); a failed fetch writes nothing. A live session is polled while it
changed in the last day or has an open PR.

The branch is the session's `branch` (aod spawn --worktree records it); for a session that
was adopted (started outside aod), it is the branch checked out in its workspace. gh runs in
the workspace, so it finds the repository the way the agent's own `gh` would.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from aod import proc
from aod.config import ScmConfig
from aod.config_reload import ConfigHolder
from aod.scm.gh_parse import PR_FIELDS, REVIEW_THREADS_QUERY, GhOutputError, prs_from_list, thread_comments
from aod.scm.observation import InvalidObservation, parse_observation
from aod.scm.record import UnknownSession, record_observations
from aod.sessions.facts import FactWriter
from aod.storage import prs, sessions
from aod.storage.database import Database
from aod.timefmt import iso_from_seconds, now_iso

log = logging.getLogger("aod.scm")

MAX_BACKOFF = 600.0
# A live session without an event for this long, and without an open PR, is not polled.
QUIET_AFTER = 24 * 3600.0
PR_LIMIT = "10"
# gh must never stop to ask a question or print colours into the JSON.
GH_ENV = {"GH_PROMPT_DISABLED": "1", "GH_NO_UPDATE_NOTIFIER": "1", "NO_COLOR": "1", "CLICOLOR": "0"}
GIT_TIMEOUT = 5.0
PAGE = 500


class FetchError(RuntimeError):
    pass


@dataclass
class _Watch:
    next_at: float = 0.0
    failures: int = 0
    last_written: bytes | None = None


def retry_delay(interval: float, failures: int) -> float:
    """After `failures` failed fetches in a row: the interval, doubled per failure, at most 10 min."""
    factor: int = 2 ** failures
    return min(interval * factor, max(interval, MAX_BACKOFF))


def _watched_sessions(conn: Any, quiet_since: str) -> list[dict[str, Any]]:
    """Live sessions touched lately, and live sessions with an open PR however quiet they are.

    A session whose SessionEnd never came stays live; without this, gh would be asked about
    its branch every interval forever.
    """
    with_open_pr = prs.sessions_with_open_prs(conn)
    found, cursor = list[dict[str, Any]](), None
    while True:
        page, cursor = sessions.listing(conn, sessions.SessionFilter(active=True), PAGE, cursor)
        found.extend(s for s in page if s["updated_at"] >= quiet_since or s["id"] in with_open_pr)
        if not cursor:
            return found


class ScmObserver:
    def __init__(self, db: Database, holder: ConfigHolder, facts: FactWriter) -> None:
        self.db = db
        self.holder = holder
        self.facts = facts
        self._watches: dict[str, _Watch] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._limit = 0
        self._slots = asyncio.Semaphore(1)

    async def step(self) -> float:
        """Start the observations that are due; due again when the next watch is (at most `scm.interval`)."""
        interval = self.holder.current.scm.interval
        await self.poll_once()
        now = time.monotonic()
        upcoming = [w.next_at for sid, w in self._watches.items() if sid not in self._running]
        return min([interval, *(max(0.05, t - now) for t in upcoming)])

    async def close(self) -> None:
        """Cancel the observations in flight (a cut fetch writes nothing)."""
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def poll_once(self) -> None:
        """Start an observation for every live session that is due (and not being observed)."""
        quiet_since = iso_from_seconds(time.time() - QUIET_AFTER)
        live = await self.db.read(lambda conn: _watched_sessions(conn, quiet_since))
        ids = {s["id"] for s in live}
        for gone in set(self._watches) - ids:
            del self._watches[gone]
        now = time.monotonic()
        for session in live:
            sid = session["id"]
            watch = self._watches.setdefault(sid, _Watch())
            if sid in self._running or watch.next_at > now:
                continue
            task = asyncio.create_task(self._observe(session, watch), name=f"scm-{sid}")
            self._running[sid] = task
            task.add_done_callback(functools.partial(self._forget, sid))

    def _forget(self, session_id: str, _done: asyncio.Task[None]) -> None:
        self._running.pop(session_id, None)

    def _gate(self, scm: ScmConfig) -> asyncio.Semaphore:
        # A reloaded max_concurrent takes effect for calls that start after it; calls already
        # running finish on the old gate.
        if scm.max_concurrent != self._limit:
            self._limit = scm.max_concurrent
            self._slots = asyncio.Semaphore(scm.max_concurrent)
        return self._slots

    async def _gh(self, scm: ScmConfig, args: Sequence[str], cwd: str) -> Any:
        async with self._gate(scm):
            try:
                out = await proc.output([scm.gh, *args], cwd=cwd, timeout=scm.timeout, env=GH_ENV)
            except proc.ProgramError as exc:
                raise FetchError(str(exc)) from None
        try:
            return orjson.loads(out)
        except orjson.JSONDecodeError as exc:
            raise FetchError(f"gh {args[0]} {args[1]}: not JSON: {exc}") from None

    async def _observe(self, session: dict[str, Any], watch: _Watch) -> None:
        config = self.holder.current
        scm = config.scm
        sid = session["id"]
        try:
            place = await _where(session)
            if place is None:
                watch.next_at = time.monotonic() + scm.interval
                return
            branch, cwd = place
            observations = await self.fetch(scm, branch, cwd)
        except (FetchError, GhOutputError, InvalidObservation) as exc:
            watch.failures += 1
            delay = retry_delay(scm.interval, watch.failures)
            watch.next_at = time.monotonic() + delay
            log.warning("gh fetch failed; nothing recorded", extra={"session": sid, "error": str(exc),
                                                                   "failures": watch.failures, "retry_in_s": delay})
            return
        watch.failures = 0
        watch.next_at = time.monotonic() + scm.interval
        digest = orjson.dumps(observations, option=orjson.OPT_SORT_KEYS)
        if not observations or digest == watch.last_written:
            return
        try:
            await self.db.write(lambda conn: record_observations(conn, self.facts, sid, observations, now=now_iso()))
        except UnknownSession:
            return
        watch.last_written = digest

    async def fetch(self, scm: ScmConfig, branch: str, cwd: str) -> list[dict[str, Any]]:
        raw = prs_from_list(await self._gh(
            scm, ["pr", "list", "--head", branch, "--state", "all", "--limit", PR_LIMIT, "--json", PR_FIELDS], cwd))
        for pr in raw:
            if pr["state"] == "open" and pr["review_decision"] == "changes_requested" and isinstance(pr["number"], int):
                threads = await self._gh(scm, [
                    "api", "graphql", "-F", "owner={owner}", "-F", "repo={repo}", "-F", f"number={pr['number']}",
                    "-f", f"query={REVIEW_THREADS_QUERY}",
                ], cwd)
                pr["comments"] = pr["comments"] + thread_comments(threads)
            else:
                # Comments matter while changes are requested; otherwise they are not fetched,
                # and what is stored stays as it was.
                pr["comments"] = None
        return [parse_observation(pr) for pr in raw]


async def _where(session: dict[str, Any]) -> tuple[str, str] | None:
    """(branch, directory to run gh in), or None when the session has neither."""
    workspace = session.get("workspace_path")
    if not workspace or not await asyncio.to_thread(os.path.isdir, workspace):
        return None
    branch = session.get("branch")
    if not branch:
        try:
            # symbolic-ref also names a branch with no commit yet; it fails on a detached HEAD,
            # which has no PR of its own.
            out = await proc.output(["git", "-C", workspace, "symbolic-ref", "--quiet", "--short", "HEAD"],
                                    timeout=GIT_TIMEOUT)
        except proc.ProgramError:
            return None  # not a git checkout, detached, or git missing: nothing to watch
        branch = out.decode("utf-8", "replace").strip()
        if not branch:
            return None
    return branch, workspace
