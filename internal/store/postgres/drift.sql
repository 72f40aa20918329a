-- name: DriftStacks :many
-- Every ready dedicated stack and pool stack.
SELECT 'dedicated'::text AS kind, region, stack_name, tenant_id FROM placements
WHERE kind = 'dedicated' AND status = 'ready'
UNION ALL
SELECT 'pool'::text AS kind, region, stack_name, ''::text AS tenant_id FROM pools WHERE status = 'ready'
ORDER BY region, stack_name;

-- name: StackDriftList :many
SELECT * FROM stack_drift ORDER BY region, stack_name;

-- name: StackDriftGet :one
SELECT * FROM stack_drift WHERE region = @region AND stack_name = @stack_name;

-- name: StackDriftUpsert :exec
INSERT INTO stack_drift (region, stack_name, status, resources, detection_id, checked_at)
VALUES (@region, @stack_name, @status, @resources, @detection_id, @checked_at)
ON CONFLICT (region, stack_name) DO UPDATE SET
    status = excluded.status,
    resources = excluded.resources,
    detection_id = excluded.detection_id,
    checked_at = excluded.checked_at;
