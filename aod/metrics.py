"""The daemon's Prometheus metrics (`GET /metrics`), on a registry of its own per daemon.

Two kinds of series. Counters and histograms recorded where things happen (ingest on the loop,
commits on the writer thread, reaper ticks); prometheus-client's metrics are thread-safe. And
values that already live somewhere (database rows, files, the stream's state), which are read
when scraped: the route gathers them off the loop into `Facts`, and a collector renders them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apsw
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from aod.ingest import spool
from aod.storage import change_log, deliveries, escalations, nudges, sessions

if TYPE_CHECKING:
    from aod.ingest.ingestor import Summary
    from aod.sessions.reaper import TickReport

# The classic text format, which generate_latest writes by default and every scraper reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
TICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Every known state is rendered, zeros included, so a series never appears out of nowhere.
NUDGE_STATES = ("pending", "sent", "failed", "cancelled")
DELIVERY_STATES = ("pending", "sent", "failed")
PRIORITIES = ("urgent", "action", "info")
STORAGE_STATES = ("ok", "full", "readonly")
VERDICTS = ("alive", "dead", "failed", "unknown")
CIRCUIT_STATES = ("closed", "open", "half_open")
_REASON = re.compile(r"[a-z_. ]{1,32}")


def reason_class(error: str) -> str:
    """A refusal's field (`payload`, `occurred_at`, `runtime.pid`, `no_session`), never its value:
    a label must take few values."""
    head = error.split(":", 1)[0]
    if error.startswith("an event must be"):
        return "not_an_object"
    return head.replace(" ", "_") if _REASON.fullmatch(head) else "other"


@dataclass
class Facts:
    """What one scrape read from the database, the spool and the running parts."""

    nudges: dict[str, int] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=dict)
    open_escalations: dict[str, int] = field(default_factory=dict)
    live_sessions: int = 0
    change_log_head: int = 0
    spool_backlog: int = 0
    spool_rejected: int = 0
    writer_queue: int = 0
    stream_clients: int = 0
    stream_cuts: int = 0
    poller_position: int | None = None
    storage_state: str = "ok"
    config_errors: int = 0
    forward: dict[str, Any] = field(default_factory=dict)  # /v1/status's `forward` object


def read_facts(conn: apsw.Connection) -> Facts:
    """The database's part of a scrape (on a reader thread)."""
    return Facts(nudges=nudges.counts_by_status(conn), deliveries=deliveries.counts_by_status(conn),
                 open_escalations=escalations.open_by_priority(conn), live_sessions=sessions.count_live(conn),
                 change_log_head=change_log.head(conn))


def spool_files(spool_dir: Path) -> tuple[int, int]:
    """(backlog, rejected) file counts; blocking, call off the loop."""
    try:
        backlog = sum(1 for name in os.listdir(spool_dir) if name.endswith(".json"))
    except OSError:
        backlog = 0
    return backlog, spool.rejected_count(spool_dir)


class _FactsCollector(Collector):
    def __init__(self) -> None:
        self.facts = Facts()

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        f = self.facts
        yield _by_label("aod_nudges", "Nudges (send-to-agent messages) by state", "state", NUDGE_STATES, f.nudges)
        yield _by_label("aod_deliveries", "Escalation deliveries to notifiers by state", "state", DELIVERY_STATES,
                        f.deliveries)
        yield _by_label("aod_escalations_open", "Escalations waiting for an ack, by priority", "priority", PRIORITIES,
                        f.open_escalations)
        yield _by_label("aod_storage_state", "1 for the storage state the database is in (ingest answers 507 unless ok)",
                        "state", STORAGE_STATES, {f.storage_state: 1})
        yield GaugeMetricFamily("aod_sessions_live", "Sessions that have not ended", value=f.live_sessions)
        yield GaugeMetricFamily("aod_spool_backlog_files", "Spooled events waiting to be ingested",
                                value=f.spool_backlog)
        yield GaugeMetricFamily("aod_spool_rejected_files", "Spool files moved to spool/rejected",
                                value=f.spool_rejected)
        yield GaugeMetricFamily("aod_writer_queue_depth", "Write requests waiting for the writer thread",
                                value=f.writer_queue)
        yield GaugeMetricFamily("aod_stream_clients", "Connected GET /v1/stream clients", value=f.stream_clients)
        yield CounterMetricFamily("aod_stream_cuts", "Stream clients disconnected for falling behind",
                                  value=f.stream_cuts)
        # With no client the poller skips ahead only on its idle tick: nobody waits for those rows.
        lag = 0 if f.poller_position is None or not f.stream_clients else max(0, f.change_log_head - f.poller_position)
        yield GaugeMetricFamily("aod_stream_poller_lag_rows", "change_log rows committed but not yet read by the poller",
                                value=lag)
        yield GaugeMetricFamily("aod_config_errors", "Errors of the last config reload (the previous config stays)",
                                value=f.config_errors)
        yield from _forward(f.forward)


