-- +goose Up

-- tier_migrations records each move of a tenant between tiers (package
-- migration): pooled to dedicated or back. The migration's job takes it
-- through its steps (provision, copy, fence, delta, switch, grants, purge)
-- and records each here, so a job that dies is resumed where it stopped.
-- Rows are kept once finished, as the tenant's migration history.
CREATE TABLE tier_migrations (
    -- seq orders a tenant's migrations; the latest is the one shown.
    seq bigint NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    from_tier text NOT NULL CHECK (from_tier IN ('pooled', 'dedicated')),
    to_tier text NOT NULL CHECK (to_tier IN ('pooled', 'dedicated')),
    step text NOT NULL CHECK (step IN ('provision', 'copy', 'fence', 'delta', 'switch', 'grants', 'purge', 'done')),
    state text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    error text NOT NULL DEFAULT '',
    -- body holds what no query reads: the source and target placements,
    -- counts and the attempt.
    body jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(body) = 'object'),
    -- The write fence: while fence_until is in the future, ingestion for
    -- the tenant answers 503 with Retry-After; fenced_at is when it was
    -- raised, from which the drain is counted.
    fenced_at timestamptz,
    fence_until timestamptz,
    -- The job working the migration holds it under a lease, as rollouts.
    lease_job bigint,
    lease_until timestamptz,
    version bigint NOT NULL CHECK (version > 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    finished_at timestamptz
);

-- One running migration per tenant; the adapter maps a violation to
-- migration.ErrRunning by this index's name.
CREATE UNIQUE INDEX tier_migrations_running_key ON tier_migrations (tenant_id) WHERE state = 'running';

CREATE INDEX tier_migrations_tenant_seq_idx ON tier_migrations (tenant_id, seq);

-- +goose Down
DROP TABLE tier_migrations;
