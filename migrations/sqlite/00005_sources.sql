-- +goose Up

-- Timestamps are TEXT in the layout of 00001_cairn.sql,
-- 2006-01-02T15:04:05.000000Z.

-- sources are tenants' named event sources and their write keys. Only a
-- key's SHA-256 is stored. Revoked sources stay as records (revoked_at
-- set): their key still identifies them, so that a request with a revoked
-- key can be told apart from one with an unknown key.
CREATE TABLE sources (
    -- seq is the creation order that list cursors carry. AUTOINCREMENT
    -- guarantees a seq is never handed out twice, even after deletes.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    -- Tenants are never deleted (they become tombstones), so the reference
    -- never blocks anything.
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    -- key_hash is the SHA-256 of the current write key. It is unique over
    -- every source, revoked ones included: ingestion finds a source by its
    -- key alone. The type check keeps it a BLOB, which is what a lookup
    -- binds: in SQLite a TEXT never equals a BLOB.
    key_hash BLOB NOT NULL UNIQUE CHECK (typeof(key_hash) = 'blob' AND length(key_hash) = 32),
    key_hint TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    rotated_at TEXT,
    revoked_at TEXT,
    version INTEGER NOT NULL CHECK (version > 0)
);

-- A name is unique among a tenant's live sources, so a revoked source's
-- name can be used again. The adapter maps a violation to
-- ErrSourceNameTaken.
CREATE UNIQUE INDEX sources_tenant_name_live_key ON sources (tenant_id, name) WHERE revoked_at IS NULL;

-- SourceList pages a tenant's sources in seq order.
CREATE INDEX sources_tenant_seq_idx ON sources (tenant_id, seq);

-- +goose Down
DROP TABLE sources;
