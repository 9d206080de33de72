"""Typing a message into an agent's tmux pane: what `aod send` and send-to-agent reactions use.

The text goes through a tmux buffer and `paste-buffer -p` (a bracketed paste when the agent asked
for one), so long and multi-line messages arrive whole instead of being typed key by key, and a
newline inside the text does not submit half of it. Enter is sent separately afterwards.

This module does not look at the session's activity: callers decide whether typing now is right
(neither `aod send` without --force nor a reaction types into a session waiting for input).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping
from typing import Any

from aod.runtime import tmux

__all__ = ["RuntimeSendError", "send_to_session"]

# TUIs such as Claude Code read a paste and a keypress arriving in the same read as one paste,
# and then the Enter becomes a newline in the input box instead of submitting it.
ENTER_DELAY = 0.15


class RuntimeSendError(RuntimeError):
    """The text could not be typed: the session has no tmux runtime, or tmux failed."""


async def send_to_session(session: Mapping[str, Any], text: str) -> None:
    """Paste `text` into the session's tmux pane and press Enter.

    `session` is a `sessions` row (as `aod.storage.sessions.get` returns it).
    """
    pane = session.get("runtime_handle")
    if session.get("runtime") != "tmux" or not pane:
        raise RuntimeSendError(f"session {session.get('id')!r} has no tmux pane to type into")
    buffer = f"aod-send-{uuid.uuid4().hex}"
    try:
        if text:
            await tmux.check("load-buffer", "-b", buffer, "-", stdin=text.encode())
            try:
                await tmux.check("paste-buffer", "-d", "-p", "-b", buffer, "-t", pane)
            except tmux.TmuxError:
                with contextlib.suppress(tmux.TmuxError):
                    await tmux.run("delete-buffer", "-b", buffer)
                raise
            await asyncio.sleep(ENTER_DELAY)
        await tmux.check("send-keys", "-t", pane, "Enter")
    except tmux.TmuxError as exc:
        raise RuntimeSendError(f"cannot type into {pane} of session {session.get('id')!r}: {exc}") from exc
