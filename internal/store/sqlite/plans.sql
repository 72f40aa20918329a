-- name: PlanGet :one
SELECT * FROM plans WHERE name = @name;

-- name: PlanList :many
SELECT * FROM plans WHERE name > @after ORDER BY name LIMIT @max_rows;

-- name: PlanInsert :execrows
-- A plan of the name makes no row.
INSERT INTO plans (name, description, limits, monthly_events_mode, profiles_mode, version, created_at, updated_at)
VALUES (@name, @description, @limits, @monthly_events_mode, @profiles_mode, @version, @created_at, @updated_at)
ON CONFLICT (name) DO NOTHING;

-- name: PlanUpdate :execrows
UPDATE plans SET description = @description, limits = @limits, monthly_events_mode = @monthly_events_mode, profiles_mode = @profiles_mode,
    version = @version, updated_at = @updated_at
WHERE name = @name AND version = @prev_version;
