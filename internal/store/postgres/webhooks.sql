-- name: WebhookEndpointCount :one
SELECT count(*) FROM webhook_endpoints WHERE tenant_id = @tenant_id;

-- name: WebhookEndpointInsert :one
INSERT INTO webhook_endpoints (
    id, tenant_id, url, description, event_types, segment_ids, traits, enabled, disabled_reason,
    secret, previous_secret, previous_secret_expires_at, failing_since, created_at, updated_at, version
) VALUES (
    @id, @tenant_id, @url, @description, @event_types, @segment_ids, @traits, @enabled, @disabled_reason,
    @secret, @previous_secret, @previous_secret_expires_at, @failing_since, @created_at, @updated_at, 1
)
RETURNING *;

-- name: WebhookEndpointGet :one
SELECT * FROM webhook_endpoints WHERE tenant_id = @tenant_id AND id = @id;

-- name: WebhookEndpointList :many
SELECT * FROM webhook_endpoints
WHERE tenant_id = @tenant_id AND seq > @after_seq
ORDER BY seq
LIMIT @max_rows::bigint;

-- name: WebhookEndpointsEnabled :many
SELECT * FROM webhook_endpoints WHERE tenant_id = @tenant_id AND enabled ORDER BY seq;

-- name: WebhookEndpointUpdate :one
-- Returns no row when the endpoint is absent or its version is not
-- @prev_version. id, tenant_id, created_at and seq never change.
UPDATE webhook_endpoints SET
    url = @url,
    description = @description,
    event_types = @event_types,
    segment_ids = @segment_ids,
    traits = @traits,
    enabled = @enabled,
    disabled_reason = @disabled_reason,
    secret = @secret,
    previous_secret = @previous_secret,
    previous_secret_expires_at = @previous_secret_expires_at,
    failing_since = @failing_since,
    updated_at = @updated_at,
    version = version + 1
WHERE tenant_id = @tenant_id AND id = @id AND version = @prev_version
RETURNING *;

-- name: WebhookEndpointDelete :execrows
DELETE FROM webhook_endpoints WHERE tenant_id = @tenant_id AND id = @id;

-- name: WebhookEndpointFailing :exec
-- Starts a failure streak unless one is running.
UPDATE webhook_endpoints SET failing_since = @at WHERE id = @id AND failing_since IS NULL;

-- name: WebhookEndpointGetByID :one
SELECT * FROM webhook_endpoints WHERE id = @id;

-- name: WebhookEndpointAnswering :exec
UPDATE webhook_endpoints SET failing_since = NULL WHERE id = @id AND failing_since IS NOT NULL;

-- name: WebhookEndpointsUnsealed :many
-- Endpoints whose secrets are still stored as plaintext "whsec_" values
-- (written by an older version), to be sealed.
SELECT * FROM webhook_endpoints
WHERE substr(secret, 1, 6) = 'whsec_' OR substr(previous_secret, 1, 6) = 'whsec_'
ORDER BY seq;

-- name: WebhookEndpointReseal :execrows
-- Replaces the stored secrets only if they are still @old_secret and
-- @old_previous_secret, so a concurrent rotation wins; the version stays,
-- since nothing a person set has changed.
UPDATE webhook_endpoints SET secret = @secret, previous_secret = @previous_secret
WHERE id = @id AND secret = @old_secret AND previous_secret = @old_previous_secret;

-- name: WebhookEndpointDisable :execrows
UPDATE webhook_endpoints SET
    enabled = false,
    disabled_reason = @reason,
    updated_at = @updated_at,
    version = version + 1
WHERE id = @id AND enabled;

-- name: WebhookDeliveryCancelPending :execrows
UPDATE webhook_deliveries SET status = 'cancelled', claimed_until = NULL
WHERE endpoint_id = @endpoint_id AND status = 'pending';

-- name: WebhookDeliveryInsert :one
-- Returns no row when the endpoint has the event already.
INSERT INTO webhook_deliveries (
    id, endpoint_id, event_id, event_type, tenant_id, order_key, payload, status, attempts,
    next_attempt_at, created_at
) VALUES (
    @id, @endpoint_id, @event_id, @event_type, @tenant_id, @order_key, @payload, 'pending', 0,
    @next_attempt_at, @created_at
)
ON CONFLICT (endpoint_id, event_id) DO NOTHING
RETURNING *;

-- name: WebhookDeliveryGet :one
SELECT * FROM webhook_deliveries WHERE endpoint_id = @endpoint_id AND id = @id;

-- name: WebhookDeliveryList :many
SELECT * FROM webhook_deliveries
WHERE endpoint_id = @endpoint_id AND seq < @before_seq
ORDER BY seq DESC
LIMIT @max_rows::bigint;

