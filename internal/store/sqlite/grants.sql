-- name: PrincipalInsert :one
-- Returns no row when the principal is registered, to this tenant or
-- another.
INSERT INTO principals (tenant_id, principal, created_at)
VALUES (@tenant_id, @principal, @created_at)
ON CONFLICT (principal) DO NOTHING
RETURNING *;

-- name: PrincipalGet :one
SELECT * FROM principals WHERE tenant_id = @tenant_id AND principal = @principal;

-- name: PrincipalGetAnyTenant :one
-- Finds which tenant a principal is registered to.
SELECT * FROM principals WHERE principal = @principal;

-- name: PrincipalList :many
SELECT * FROM principals
WHERE tenant_id = @tenant_id AND seq > @after_seq
ORDER BY seq
LIMIT @max_rows;

-- name: PrincipalDelete :execrows
DELETE FROM principals WHERE tenant_id = @tenant_id AND principal = @principal;

-- name: GrantInsert :one
-- Returns no row when the tenant has a grant that is not revoked with the
-- same grant_key: the conflict target is the partial unique index
-- grants_tenant_key_live_key.
INSERT INTO grants (
    id, tenant_id, principal, region, database, table_name, columns, permissions, tags,
    grant_key, cells_filter, status, reason, created_by, version, created_at, updated_at
) VALUES (
    @id, @tenant_id, @principal, @region, @database, @table_name, @columns, @permissions, @tags,
    @grant_key, @cells_filter, @status, @reason, @created_by, @version, @created_at, @updated_at
)
ON CONFLICT (tenant_id, grant_key) WHERE status <> 'revoked' DO NOTHING
RETURNING *;

-- name: GrantGet :one
SELECT * FROM grants WHERE tenant_id = @tenant_id AND id = @id;

-- name: GrantGetLiveByKey :one
-- The grant, not revoked, that holds a key.
SELECT * FROM grants
WHERE tenant_id = @tenant_id AND grant_key = @grant_key AND status <> 'revoked';

-- name: GrantUpdate :one
-- Returns no row when the grant is absent or its version is not
-- @prev_version. Only the fields a grant's life changes are stored (the
-- database changes when the tenant moves tiers: package migration).
UPDATE grants SET
    database = @database,
    permissions = @permissions,
    grant_key = @grant_key,
    cells_filter = @cells_filter,
    status = @status,
    reason = @reason,
    version = version + 1,
    updated_at = @updated_at
WHERE tenant_id = @tenant_id AND id = @id AND version = @prev_version
RETURNING *;

-- name: GrantList :many
-- An empty filter matches every grant.
SELECT * FROM grants
WHERE seq > @after_seq
    AND (CAST(@tenant_id AS TEXT) = '' OR tenant_id = @tenant_id)
    AND (CAST(@principal AS TEXT) = '' OR principal = @principal)
    AND (CAST(@status AS TEXT) = '' OR status = @status)
ORDER BY seq
LIMIT @max_rows;

-- name: GrantListLive :many
SELECT * FROM grants
WHERE tenant_id = @tenant_id AND status <> 'revoked'
ORDER BY seq;
