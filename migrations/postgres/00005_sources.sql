-- +goose Up

-- sources are tenants' named event sources and their write keys. Only a
-- key's SHA-256 is stored. Revoked sources stay as records (revoked_at
-- set): their key still identifies them, so that a request with a revoked
-- key can be told apart from one with an unknown key.
CREATE TABLE sources (
    -- seq is the creation order that list cursors carry; it only grows.
    seq bigint NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    -- Tenants are never deleted (they become tombstones), so the reference
    -- never blocks anything.
    tenant_id text NOT NULL REFERENCES tenants (id),
    name text NOT NULL,
    -- key_hash is the SHA-256 of the current write key. It is unique over
    -- every source, revoked ones included: ingestion finds a source by its
    -- key alone.
    key_hash bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    key_hint text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    rotated_at timestamptz,
    revoked_at timestamptz,
    version bigint NOT NULL CHECK (version > 0)
);

-- A name is unique among a tenant's live sources, so a revoked source's
-- name can be used again. The adapter maps a violation to
-- ErrSourceNameTaken by this index's name.
CREATE UNIQUE INDEX sources_tenant_name_live_key ON sources (tenant_id, name) WHERE revoked_at IS NULL;

-- SourceList pages a tenant's sources in seq order.
CREATE INDEX sources_tenant_seq_idx ON sources (tenant_id, seq);

-- +goose Down
DROP TABLE sources;
