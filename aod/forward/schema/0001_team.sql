-- The team store (DESIGN §6 "Team store"): schema `aod`, the local tables' names and columns
-- with `tenant_id` (the PostgreSQL role that forwarded the row) and `machine_id` (a stable id
-- kept in the local file's meta table) added. Rows are upserted, so each table's key includes
-- the machine: two machines' session "api-1" are two sessions. Events are keyed by their uid
-- (UUIDv7, unique across machines). No foreign keys: rows of one batch arrive in any order, and
-- a machine's history can start after its oldest rows were pruned locally.

CREATE SCHEMA IF NOT EXISTS aod;

-- Members get table privileges through aod_member; aod_team, granted on top, shows every
-- tenant's rows. NOLOGIN group roles: a person logs in as their own role, which is their tenant.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aod_member') THEN
        CREATE ROLE aod_member NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'aod_team') THEN
        CREATE ROLE aod_team NOLOGIN;
    END IF;
END
$$;

CREATE TABLE aod.projects (
    tenant_id   text NOT NULL DEFAULT current_user,
    machine_id  text NOT NULL,
    id          text NOT NULL,
    path        text NOT NULL,
    name        text NOT NULL,
    origin_url  text,
    created_at  timestamptz NOT NULL,
    archived_at timestamptz,
    PRIMARY KEY (tenant_id, machine_id, id)
);

CREATE TABLE aod.sessions (
    tenant_id          text NOT NULL DEFAULT current_user,
    machine_id         text NOT NULL,
    id                 text NOT NULL,
    project_id         text,
    agent              text NOT NULL,
    agent_session_id   text,
    status             text NOT NULL,
    activity           text NOT NULL,
    activity_at        timestamptz,
    error              text,
    error_at           timestamptz,
    is_alive           boolean,
    termination_reason text,
    runtime            text,
    runtime_handle     text,
    pid                bigint,
    workspace_path     text,
    branch             text,
    title              text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    last_event_at      timestamptz,
    ended_at           timestamptz,
    PRIMARY KEY (tenant_id, machine_id, id)
);
-- `aod team sessions`: what needs a human, across machines, newest first (keyset on updated_at, key).
CREATE INDEX sessions_by_status ON aod.sessions (status, updated_at DESC, tenant_id, machine_id, id);

CREATE TABLE aod.events (
    uid           text PRIMARY KEY,
    tenant_id     text NOT NULL DEFAULT current_user,
    machine_id    text NOT NULL,
    id            bigint NOT NULL,
    session_id    text,
    agent         text NOT NULL,
    kind          text NOT NULL,
    tool_name     text,
    tool_use_id   text,
    occurred_at   timestamptz NOT NULL,
    received_at   timestamptz NOT NULL,
    duration_ms   bigint,
    ok            boolean,
    payload       jsonb NOT NULL,
    payload_bytes bigint NOT NULL,
    trimmed       boolean NOT NULL
);
CREATE INDEX events_by_session ON aod.events (tenant_id, machine_id, session_id, id);

CREATE TABLE aod.prs (
    tenant_id       text NOT NULL DEFAULT current_user,
    machine_id      text NOT NULL,
    url             text NOT NULL,
    session_id      text,
    number          bigint,
    state           text,
    draft           boolean,
    review_decision text,
    mergeability    text,
    ci_state        text,
    head_sha        text,
    title           text,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, machine_id, url)
);

CREATE TABLE aod.pr_checks (
    tenant_id  text NOT NULL DEFAULT current_user,
    machine_id text NOT NULL,
    pr_url     text NOT NULL,
    name       text NOT NULL,
    commit_sha text NOT NULL,
    status     text NOT NULL,
    url        text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, machine_id, pr_url, name, commit_sha)
);
-- `aod team stats`: CI failures by repository over a window.
CREATE INDEX pr_checks_failed ON aod.pr_checks (updated_at) WHERE status = 'failed';

CREATE TABLE aod.escalations (
    tenant_id  text NOT NULL DEFAULT current_user,
    machine_id text NOT NULL,
    id         bigint NOT NULL,
    session_id text,
    reaction   text NOT NULL,
    priority   text NOT NULL,
    message    text NOT NULL,
    created_at timestamptz NOT NULL,
    acked_at   timestamptz,
    PRIMARY KEY (tenant_id, machine_id, id)
);

GRANT USAGE ON SCHEMA aod TO aod_member, aod_team;
GRANT SELECT, INSERT, UPDATE ON aod.projects, aod.sessions, aod.events, aod.prs, aod.pr_checks, aod.escalations
    TO aod_member;
GRANT SELECT ON aod.projects, aod.sessions, aod.events, aod.prs, aod.pr_checks, aod.escalations TO aod_team;

-- Row-level security: a role sees and writes its own tenant's rows; a member of aod_team reads
-- every tenant's. The tenant is the authenticated role (current_user), never a setting a client
-- could change for itself. The owner (who runs these migrations) is exempt, as PostgreSQL has it.
ALTER TABLE aod.projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE aod.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE aod.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE aod.prs ENABLE ROW LEVEL SECURITY;
ALTER TABLE aod.pr_checks ENABLE ROW LEVEL SECURITY;
ALTER TABLE aod.escalations ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_rows ON aod.projects USING (tenant_id = current_user) WITH CHECK (tenant_id = current_user);
CREATE POLICY own_rows ON aod.sessions USING (tenant_id = current_user) WITH CHECK (tenant_id = current_user);
CREATE POLICY own_rows ON aod.events USING (tenant_id = current_user) WITH CHECK (tenant_id = current_user);
CREATE POLICY own_rows ON aod.prs USING (tenant_id = current_user) WITH CHECK (tenant_id = current_user);
CREATE POLICY own_rows ON aod.pr_checks USING (tenant_id = current_user) WITH CHECK (tenant_id = current_user);
CREATE POLICY own_rows ON aod.escalations USING (tenant_id = current_user) WITH CHECK (tenant_id = current_user);

CREATE POLICY team_reads ON aod.projects FOR SELECT TO aod_team USING (true);
CREATE POLICY team_reads ON aod.sessions FOR SELECT TO aod_team USING (true);
CREATE POLICY team_reads ON aod.events FOR SELECT TO aod_team USING (true);
CREATE POLICY team_reads ON aod.prs FOR SELECT TO aod_team USING (true);
CREATE POLICY team_reads ON aod.pr_checks FOR SELECT TO aod_team USING (true);
CREATE POLICY team_reads ON aod.escalations FOR SELECT TO aod_team USING (true);
