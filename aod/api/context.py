"""What the request handlers share, stored on the app: built once at start-up, never replaced."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from aod.cdc.broadcaster import Broadcaster
from aod.config import Config
from aod.config_reload import ConfigHolder
from aod.forward.job import Forwarder, off_status
from aod.ingest.ingestor import Ingestor
from aod.jobs import Jobs
from aod.metrics import Metrics
from aod.sessions.control import SessionControl
from aod.storage import forward
from aod.storage.database import Database


@dataclass
class RunState:
    """What changes while the daemon runs: whether it is ready, and the TCP address once bound."""

    ready: bool = False
    tcp_address: str | None = None


@dataclass(frozen=True)
class AppContext:
    holder: ConfigHolder  # the live config: read `config` (`holder.current`) afresh, never keep a copy
    db: Database
    ingestor: Ingestor
    token: str
    spool_dir: Path
    control: SessionControl  # spawn, send, kill; its FactWriter is the one writer of session state
    broadcaster: Broadcaster  # the live stream's fan-out (issue 4)
    forwarder: Forwarder | None = None  # [forward.postgres]: its circuit and counts, for /v1/status and /metrics
    metrics: Metrics = field(default_factory=Metrics)  # GET /metrics; a registry of this daemon's own
    jobs: Jobs = field(default_factory=Jobs)  # the background jobs, for /v1/status
    state: RunState = field(default_factory=RunState)
    started_at: float = field(default_factory=time.monotonic)

    @property
    def config(self) -> Config:
        return self.holder.current

    @property
    def config_errors(self) -> list[str]:
        """The last reload's errors (the previous config stays in effect meanwhile)."""
        return self.holder.errors

    async def forward_status(self) -> dict[str, Any]:
        """The `forward` object of /v1/status, which /metrics renders too."""
        lag = await self.db.read(forward.lag)
        if self.forwarder is None:
            return off_status(lag)
        keep_days = min(self.config.retention.events_days, self.config.retention.change_log_days)
        return self.forwarder.status(lag, keep_days)


CONTEXT = web.AppKey("aod_context", AppContext)


def context(request: web.Request) -> AppContext:
    return request.app[CONTEXT]
