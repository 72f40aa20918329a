-- +goose Up

-- profiles_mode is what a plan's limit of profiles does to a tenant over
-- it (plans.Plan.ProfilesMode).
ALTER TABLE plans ADD COLUMN profiles_mode TEXT NOT NULL DEFAULT 'warn' CHECK (profiles_mode IN ('warn', 'block'));

-- +goose Down
ALTER TABLE plans DROP COLUMN profiles_mode;