def _forward(f: dict[str, Any]) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
    yield GaugeMetricFamily("aod_forward_enabled", "1 when [forward.postgres] forwards to a team store",
                            value=1 if f.get("enabled") else 0)
    yield _by_label("aod_forward_circuit", "1 for the circuit breaker's state (all 0 while forwarding is off)",
                    "state", CIRCUIT_STATES, {f["circuit"]: 1} if f.get("circuit") else {})
    yield GaugeMetricFamily("aod_forward_lag_rows", "change_log rows not yet in the team store",
                            value=f.get("lag_rows", 0))
    yield GaugeMetricFamily("aod_forward_lag_seconds", "Age of the oldest change_log row not yet in the team store",
                            value=f.get("lag_seconds", 0.0))
    yield CounterMetricFamily("aod_forward_rows", "change_log rows forwarded since the daemon started",
                              value=f.get("forwarded_rows", 0))
    yield CounterMetricFamily("aod_forward_failures", "Failed attempts to write to the team store since the start",
                              value=f.get("failures", 0))


def _by_label(name: str, doc: str, label: str, known: tuple[str, ...], counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for value in (*known, *sorted(set(counts) - set(known))):
        family.add_metric([value], counts.get(value, 0))
    return family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        events = Counter("aod_ingest_events", "Ingested items by outcome", ["result"], registry=r)
        # Bound once: a labels() lookup per request would cost a lock and a dict hit each time.
        self._accepted = events.labels("accepted")
        self._duplicate = events.labels("duplicate")
        self._rejected = events.labels("rejected")
        self._rejected_by = Counter("aod_ingest_rejected_by_reason", "Refused ingest items by the field at fault",
                                    ["reason"], registry=r)
        self._batch = Histogram("aod_writer_batch_size", "Write requests per group-commit transaction",
                                buckets=BATCH_BUCKETS, registry=r)
        self._commit = Histogram("aod_writer_commit_seconds", "Seconds from BEGIN IMMEDIATE to COMMIT",
                                 buckets=SECONDS_BUCKETS, registry=r)
        verdicts = Counter("aod_reaper_probes", "Runtime probes by verdict", ["verdict"], registry=r)
        self._verdicts = {v: verdicts.labels(v) for v in VERDICTS}
        self._tick = Histogram("aod_reaper_tick_seconds", "Seconds per reaper tick (probes and their write)",
                               buckets=TICK_BUCKETS, registry=r)
        self._facts = _FactsCollector()
        r.register(self._facts)
        self.accepted = 0  # for STATUS= (events/min); only touched on the loop
        self.poller_position: Callable[[], int] | None = None

    def ingested(self, summary: Summary) -> None:
        self.accepted += summary.accepted
        if summary.accepted:
            self._accepted.inc(summary.accepted)
        if summary.duplicates:
            self._duplicate.inc(summary.duplicates)
        if summary.rejected:
            self._rejected.inc(len(summary.rejected))
            for item in summary.rejected:
                self._rejected_by.labels(reason_class(str(item["error"]))).inc()

    def refused(self, reason: str) -> None:
        """A whole request body refused before its items were read (bad JSON, too large, not JSON)."""
        self._rejected.inc()
        self._rejected_by.labels(reason).inc()

    def committed(self, size: int, seconds: float) -> None:
        """On the writer thread, once per transaction."""
        self._batch.observe(size)
        self._commit.observe(seconds)

    def reaped(self, report: TickReport, seconds: float) -> None:
        for probe in report.probed.values():
            counter = self._verdicts.get(str(probe))
            if counter is not None:
                counter.inc()
        self._tick.observe(seconds)

    def render(self, facts: Facts) -> bytes:
        """The exposition text; `facts` fills the scraped series. Synchronous from set to render,
        so two concurrent scrapes cannot mix their facts."""
        if self.poller_position is not None:
            facts.poller_position = self.poller_position()
        self._facts.facts = facts
        return generate_latest(self.registry)
