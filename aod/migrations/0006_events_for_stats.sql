-- depends: 0005_session_error_at

-- GET /v1/stats reads every event of its window (a busy hour holds tens of thousands): a covering
-- index answers it without touching the table, whose rows carry the payloads (bench/stats.py:
-- 45 -> ~20 ms for 40,000 events). It leads with occurred_at, so it serves every query that
-- events_by_time served, which would only cost each insert another index.
CREATE INDEX events_for_stats ON events(occurred_at, session_id, tool_name, ok, duration_ms);
DROP INDEX events_by_time;
