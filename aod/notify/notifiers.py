"""The three ways to page the human. Each raises NotifyError with a reason worth recording."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from aod import proc
from aod.config import NotifierConfig, desktop_program

# notify-send's urgency for each escalation priority.
_URGENCY = {"urgent": "critical", "action": "normal", "info": "low"}
MAX_DESKTOP_BODY = 300


class NotifyError(RuntimeError):
    """This attempt failed; `permanent` means retrying cannot help (e.g. nothing to run)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


async def send(notifier: NotifierConfig, page: Mapping[str, Any], session: aiohttp.ClientSession) -> None:
    if notifier.type == "command":
        await _command(notifier, page)
    elif notifier.type == "webhook":
        await _webhook(notifier, page, session)
    else:
        await _desktop(notifier, page)


async def _command(notifier: NotifierConfig, page: Mapping[str, Any]) -> None:
    try:
        await proc.output(notifier.command, timeout=notifier.timeout, stdin=orjson.dumps(page))
    except proc.ProgramError as exc:
        raise NotifyError(str(exc)) from None


async def _webhook(notifier: NotifierConfig, page: Mapping[str, Any], session: aiohttp.ClientSession) -> None:
    # A receiver that saw this delivery already (a resend after a crash) can drop it by this key.
    headers = {"Content-Type": "application/json", "Idempotency-Key": f"aod-delivery-{page['delivery']['id']}"}
    try:
        async with session.post(notifier.url, data=orjson.dumps(page), headers=headers,
                                timeout=aiohttp.ClientTimeout(total=notifier.timeout)) as resp:
            if resp.status >= 300:
                text = (await resp.text(errors="replace")).strip()[:200]
                raise NotifyError(f"HTTP {resp.status}" + (f": {text}" if text else ""))
    except TimeoutError:
        raise NotifyError(f"no answer within {notifier.timeout:g}s") from None
    except aiohttp.ClientError as exc:
        raise NotifyError(f"{type(exc).__name__}: {exc}") from None


def _applescript(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def _desktop(notifier: NotifierConfig, page: Mapping[str, Any]) -> None:
    escalation = page["escalation"]
    title = f"aod: {escalation['reaction']} in {escalation['session_id']}"
    body = str(escalation["message"])
    if len(body) > MAX_DESKTOP_BODY:
        body = body[: MAX_DESKTOP_BODY - 1] + "…"
    program = desktop_program()
    if program is None:
        raise NotifyError("unavailable: neither notify-send nor osascript is installed", permanent=True)
    if os.path.basename(program) == "notify-send":
        argv = [program, "--app-name=aod", f"--urgency={_URGENCY.get(escalation['priority'], 'normal')}", title, body]
    else:
        argv = [program, "-e", f"display notification {_applescript(body)} with title {_applescript(title)}"]
    try:
        await proc.output(argv, timeout=notifier.timeout)
    except proc.ProgramError as exc:
        raise NotifyError(str(exc)) from None
