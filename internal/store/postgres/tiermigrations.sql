-- name: TierMigrationInsert :one
INSERT INTO tier_migrations (id, tenant_id, from_tier, to_tier, step, state, body, version, created_at, updated_at)
VALUES (@id, @tenant_id, @from_tier, @to_tier, @step, @state, @body, 1, @created_at, @created_at)
RETURNING seq;

-- name: TierMigrationGet :one
SELECT * FROM tier_migrations WHERE id = @id;

-- name: TierMigrationLatest :one
SELECT * FROM tier_migrations WHERE tenant_id = @tenant_id ORDER BY seq DESC LIMIT 1;

-- name: TierMigrationUpdate :one
-- Returns no row when the migration is absent or not at @prev_version.
UPDATE tier_migrations SET
    step = @step,
    state = @state,
    error = @error,
    body = @body,
    fenced_at = @fenced_at,
    fence_until = @fence_until,
    version = version + 1,
    updated_at = @updated_at,
    finished_at = @finished_at
WHERE id = @id AND version = @prev_version
RETURNING *;

-- name: TierMigrationSwitchPlacement :execrows
-- Points the tenant's ready placement of kind @from_kind in the Region at
-- the target.
UPDATE placements SET
    kind = @kind,
    stack_name = @stack_name,
    status = 'ready',
    stack_status = @stack_status,
    template_version = @template_version,
    outputs = @outputs,
    last_error = '',
    attempt = attempt + 1,
    version = version + 1,
    updated_at = @updated_at
WHERE tenant_id = @tenant_id AND region = @region AND kind = @from_kind AND status = 'ready';

-- name: TierMigrationSwitchTenant :execrows
UPDATE tenants SET tier = @tier, version = version + 1, updated_at = @updated_at
WHERE id = @id AND tier = @from_tier AND status IN ('active', 'suspended');

-- name: TierMigrationClaim :execrows
-- The job @job takes or renews the migration's lease to @lease_until: it
-- holds it already, or nobody does, or its holder's lapsed before @now.
UPDATE tier_migrations SET lease_job = @job, lease_until = @lease_until
WHERE id = @id AND state = 'running'
    AND (lease_job IS NULL OR lease_job = @job OR lease_until IS NULL OR lease_until < @now);

-- name: TierMigrationLapsed :many
-- The running migrations whose job's lease lapsed before @now.
SELECT id, lease_until FROM tier_migrations
WHERE state = 'running' AND lease_until IS NOT NULL AND lease_until < @now;

-- name: TierMigrationRunning :many
SELECT tenant_id, fence_until FROM tier_migrations WHERE state = 'running';
