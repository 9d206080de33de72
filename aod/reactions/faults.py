"""Test seam: stop the reaction pipeline at a named point, so a test can kill the daemon there.

With `AOD_FAULT_PAUSE=<point>[,<point>...]` in its environment, the daemon logs
`{"msg": "fault pause", "point": "<point>"}` the first time it reaches that point and then
waits there forever (until the test sends SIGKILL or SIGTERM). Without the variable, a pause
point costs one set lookup. The points, in pipeline order:

- `nudge-decided`: the decision and its nudge are committed; the nudge is not typed yet.
- `nudge-typed`: the nudge was typed into the agent's pane, not yet recorded as sent.
- `nudge-sent`: the nudge was typed into the agent's pane and recorded as sent.
- `escalation-recorded`: the escalation and its delivery rows are committed; nothing delivered.
- `delivery-sent`: a delivery went out and was recorded as sent.

Only the pipeline's own task waits; the rest of the daemon keeps serving, as it would when a
slow tmux or notifier held that task.
"""

from __future__ import annotations

import asyncio
import logging
import os

log = logging.getLogger("aod.faults")

ENV = "AOD_FAULT_PAUSE"
POINTS = frozenset({"nudge-decided", "nudge-typed", "nudge-sent", "escalation-recorded", "delivery-sent"})
_armed = frozenset(p.strip() for p in os.environ.get(ENV, "").split(",") if p.strip())
_reached: set[str] = set()

unknown = _armed - POINTS
if unknown:
    raise RuntimeError(f"{ENV}: unknown point(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(POINTS))}")


async def pause_point(point: str) -> None:
    if point not in _armed or point in _reached:
        return
    _reached.add(point)
    log.warning("fault pause", extra={"point": point})
    await asyncio.Event().wait()
