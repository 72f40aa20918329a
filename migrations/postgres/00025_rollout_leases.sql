-- +goose Up

-- A rollout's job holds the rollout under a lease while it works it
-- (package rollouts): lease_job is the River job's ID, lease_until when
-- the lease lapses unless renewed. A job whose replica died is taken over
-- once its lease lapses, by a new job the sweep inserts.
ALTER TABLE rollouts ADD COLUMN lease_job bigint;
ALTER TABLE rollouts ADD COLUMN lease_until timestamptz;

-- +goose Down
ALTER TABLE rollouts DROP COLUMN lease_until;
ALTER TABLE rollouts DROP COLUMN lease_job;
