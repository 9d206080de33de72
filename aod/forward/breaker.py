"""A circuit breaker, pure: every decision takes the time as an argument.

closed: every attempt runs; `threshold` failures in a row open it. open: no attempt runs until
`open_for` seconds passed since it opened, then it is half-open: exactly one attempt (the probe)
runs, and its success closes the circuit, its failure opens it again for another `open_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half_open"]
THRESHOLD = 5


@dataclass
class Breaker:
    open_for: float
    threshold: int = THRESHOLD
    failures: int = 0  # consecutive, since the last success
    opened_at: float | None = None
    probing: bool = False  # the half-open probe is out

    def state(self, now: float) -> State:
        if self.opened_at is None:
            return "closed"
        if self.probing or now - self.opened_at >= self.open_for:
            return "half_open"
        return "open"

    def allow(self, now: float) -> bool:
        """Whether an attempt may run now; in half-open, True once (the probe) until it reports back."""
        state = self.state(now)
        if state == "closed":
            return True
        if state == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    def retry_in(self, now: float) -> float:
        """Seconds until `allow` can say yes again (0 when it can now)."""
        if self.opened_at is None or self.probing:
            return 0.0
        return max(0.0, self.opened_at + self.open_for - now)

    def succeeded(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.probing = False

    def failed(self, now: float) -> None:
        self.failures += 1
        # A failed probe re-opens at once; a closed circuit opens at the threshold.
        if self.probing or self.failures >= self.threshold:
            self.opened_at = now
        self.probing = False
