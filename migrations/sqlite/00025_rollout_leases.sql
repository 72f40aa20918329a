-- +goose Up

-- As in the PostgreSQL migration of the same number.
ALTER TABLE rollouts ADD COLUMN lease_job INTEGER;
ALTER TABLE rollouts ADD COLUMN lease_until TEXT;

-- +goose Down
ALTER TABLE rollouts DROP COLUMN lease_until;
ALTER TABLE rollouts DROP COLUMN lease_job;
