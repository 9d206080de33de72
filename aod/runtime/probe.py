"""What one look at a runtime answers: the vocabulary every probe returns.

It lives with the probes (runtime) so that they need nothing from the rules that read them
(`aod.lifecycle.liveness`), which import it from here.
"""

from __future__ import annotations

from enum import StrEnum


class Probe(StrEnum):
    ALIVE = "alive"
    DEAD = "dead"  # the runtime is gone: no pane, no process, or another process under its pid
    FAILED = "failed"  # the probe itself did not work (tmux missing, timeout): says nothing
    UNKNOWN = "unknown"  # no way to probe this kind of runtime here
