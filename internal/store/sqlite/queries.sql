-- name: TenantGet :one
SELECT * FROM tenants WHERE id = @id;

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
    AND (CAST(@status AS TEXT) = '' OR status = @status)
    AND (CAST(@tier AS TEXT) = '' OR tier = @tier)
    AND (CAST(@region AS TEXT) = '' OR EXISTS (SELECT 1 FROM json_each(tenants.regions) WHERE json_each.value = @region))
    AND (CAST(@search AS TEXT) = '' OR instr(lower(name), @search) > 0 OR instr(slug, @search) > 0 OR instr(id, @search) > 0)
    -- Label keys are [a-z0-9_./-], so a quoted path names exactly the key.
    AND (CAST(@label_key AS TEXT) = '' OR json_type(labels, '$.' || json_quote(CAST(@label_key AS TEXT))) IS NOT NULL
        AND (NOT CAST(@label_has_value AS BOOLEAN) OR json_extract(labels, '$.' || json_quote(CAST(@label_key AS TEXT))) = CAST(@label_value AS TEXT)))
ORDER BY seq
LIMIT @max_rows;

-- name: IdempotencyClearClaimable :exec
-- Deletes the existing record when a new claim may take it over: it has
-- expired, or it is an in-flight claim of the same request whose lock lapsed.
-- A claim runs this and IdempotencyInsertClaim in one transaction; the
-- PostgreSQL adapter does both in one upsert, but sqlc's SQLite parser does
-- not bind parameters in the WHERE of an upsert's DO UPDATE.
DELETE FROM idempotency_keys
WHERE principal = @principal AND key = @key
    AND (expires_at <= @now
        OR (state = 'in_flight' AND locked_until <= @now AND request_hash = @request_hash));

-- name: IdempotencyInsertClaim :one
-- Inserts a fresh claim; it returns no row when a record exists.
INSERT INTO idempotency_keys (
    principal, key, request_hash, state, locked_until, status, header, body, created_at, expires_at
) VALUES (
    @principal, @key, @request_hash, 'in_flight', @locked_until, 0, NULL, NULL, @created_at, @expires_at
)
ON CONFLICT (principal, key) DO NOTHING
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
