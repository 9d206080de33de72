"""How long a replay waits before each event: the original gap between two events divided by the
speed, a gap longer than `max_gap` shortened to it first (an agent idle for an hour replays as
`max_gap`, and the frame says it was shortened)."""

from __future__ import annotations

from dataclasses import dataclass

from aod.timefmt import seconds_from_iso

MIN_SPEED, MAX_SPEED = 0.1, 100.0
DEFAULT_MAX_GAP = 10.0


@dataclass(frozen=True, slots=True)
class Pause:
    wait: float  # seconds to wait before sending the event, at the replay's speed
    gap_ms: int  # the original gap to the event before it
    shortened: bool  # the gap was longer than max_gap and waits max_gap / speed instead

    def marks(self) -> dict[str, object]:
        return {"gap_ms": self.gap_ms, "shortened": self.shortened}


def pause(previous_at: str | None, at: str, speed: float, max_gap: float) -> Pause:
    """The pause before an event that occurred at `at`, after one at `previous_at` (None: the
    first event replayed, sent at once). Events are replayed in commit order, so an event
    stamped earlier than the one before it (a late hook) follows it without a pause."""
    if previous_at is None:
        return Pause(0.0, 0, False)
    gap = max(0.0, seconds_from_iso(at) - seconds_from_iso(previous_at))
    shortened = gap > max_gap
    return Pause(min(gap, max_gap) / speed, round(gap * 1000), shortened)
