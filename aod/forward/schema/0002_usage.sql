-- depends: 0001_team

-- Token usage (the local `usage` table of migration 0008: one row per assistant message of a
-- transcript), for the team view's cost per person per day. Keyed like the local table, by the
-- message and request ids, within the tenant and machine that forwarded it.
CREATE TABLE aod.usage (
    tenant_id                   text NOT NULL DEFAULT current_user,
    machine_id                  text NOT NULL,
    message_id                  text NOT NULL,
    request_id                  text NOT NULL,
    id                          bigint NOT NULL,
    session_id                  text,
    agent_session_id            text,
    model                       text NOT NULL,
    input_tokens                bigint NOT NULL,
    output_tokens               bigint NOT NULL,
    cache_creation_input_tokens bigint NOT NULL,
    cache_creation_1h_tokens    bigint NOT NULL,
    cache_read_input_tokens     bigint NOT NULL,
    cost_usd                    double precision,
    occurred_at                 timestamptz NOT NULL,
    is_sidechain                boolean NOT NULL,
    PRIMARY KEY (tenant_id, machine_id, message_id, request_id)
);
-- `aod team stats`: cost per person per day over a window.
CREATE INDEX usage_by_time ON aod.usage (occurred_at, tenant_id);

GRANT SELECT, INSERT, UPDATE ON aod.usage TO aod_member;
GRANT SELECT ON aod.usage TO aod_team;
ALTER TABLE aod.usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON aod.usage USING (tenant_id = current_user) WITH CHECK (tenant_id = current_user);
CREATE POLICY team_reads ON aod.usage FOR SELECT TO aod_team USING (true);