-- name: WebhookDeliveryListStatus :many
SELECT * FROM webhook_deliveries
WHERE endpoint_id = @endpoint_id AND status = @status AND seq < @before_seq
ORDER BY seq DESC
LIMIT @max_rows::bigint;

-- name: WebhookDeliveryClaim :many
-- Leases due pending deliveries of enabled endpoints: of an endpoint's
-- pending deliveries with one order key only the oldest (which may not be
-- due, or be under a lease, and then holds the others back), and no more
-- of an endpoint than @per_endpoint under a live lease at once. Rows that
-- another transaction has locked are skipped, not waited for; the adapter
-- runs this under a transaction-level advisory lock so that concurrent
-- claims also agree on each endpoint's count of leases.
WITH leased AS (
    -- Each endpoint's live leases, counted once (not once a row).
    SELECT f.endpoint_id, count(*) AS n FROM webhook_deliveries f
    WHERE f.status = 'pending' AND f.claimed_until >= @now::timestamptz
    GROUP BY f.endpoint_id
), candidates AS (
    SELECT d.id, d.endpoint_id, d.seq
    FROM webhook_deliveries d
    JOIN webhook_endpoints e ON e.id = d.endpoint_id
    WHERE e.enabled AND d.status = 'pending' AND d.next_attempt_at <= @now
        AND (d.claimed_until IS NULL OR d.claimed_until < @now)
        AND NOT EXISTS (
            SELECT 1 FROM webhook_deliveries o
            WHERE o.endpoint_id = d.endpoint_id AND o.order_key = d.order_key
                AND o.status = 'pending' AND o.seq < d.seq
        )
    FOR UPDATE OF d SKIP LOCKED
), ranked AS (
    SELECT c.id, c.endpoint_id, c.seq,
        row_number() OVER (PARTITION BY c.endpoint_id ORDER BY c.seq) AS rn
    FROM candidates c
), chosen AS (
    SELECT r.id FROM ranked r
    LEFT JOIN leased l ON l.endpoint_id = r.endpoint_id
    WHERE r.rn + coalesce(l.n, 0) <= @per_endpoint::bigint
    ORDER BY r.rn, r.seq
    LIMIT @max_rows::bigint
)
UPDATE webhook_deliveries w SET claimed_until = @lease_until
FROM chosen
WHERE w.id = chosen.id
RETURNING w.*;

-- name: WebhookClaimLock :exec
-- Serializes claims across replicas until the transaction ends.
SELECT pg_advisory_xact_lock(hashtext('cairn.webhook_deliveries.claim'));

-- name: WebhookEndpointLock :exec
-- Serializes endpoint inserts of one tenant until the transaction ends, so
-- that concurrent inserts never exceed the tenant's limit.
SELECT pg_advisory_xact_lock(hashtext('cairn.webhook_endpoints:' || @tenant_id::text));

-- name: WebhookDeliveryRenew :execrows
-- Moves a lease on to @lease_until, if it is still the one the attempt
-- holds (@lease) and has not lapsed at @now: a dispatcher renews the
-- leases of its attempts in flight, and one that was paused past its lease
-- has its renewal refused.
UPDATE webhook_deliveries SET claimed_until = @lease_until
WHERE id = @id AND status = 'pending' AND claimed_until = @lease AND claimed_until >= @now;

-- name: WebhookDeliveryRecord :execrows
-- Stores an attempt's result and releases the lease, if the lease is
-- still the one the attempt was made under.
UPDATE webhook_deliveries SET
    status = @status,
    attempts = attempts + 1,
    next_attempt_at = @next_attempt_at,
    last_attempt_at = @last_attempt_at,
    response_status = @response_status,
    response_body = @response_body,
    last_error = @last_error,
    claimed_until = NULL
WHERE id = @id AND status = 'pending' AND claimed_until = @lease;

-- name: WebhookDeliveryRetry :one
UPDATE webhook_deliveries SET
    status = 'pending', attempts = 0, next_attempt_at = @at, claimed_until = NULL
WHERE endpoint_id = @endpoint_id AND id = @id
RETURNING *;

-- name: WebhookDeliveryRecover :execrows
UPDATE webhook_deliveries SET
    status = 'pending', attempts = 0, next_attempt_at = @at, claimed_until = NULL
WHERE endpoint_id = @endpoint_id AND status = 'failed' AND created_at >= @since;

-- name: WebhookEndpointGetForUpdate :one
SELECT * FROM webhook_endpoints WHERE tenant_id = @tenant_id AND id = @id FOR UPDATE;
