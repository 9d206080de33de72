"""Test seam: stop the reaction pipeline at a named point, so a test can kill the daemon there.

With `AOD_FAULT_PAUSE=<point>[,<point>...]` in its environment, the daemon logs
`{"msg": "fault pause", "point": "<point>"}` the first time it reaches that point and then
waits there forever (until the test sends SIGKILL or SIGTERM). The points, in pipeline order:

- `nudge-decided`: the decision and its nudge are committed; the nudge is not typed yet.
- `nudge-typed`: the nudge was typed into the agent's pane, not yet recorded as sent.
- `nudge-sent`: the nudge was typed into the agent's pane and recorded as sent.
- `escalation-recorded`: the escalation and its delivery rows are committed; nothing delivered.
- `delivery-sent`: a delivery went out and was recorded as sent.

The composition root reads the variable once and hands one `Faults` to the nudger and the
delivery worker; nothing reads it at import time, and without it a point costs one set lookup.
Only the pipeline's own task waits; the rest of the daemon keeps serving, as it would when a
slow tmux or notifier held that task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping

log = logging.getLogger("aod.faults")

ENV = "AOD_FAULT_PAUSE"
POINTS = frozenset({"nudge-decided", "nudge-typed", "nudge-sent", "escalation-recorded", "delivery-sent"})


class Faults:
    """The armed pause points; `Faults()` arms none."""

    def __init__(self, armed: Iterable[str] = ()) -> None:
        self.armed = frozenset(armed)
        unknown = self.armed - POINTS
        if unknown:
            raise ValueError(f"{ENV}: unknown point(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(POINTS))}")
        self._reached: set[str] = set()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Faults:
        return cls(p.strip() for p in environ.get(ENV, "").split(",") if p.strip())

    async def pause(self, point: str) -> None:
        if point not in self.armed or point in self._reached:
            return
        self._reached.add(point)
        log.warning("fault pause", extra={"point": point})
        await asyncio.Event().wait()
