-- name: SourceInsert :one
-- A live source with the same name violates the partial unique index
-- sources_tenant_name_live_key.
INSERT INTO sources (
    id, tenant_id, name, key_hash, key_hint, created_at, rotated_at, revoked_at, allowed_origins, version
) VALUES (
    @id, @tenant_id, @name, @key_hash, @key_hint, @created_at, @rotated_at, @revoked_at, @allowed_origins, @version
)
RETURNING *;

-- name: SourceGet :one
SELECT * FROM sources WHERE tenant_id = @tenant_id AND id = @id;

-- name: SourceByKeyHash :one
SELECT * FROM sources WHERE key_hash = @key_hash;

-- name: SourceList :many
SELECT * FROM sources
WHERE tenant_id = @tenant_id AND seq > @after_seq
ORDER BY seq
LIMIT @max_rows::bigint;

-- name: SourceUpdate :one
-- Returns no row when the source is absent or its version is not
-- @prev_version. id, tenant_id, created_at and seq never change.
UPDATE sources SET
    name = @name,
    key_hash = @key_hash,
    key_hint = @key_hint,
    rotated_at = @rotated_at,
    revoked_at = @revoked_at,
    allowed_origins = @allowed_origins,
    version = version + 1
WHERE tenant_id = @tenant_id AND id = @id AND version = @prev_version
RETURNING *;

-- name: SourceExists :one
SELECT EXISTS (SELECT 1 FROM sources WHERE tenant_id = @tenant_id AND id = @id);

-- name: SourceRevokeAll :execrows
-- Revokes the tenant's live sources; revoked ones keep their revoked_at
-- and version.
UPDATE sources SET
    revoked_at = @revoked_at,
    version = version + 1
WHERE tenant_id = @tenant_id AND revoked_at IS NULL;
