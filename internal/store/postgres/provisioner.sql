-- name: PlacementInsert :one
-- Returns no row when the placement exists.
INSERT INTO placements (
    tenant_id, region, kind, stack_name, status, stack_status, template_version,
    outputs, last_error, attempt, version, created_at, updated_at
) VALUES (
    @tenant_id, @region, @kind, @stack_name, @status, @stack_status, @template_version,
    @outputs, @last_error, @attempt, @version, @created_at, @updated_at
)
ON CONFLICT (tenant_id, region) DO NOTHING
RETURNING *;

-- name: PlacementGet :one
SELECT * FROM placements WHERE tenant_id = @tenant_id AND region = @region;

-- name: PlacementList :many
SELECT * FROM placements WHERE tenant_id = @tenant_id ORDER BY region;

-- name: PlacementListInFlight :many
-- The statuses of provisioner.Status.InFlight.
SELECT * FROM placements
WHERE status IN ('creating', 'replacing', 'deleting')
ORDER BY region, tenant_id;

-- name: PlacementUpdate :one
-- Returns no row when the placement is absent or its version is not
-- @prev_version. The key and created_at never change.
UPDATE placements SET
    kind = @kind,
    stack_name = @stack_name,
    stack_id = @stack_id,
    status = @status,
    stack_status = @stack_status,
    template_version = @template_version,
    outputs = @outputs,
    last_error = @last_error,
    attempt = @attempt,
    version = version + 1,
    updated_at = @updated_at
WHERE tenant_id = @tenant_id AND region = @region AND version = @prev_version
RETURNING *;

-- name: PlacementClaim :one
-- PlacementUpdate that also takes the placement's claim: claim_version
-- increases and the lease runs to @lease_until. Returns no row when the
-- placement is absent, its version is not @prev_version, or another
-- claim's lease is live at @now.
UPDATE placements SET
    kind = @kind,
    stack_name = @stack_name,
    stack_id = @stack_id,
    status = @status,
    stack_status = @stack_status,
    template_version = @template_version,
    outputs = @outputs,
    last_error = @last_error,
    attempt = @attempt,
    version = version + 1,
    updated_at = @updated_at,
    claim_version = claim_version + 1,
    lease_until = @lease_until
WHERE tenant_id = @tenant_id AND region = @region AND version = @prev_version
    AND (lease_until IS NULL OR lease_until < @now)
RETURNING *;

-- name: PlacementRenew :execrows
-- Extends claim @claim_version's lease, if it is still the placement's
-- claim and has not lapsed at @now. The version increases, so an update
-- made from a read before the renewal (the poller taking the create for
-- lost) fails.
UPDATE placements SET lease_until = @lease_until, version = version + 1
WHERE tenant_id = @tenant_id AND region = @region
    AND claim_version = @claim_version AND lease_until >= @now;

-- name: PlacementExists :one
SELECT EXISTS (SELECT 1 FROM placements WHERE tenant_id = @tenant_id AND region = @region);

-- name: PoolInsert :one
-- Returns no row when the pool exists.
INSERT INTO pools (
    region, stack_name, status, stack_status, template_version,
    outputs, last_error, attempt, version, created_at, updated_at
) VALUES (
    @region, @stack_name, @status, @stack_status, @template_version,
    @outputs, @last_error, @attempt, @version, @created_at, @updated_at
)
ON CONFLICT (region) DO NOTHING
RETURNING *;

-- name: PoolGet :one
SELECT * FROM pools WHERE region = @region;

-- name: PoolList :many
-- tenant_count is the Region's pooled placements that are not deleted.
SELECT sqlc.embed(pools),
    (SELECT count(*) FROM placements
        WHERE placements.region = pools.region
            AND placements.kind = 'pooled'
            AND placements.status <> 'deleted') AS tenant_count
FROM pools
ORDER BY region;

-- name: PoolUpdate :one
-- Returns no row when the pool is absent or its version is not
-- @prev_version. The key and created_at never change.
UPDATE pools SET
    stack_name = @stack_name,
    stack_id = @stack_id,
    status = @status,
    stack_status = @stack_status,
    template_version = @template_version,
    outputs = @outputs,
    last_error = @last_error,
    attempt = @attempt,
    version = version + 1,
    updated_at = @updated_at
WHERE region = @region AND version = @prev_version
RETURNING *;

-- name: PoolClaim :one
-- PlacementClaim for pools.
UPDATE pools SET
    stack_name = @stack_name,
    stack_id = @stack_id,
    status = @status,
    stack_status = @stack_status,
    template_version = @template_version,
    outputs = @outputs,
    last_error = @last_error,
    attempt = @attempt,
    version = version + 1,
    updated_at = @updated_at,
    claim_version = claim_version + 1,
    lease_until = @lease_until
WHERE region = @region AND version = @prev_version
    AND (lease_until IS NULL OR lease_until < @now)
RETURNING *;

-- name: PoolRenew :execrows
-- PlacementRenew for pools.
UPDATE pools SET lease_until = @lease_until, version = version + 1
WHERE region = @region AND claim_version = @claim_version AND lease_until >= @now;

-- name: PoolExists :one
SELECT EXISTS (SELECT 1 FROM pools WHERE region = @region);

-- name: TenantsStalled :many
-- Tenants in provisioning that no one is working on: not changed since
-- @quiet_since, and no placement of theirs in flight (the poller watches
-- those), under a live claim at @now, or changed since @quiet_since.
SELECT t.id FROM tenants t
WHERE t.status = 'provisioning' AND t.updated_at < @quiet_since
    AND NOT EXISTS (
        SELECT 1 FROM placements p
        WHERE p.tenant_id = t.id
            AND (p.status IN ('creating', 'replacing', 'deleting')
                OR p.updated_at >= @quiet_since
                OR p.lease_until >= @now))
ORDER BY t.seq
LIMIT @max_rows::bigint;

-- name: StackEventInsert :execrows
-- Affects no row when the event is already recorded.
INSERT INTO stack_events (
    tenant_id, region, event_id, time, logical_id, resource_type, status, reason
) VALUES (
    @tenant_id, @region, @event_id, @time, @logical_id, @resource_type, @status, @reason
)
ON CONFLICT (tenant_id, region, event_id) DO NOTHING;

-- name: StackEventList :many
-- Newest first; @before_seq <= 0 starts at the newest.
SELECT * FROM stack_events
WHERE tenant_id = @tenant_id AND region = @region
    AND (@before_seq::bigint <= 0 OR seq < @before_seq::bigint)
ORDER BY seq DESC
LIMIT @max_rows::bigint;

-- name: TenantPlacements :many
-- A tenant and its placements in one read: a row per placement, or one row
-- with no placement (NULL region) while it has none.
SELECT t.id, t.tier, t.home_region, t.regions,
       p.region, p.kind, p.status, p.stack_name, p.outputs
FROM tenants t LEFT JOIN placements p ON p.tenant_id = t.id
WHERE t.id = @id
ORDER BY p.region;
