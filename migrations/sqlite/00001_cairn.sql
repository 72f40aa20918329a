-- +goose Up

-- Timestamps are TEXT in one fixed-width UTC layout,
-- 2006-01-02T15:04:05.000000Z, so they round-trip at microsecond precision
-- and compare correctly as strings.

-- tenants holds every tenant ever onboarded; offboarded ones stay as
-- tombstones with status 'deleted'.
CREATE TABLE tenants (
    -- seq is the insertion order that list cursors carry. AUTOINCREMENT
    -- guarantees a seq is never handed out twice, even after deletes.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    tier TEXT NOT NULL CHECK (tier IN ('pooled', 'dedicated')),
    status TEXT NOT NULL CHECK (status IN ('provisioning', 'active', 'suspended', 'failed', 'deprovisioning', 'deleted')),
    status_reason TEXT NOT NULL DEFAULT '',
    home_region TEXT NOT NULL,
    regions TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(regions) AND json_type(regions) = 'array'),
    plan TEXT NOT NULL DEFAULT '',
    contact_email TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(labels) AND json_type(labels) = 'object'),
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
);

-- A slug is unique among tenants that are not deleted, so a tombstone's
-- slug can be used again. The adapter maps a violation of it to
-- ErrSlugTaken.
CREATE UNIQUE INDEX tenants_slug_live_key ON tenants (slug) WHERE status <> 'deleted';

-- List filters; seq last so a filtered page is an index range scan. The
-- region filter scans: a control plane has few enough tenants.
CREATE INDEX tenants_status_seq_idx ON tenants (status, seq);
CREATE INDEX tenants_tier_seq_idx ON tenants (tier, seq);

-- idempotency_keys remembers POST requests by (principal, Idempotency-Key).
CREATE TABLE idempotency_keys (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_flight', 'completed')),
    locked_until TEXT NOT NULL,
    -- status, header and body are the response to replay once completed.
    status INTEGER NOT NULL DEFAULT 0,
    header BLOB,
    body BLOB,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (principal, key)
) WITHOUT ROWID;

CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE tenants;
