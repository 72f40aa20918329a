-- name: OffboardingStepInsert :exec
-- A step recorded again (a repeat after a crash) keeps its first time.
INSERT INTO offboarding_steps (tenant_id, step, done_at)
VALUES (@tenant_id, @step, @done_at)
ON CONFLICT (tenant_id, step) DO NOTHING;

-- name: OffboardingStepList :many
SELECT * FROM offboarding_steps WHERE tenant_id = @tenant_id ORDER BY done_at, step;
