"""Types the recorded nudges into the agents' panes (the `nudges` outbox).

A nudge row exists before anything is typed (see engine.py), so a crash before typing leaves
it pending and the restarted daemon types it once. While its text is being typed the row
carries `typing_since`, and it is marked sent right after; a restart that finds
`typing_since` still set knows the send was cut off somewhere in between. Every nudge ends
with a marker naming its id, so the pane says how far it got: marker on screen means the
text went in and at most the Enter is missing (an Enter on an empty input is harmless), no
marker means it is typed again. Where the agent's UI hides a pasted text behind a
placeholder the marker cannot be seen, and such a cut-off nudge is typed once more.
A graceful stop lets a nudge in progress finish before the daemon exits.

A session waiting for input is never typed into: its nudge waits until the agent moves on.
A session that ended cancels its pending nudges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aod.faults import Faults
from aod.lifecycle.status import Activity
from aod.runtime import tmux
from aod.storage import nudges, sessions
from aod.storage.database import Database
from aod.timefmt import iso_from_seconds, now_iso, seconds_from_iso

log = logging.getLogger("aod.reactions")

Send = Callable[[Mapping[str, Any], str], Awaitable[None]]
Shown = Callable[[Mapping[str, Any], str], Awaitable[bool]]
ATTEMPTS = 3
RETRY_BASE = 2.0
# How often a nudge waiting for a session to leave `waiting_input` looks again.
WAITING_RECHECK = 1.0
MAX_SLEEP = 30.0
STOP_GRACE = 1.0


def marker(nudge_id: int) -> str:
    return f"[aod nudge #{nudge_id}]"


async def pane_shows(session: Mapping[str, Any], text: str) -> bool:
    """Whether `text` is on the session's tmux pane or in its history."""
    try:
        screen = await tmux.check("capture-pane", "-p", "-J", "-S", "-", "-t", str(session.get("runtime_handle")))
    except tmux.TmuxError:
        return False  # then typing fails too, and is retried or given up on as usual
    return text in screen


class Nudger:
    def __init__(self, db: Database, send: Send, shown: Shown = pane_shows,
                 on_given_up: Callable[[str], None] | None = None, faults: Faults | None = None) -> None:
        self.db = db
        self.faults = faults or Faults()
        self.send = send
        self.shown = shown
        # Told the session id when a nudge fails for good: the engine then pages the human.
        self.on_given_up = on_given_up
        self.woken = asyncio.Event()  # the job's wake flag
        self._current: asyncio.Task[None] | None = None

    def wake(self, *_: object) -> None:
        self.woken.set()

    async def step(self) -> float:
        """Send every nudge that is due; due again at the next one's time."""
        # Shielded: stopping the job must not cut a nudge in half; stop() waits for it.
        self._current = asyncio.create_task(self._round())
        await asyncio.shield(self._current)
        next_due = await self.db.read(nudges.next_due_at)
        return MAX_SLEEP if next_due is None else min(MAX_SLEEP, max(0.05, seconds_from_iso(next_due) - time.time()))

    async def stop(self) -> None:
        """Let a nudge being typed finish (briefly), so a graceful stop never cuts one in half."""
        current = self._current
        if current is not None and not current.done():
            await asyncio.wait([current], timeout=STOP_GRACE)
            current.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await current

    async def _round(self) -> None:
        now = now_iso()
        for nudge in await self.db.read(lambda conn: nudges.due(conn, now)):
            await self._deliver(nudge)

    async def _deliver(self, nudge: dict[str, Any]) -> None:
        nudge_id = nudge["id"]
        session = await self.db.read(lambda conn: sessions.get(conn, nudge["session_id"]))
        if session is None or session["termination_reason"] is not None:
            await self.db.write(lambda conn: nudges.finish(
                conn, nudge_id, "cancelled", "the session ended before the nudge was sent", attempted=False))
            return
        if session["activity"] == Activity.WAITING_INPUT:
            later = iso_from_seconds(time.time() + WAITING_RECHECK)
            await self.db.write(lambda conn: nudges.retry_later(
                conn, nudge_id, later, "the session is waiting for input; not typing into it", attempted=False))
            return
        if session["runtime"] != "tmux" or not session["runtime_handle"]:
            # Retrying cannot give a session a pane: page the human at once instead.
            await self._failed(nudge, "the session has no tmux pane to type into", final=True)
            return
        await self.faults.pause("nudge-decided")
        text = f"{nudge['message']}\n\n{marker(nudge_id)}"
        if nudge["typing_since"] is not None and await self.shown(session, marker(nudge_id)):
            log.info("a cut-off nudge is on screen already; pressing Enter only", extra={"nudge": nudge_id})
            text = ""
        await self.db.write(lambda conn: nudges.start_typing(conn, nudge_id, now_iso()))
        try:
            await self.send(session, text)
        except Exception as exc:
            await self._failed(nudge, f"{type(exc).__name__}: {exc}")
            return
        await self.faults.pause("nudge-typed")
        await self.db.write(lambda conn: nudges.mark_sent(conn, nudge_id, now_iso()))
        log.info("nudged", extra={"session": nudge["session_id"], "reaction": nudge["reaction"], "nudge": nudge_id})
        await self.faults.pause("nudge-sent")

    async def _failed(self, nudge: dict[str, Any], error: str, *, final: bool = False) -> None:
        attempts = nudge["attempts"] + 1
        log.warning("nudge not sent", extra={"session": nudge["session_id"], "nudge": nudge["id"],
                                             "attempt": attempts, "error": error})
        if final or attempts >= ATTEMPTS:
            await self.db.write(lambda conn: nudges.finish(conn, nudge["id"], "failed", error, attempted=True))
            if self.on_given_up is not None:
                self.on_given_up(nudge["session_id"])
            return
        later = iso_from_seconds(time.time() + RETRY_BASE * 2 ** (attempts - 1))
        await self.db.write(lambda conn: nudges.retry_later(conn, nudge["id"], later, error, attempted=True))
