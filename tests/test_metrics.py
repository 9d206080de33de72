"""GET /metrics: Prometheus text from a real daemon, parsed with prometheus-client's own parser."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aod.metrics import reason_class
from tests.helpers.daemon import Daemon


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def event(uid: str, session: str, kind: str = "PostToolUse") -> dict[str, Any]:
    return {"uid": uid, "agent": "claude-code", "session": session,
            "payload": {"hook_event_name": kind, "session_id": f"agent-{session}", "cwd": "/tmp", "tool_name": "Bash"}}


def tcp_get(daemon: Daemon, path: str, token: str | None) -> tuple[int, Any]:
    reply = daemon.tcp("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    return reply.status, reply.body


def test_metrics_count_what_was_posted_over_both_transports(daemon: Daemon) -> None:
    batch = [event("u-1", "m1"), event("u-2", "m1", "Stop"), event("u-1", "m1"), "not an envelope",
             {"agent": "claude-code", "payload": {"hook_event_name": "Stop"}, "occurred_at": True}]
    answer = daemon.post("/v1/events", {"events": batch})
    assert answer.status == 202, answer.body
    assert (answer.body["accepted"], answer.body["duplicates"], len(answer.body["rejected"])) == (2, 1, 2)
    assert daemon.post("/v1/events", event("u-3", "m2")).status == 202
    assert daemon.post("/v1/events", event("u-3", "m2")).body["duplicates"] == 1
    # Whole bodies refused before any item is read count as rejected too (each is a dead letter).
    assert daemon.post("/v1/events", b"{not json").status == 400
    assert daemon.post("/v1/events", {"events": "nope"}).status == 400

    reply = daemon.get("/metrics")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(reply.body)
    assert found[("aod_ingest_events_total", (("result", "accepted"),))] == 3
    assert found[("aod_ingest_events_total", (("result", "duplicate"),))] == 2
    assert found[("aod_ingest_events_total", (("result", "rejected"),))] == 4
    assert found[("aod_ingest_rejected_by_reason_total", (("reason", "invalid_json"),))] == 1
    assert found[("aod_ingest_rejected_by_reason_total", (("reason", "events"),))] == 1
    assert found[("aod_ingest_rejected_by_reason_total", (("reason", "not_an_object"),))] == 1
    assert found[("aod_ingest_rejected_by_reason_total", (("reason", "occurred_at"),))] == 1
    # Each of those requests committed at least one transaction; the start-up reconcile ticked once.
    assert found[("aod_writer_batch_size_count", ())] >= 3
    assert found[("aod_writer_batch_size_sum", ())] >= found[("aod_writer_batch_size_count", ())]
    assert found[("aod_writer_commit_seconds_count", ())] >= 3
    assert found[("aod_reaper_tick_seconds_count", ())] >= 1
    assert found[("aod_sessions_live", ())] == 2
    assert found[("aod_storage_state", (("state", "ok"),))] == 1
    assert found[("aod_storage_state", (("state", "full"),))] == 0
    assert found[("aod_escalations_open", (("priority", "urgent"),))] == 0
    for name in ("aod_writer_queue_depth", "aod_stream_clients", "aod_stream_cuts_total", "aod_stream_poller_lag_rows",
                 "aod_spool_backlog_files", "aod_spool_rejected_files", "aod_config_errors"):
        assert (name, ()) in found, name
    assert ("aod_nudges", (("state", "pending"),)) in found
    assert ("aod_deliveries", (("state", "failed"),)) in found
    assert all(name.startswith("aod_") for name, _ in found)

    token = (daemon.data_dir / "token").read_text().strip()
    status, body = tcp_get(daemon, "/metrics", None)
    assert status == 401, body
    status, body = tcp_get(daemon, "/metrics", token)
    assert status == 200
    over_tcp = samples(body)
    assert over_tcp[("aod_ingest_events_total", (("result", "accepted"),))] == 3
    assert over_tcp[("aod_ingest_events_total", (("result", "duplicate"),))] == 2


def test_metrics_count_spool_files_and_stream_clients(daemon: Daemon) -> None:
    rejected = daemon.data_dir / "spool" / "rejected"
    rejected.mkdir(parents=True, exist_ok=True)
    (rejected / "bad.json").write_text("{")
    found = samples(daemon.get("/metrics").body)
    assert found[("aod_spool_rejected_files", ())] == 1
    assert found[("aod_stream_clients", ())] == 0


@pytest.mark.parametrize(("error", "reason"), [
    ("occurred_at: expected RFC 3339 text or epoch nanoseconds, got a boolean", "occurred_at"),
    ("runtime.pid: expected a positive integer, got -1", "runtime.pid"),
    ("an event must be a JSON object, got a string", "not_an_object"),
    ("no session: the payload has no session_id and the envelope no session", "no_session"),
    ("Something: Odd", "other"),
])
def test_reason_class_names_the_field_never_the_value(error: str, reason: str) -> None:
    assert reason_class(error) == reason
