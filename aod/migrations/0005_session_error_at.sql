-- depends: 0004_nudges

-- When a session's error happened: `error` (a StopFailure's "rate_limit", a failed spawn) says
-- what, `error_at` says when, so `aod show` can say "error: rate_limit (3m ago)". It is the
-- client's `occurred_at` of the event that set the error, and clears with it.
ALTER TABLE sessions ADD COLUMN error_at TEXT;

-- An error already stored was set by the event that set the activity (a failed spawn, which has
-- no event, ended the session). Filled in before the trigger below exists: not a change to stream.
UPDATE sessions SET error_at = coalesce(activity_at, ended_at, updated_at) WHERE error IS NOT NULL;

-- The stream's session object carries it, and a repeated error (the same "rate_limit" again,
-- later) is a change a client must see.
DROP VIEW cdc_sessions;
CREATE VIEW cdc_sessions AS
SELECT id AS entity_id, id AS session_id, project_id, json_object(
    'id', id, 'project_id', project_id, 'agent', agent, 'agent_session_id', agent_session_id,
    'status', status, 'activity', activity, 'error', error, 'error_at', error_at, 'is_alive', is_alive,
    'termination_reason', termination_reason, 'runtime', runtime,
    'runtime_handle', runtime_handle, 'pid', pid, 'workspace_path', workspace_path,
    'branch', branch, 'title', title, 'created_at', created_at, 'updated_at', updated_at,
    'last_event_at', last_event_at, 'ended_at', ended_at) AS data
FROM sessions;

DROP TRIGGER sessions_cdc_update;
CREATE TRIGGER sessions_cdc_update AFTER UPDATE ON sessions
WHEN OLD.project_id IS NOT NEW.project_id
  OR OLD.agent_session_id IS NOT NEW.agent_session_id
  OR OLD.status IS NOT NEW.status
  OR OLD.activity IS NOT NEW.activity
  OR OLD.error IS NOT NEW.error
  OR OLD.error_at IS NOT NEW.error_at
  OR OLD.is_alive IS NOT NEW.is_alive
  OR OLD.termination_reason IS NOT NEW.termination_reason
  OR OLD.runtime IS NOT NEW.runtime
  OR OLD.runtime_handle IS NOT NEW.runtime_handle
  OR OLD.pid IS NOT NEW.pid
  OR OLD.workspace_path IS NOT NEW.workspace_path
  OR OLD.branch IS NOT NEW.branch
  OR OLD.title IS NOT NEW.title
  OR OLD.ended_at IS NOT NEW.ended_at
BEGIN
    INSERT INTO change_log (entity, op, entity_id, session_id, project_id, data)
    SELECT 'session', 'update', entity_id, session_id, project_id, data
    FROM cdc_sessions WHERE entity_id = NEW.id;
END;
