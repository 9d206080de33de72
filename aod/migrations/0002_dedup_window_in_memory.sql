-- The dedup window (DESIGN §4) is kept in memory by the ingest writer (aod/ingest/recent_keys.py)
-- and refilled from the newest events on start, so the index on the random content hash, which
-- cost one scattered page write per stored event, goes. The content_key column stays: the
-- refill reads it.
DROP INDEX IF EXISTS events_by_content_key;
