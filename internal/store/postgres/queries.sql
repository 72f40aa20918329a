-- name: TenantGet :one
SELECT * FROM tenants WHERE id = @id;

-- name: TenantGetForUpdate :one
SELECT * FROM tenants WHERE id = @id FOR UPDATE;

-- name: TenantInsert :one
INSERT INTO tenants (
    id, slug, name, tier, status, status_reason, home_region, regions, plan,
    contact_email, labels, version, created_at, updated_at, deleted_at
) VALUES (
    @id, @slug, @name, @tier, @status, @status_reason, @home_region, @regions, @plan,
    @contact_email, @labels, @version, @created_at, @updated_at, @deleted_at
)
RETURNING seq;

-- name: TenantUpdate :execrows
UPDATE tenants SET
    slug = @slug,
    name = @name,
    tier = @tier,
    status = @status,
    status_reason = @status_reason,
    home_region = @home_region,
    regions = @regions,
    plan = @plan,
    contact_email = @contact_email,
    labels = @labels,
    version = @version,
    updated_at = @updated_at,
    deleted_at = @deleted_at
WHERE id = @id AND version = @prev_version;

-- name: TenantExists :one
SELECT EXISTS (SELECT 1 FROM tenants WHERE id = @id);

-- name: TenantList :many
-- An empty filter matches every tenant.
SELECT * FROM tenants
WHERE seq > @after_seq
    AND (@status::text = '' OR status = @status::text)
    AND (@tier::text = '' OR tier = @tier::text)
    AND (@region::text = '' OR regions @> jsonb_build_array(@region::text))
    AND (@search::text = '' OR strpos(lower(name), @search::text) > 0 OR strpos(slug, @search::text) > 0 OR strpos(id, @search::text) > 0)
    AND (@label_key::text = '' OR (labels ->> @label_key::text) IS NOT NULL AND (NOT @label_has_value::boolean OR labels ->> @label_key::text = @label_value::text))
ORDER BY seq
LIMIT @max_rows;

-- name: IdempotencyClaim :one
-- Inserts a fresh claim, or takes over an existing record when it has
-- expired or is an in-flight claim of the same request whose lock lapsed.
-- It returns no row when the existing record stands.
INSERT INTO idempotency_keys AS k (
    principal, key, request_hash, state, locked_until, status, header, body, created_at, expires_at
) VALUES (
    @principal, @key, @request_hash, 'in_flight', @locked_until, 0, NULL, NULL, @created_at, @expires_at
)
ON CONFLICT (principal, key) DO UPDATE SET
    request_hash = excluded.request_hash,
    state = excluded.state,
    locked_until = excluded.locked_until,
    status = excluded.status,
    header = excluded.header,
    body = excluded.body,
    created_at = excluded.created_at,
    expires_at = excluded.expires_at
WHERE k.expires_at <= @now
    OR (k.state = 'in_flight' AND k.locked_until <= @now AND k.request_hash = excluded.request_hash)
RETURNING *;

-- name: IdempotencyGet :one
SELECT * FROM idempotency_keys WHERE principal = @principal AND key = @key;

-- name: IdempotencyComplete :execrows
UPDATE idempotency_keys SET state = 'completed', status = @status, header = @header, body = @body
WHERE principal = @principal AND key = @key AND state = 'in_flight';

-- name: IdempotencyRelease :exec
DELETE FROM idempotency_keys WHERE principal = @principal AND key = @key AND state = 'in_flight';

-- name: IdempotencyDeleteExpired :execrows
DELETE FROM idempotency_keys WHERE expires_at <= @now;
