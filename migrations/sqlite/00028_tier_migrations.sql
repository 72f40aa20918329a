-- +goose Up

-- As in the PostgreSQL migration of the same number.
CREATE TABLE tier_migrations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    from_tier TEXT NOT NULL CHECK (from_tier IN ('pooled', 'dedicated')),
    to_tier TEXT NOT NULL CHECK (to_tier IN ('pooled', 'dedicated')),
    step TEXT NOT NULL CHECK (step IN ('provision', 'copy', 'fence', 'delta', 'switch', 'grants', 'purge', 'done')),
    state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    error TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(body) AND json_type(body) = 'object'),
    fenced_at TEXT,
    fence_until TEXT,
    lease_job INTEGER,
    lease_until TEXT,
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT
);

CREATE UNIQUE INDEX tier_migrations_running_key ON tier_migrations (tenant_id) WHERE state = 'running';

CREATE INDEX tier_migrations_tenant_seq_idx ON tier_migrations (tenant_id, seq);

-- +goose Down
DROP TABLE tier_migrations;
