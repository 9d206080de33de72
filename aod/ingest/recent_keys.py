"""The dedup window in memory: content keys of the events stored in the last few seconds.

A re-fired hook arrives with a new uid and the same content within `ingest.dedup_window`
(DESIGN §4). Asking the database for each key needed an index on a random hash, which put one
scattered page write per event into every commit; the window is seconds long, so the keys fit
in memory. Only the writer thread touches an instance (it runs inside the write transaction),
so there are no locks. Keys are recorded under the token of the write that stored them: when
that write's transaction fails, `forget(token)` takes exactly its keys back out, so a rolled-back
event can never make its retry look like a duplicate. After a restart the window is refilled
from the newest events (`load`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

_LOADED = object()  # the owner of keys refilled from the database: never forgotten


class RecentKeys:
    def __init__(self, window: float) -> None:
        self.window = window
        self.loaded = False
        self._keys: dict[str, tuple[float, object]] = {}
        self._order: deque[tuple[float, str]] = deque()

    def load(self, stored: Iterable[tuple[str, float]], now: float) -> None:
        """Refill from the database: (content key, received_at seconds) of recent events."""
        for key, at in sorted(stored, key=lambda pair: pair[1]):
            self.add(key, at, _LOADED)
        self.expire(now)
        self.loaded = True

    def seen(self, key: str, now: float) -> bool:
        entry = self._keys.get(key)
        return entry is not None and entry[0] >= now - self.window

    def add(self, key: str, at: float, token: object) -> None:
        self._keys[key] = (at, token)
        self._order.append((at, key))

    def forget(self, token: object) -> None:
        """Drop the keys a failed write recorded (the token must be unique to that write)."""
        for key in [k for k, (_, owner) in self._keys.items() if owner is token]:
            del self._keys[key]

    def discard(self, key: str, token: object) -> None:
        """Drop one key, if the write of `token` recorded it (an item that rolled back alone)."""
        entry = self._keys.get(key)
        if entry is not None and entry[1] is token:
            del self._keys[key]

    def expire(self, now: float) -> None:
        horizon = now - self.window
        order, keys = self._order, self._keys
        while order and order[0][0] < horizon:
            at, key = order.popleft()
            entry = keys.get(key)
            if entry is not None and entry[0] == at:
                del keys[key]

    def __len__(self) -> int:
        return len(self._keys)
