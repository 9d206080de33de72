"""What the request handlers share, stored on the app."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from aod.cdc.broadcaster import Broadcaster
from aod.config import Config
from aod.forward.job import Forwarder, off_status
from aod.ingest.ingestor import Ingestor
from aod.jobs import Jobs
from aod.metrics import Metrics
from aod.sessions.control import SessionControl
from aod.storage import forward
from aod.storage.database import Database


@dataclass
class AppContext:
    config: Config
    db: Database
    ingestor: Ingestor
    token: str
    spool_dir: Path
    control: SessionControl  # spawn, send, kill; its FactWriter is the one writer of session state
    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False
    tcp_address: str | None = None
    config_errors: list[str] = field(default_factory=list)
    broadcaster: Broadcaster | None = None  # the live stream's fan-out (issue 4)
    metrics: Metrics = field(default_factory=Metrics)  # GET /metrics; a registry of this daemon's own
    jobs: Jobs = field(default_factory=Jobs)  # the background jobs, for /v1/status
    forwarder: Forwarder | None = None  # [forward.postgres]: its circuit and counts, for /v1/status and /metrics

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
