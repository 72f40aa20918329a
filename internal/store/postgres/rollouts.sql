-- name: RolloutInsert :one
INSERT INTO rollouts (id, state, body, version, created_at)
VALUES (@id, @state, @body, 1, @created_at)
RETURNING seq;

-- name: RolloutTargetInsert :exec
INSERT INTO rollout_targets (rollout_id, idx, region, stack_name, state, held, detail, version, updated_at)
VALUES (@rollout_id, @idx, @region, @stack_name, @state, true, @detail, 1, @updated_at);

-- name: RolloutGet :one
SELECT * FROM rollouts WHERE id = @id;

-- name: RolloutList :many
-- Newest first, those before @before_seq when it is positive.
SELECT * FROM rollouts
WHERE (@before_seq::bigint <= 0 OR seq < @before_seq::bigint)
ORDER BY seq DESC
LIMIT @max_rows;

-- name: RolloutListActive :many
SELECT * FROM rollouts WHERE finished_at IS NULL ORDER BY seq;

-- name: RolloutUpdate :one
-- Returns no row when the rollout is absent or not at @prev_version.
UPDATE rollouts SET state = @state, body = @body, finished_at = @finished_at, version = version + 1
WHERE id = @id AND version = @prev_version
RETURNING *;

-- name: RolloutExists :one
SELECT EXISTS (SELECT 1 FROM rollouts WHERE id = @id);

-- name: RolloutRelease :exec
-- A finished rollout holds none of its stacks.
UPDATE rollout_targets SET held = false WHERE rollout_id = @rollout_id AND held;

-- name: RolloutApprove :exec
-- The targets awaiting approval are approved and executed next.
UPDATE rollout_targets SET
    state = 'executing',
    detail = detail || '{"approved": true, "executed": false}'::jsonb,
    version = version + 1,
    updated_at = @updated_at
WHERE rollout_id = @rollout_id AND state = 'awaiting_approval';

-- name: RolloutTargets :many
SELECT * FROM rollout_targets WHERE rollout_id = @rollout_id ORDER BY idx;

-- name: RolloutTargetUpdate :one
-- Returns no row when the target is not at @prev_version.
UPDATE rollout_targets SET state = @state, held = @held, detail = @detail, version = version + 1, updated_at = @updated_at
WHERE rollout_id = @rollout_id AND idx = @idx AND version = @prev_version
RETURNING *;

-- name: RolloutCandidatesDedicated :many
-- Dedicated tenants' ready stacks.
SELECT p.region, p.stack_name, p.template_version, t.id AS tenant_id, t.slug, t.status, t.labels
FROM placements p JOIN tenants t ON t.id = p.tenant_id
WHERE p.kind = 'dedicated' AND p.status = 'ready'
ORDER BY p.region, p.stack_name;

-- name: RolloutCandidatesPools :many
SELECT region, stack_name, template_version FROM pools WHERE status = 'ready' ORDER BY region;

-- name: RolloutPooledTenants :many
-- The live tenants with a slice of each Region's pool.
SELECT p.region, t.id, t.labels
FROM placements p JOIN tenants t ON t.id = p.tenant_id
WHERE p.kind = 'pooled' AND p.status <> 'deleted' AND t.status IN ('active', 'suspended')
ORDER BY p.region, t.id;

-- name: StackVersionSetDedicated :exec
UPDATE placements SET template_version = @template_version, stack_status = @stack_status, version = version + 1, updated_at = @updated_at
WHERE tenant_id = @tenant_id AND region = @region AND stack_name = @stack_name AND kind = 'dedicated';

-- name: StackVersionSetPool :exec
UPDATE pools SET template_version = @template_version, stack_status = @stack_status, version = version + 1, updated_at = @updated_at
WHERE region = @region AND stack_name = @stack_name;

-- name: StackVersionSetSlices :exec
-- A pool's slices are at their pool's version.
UPDATE placements SET template_version = @template_version, version = version + 1, updated_at = @updated_at
WHERE region = @region AND kind = 'pooled' AND status = 'ready';

-- name: RolloutCounts :many
-- The rollout's targets per state.
SELECT state, count(*) AS n FROM rollout_targets WHERE rollout_id = @rollout_id GROUP BY state ORDER BY state;

-- name: RolloutClaim :execrows
-- The job @job takes or renews the rollout's lease to @lease_until: it
-- holds it already, or nobody does, or its holder's lapsed before @now.
UPDATE rollouts SET lease_job = @job, lease_until = @lease_until
WHERE id = @id AND finished_at IS NULL
    AND (lease_job IS NULL OR lease_job = @job OR lease_until IS NULL OR lease_until < @now);

-- name: RolloutLeaseRelease :exec
UPDATE rollouts SET lease_job = NULL, lease_until = NULL WHERE id = @id AND lease_job = @job;

-- name: RolloutLapsed :many
-- The unfinished rollouts whose job's lease lapsed before @now.
SELECT id, lease_until::timestamptz AS lease_until FROM rollouts
WHERE finished_at IS NULL AND lease_until < @now
ORDER BY seq;
