-- +goose Up

-- A worker claims a placement or a pool before it asks the engine for the
-- stack, and holds the claim under a lease that it renews while it works.
-- claim_version counts the claims: each claim increments it, and every
-- write made under a claim (a renewal) is conditional on the version the
-- worker holds, so a worker that was paused past its lease and resumes has
-- its writes refused once another has claimed. lease_until is when the
-- current claim lapses if not renewed; NULL when the record was never
-- claimed. The poller takes a create over once its lease has lapsed and
-- the engine has no stack.
ALTER TABLE placements
    ADD COLUMN claim_version bigint NOT NULL DEFAULT 0 CHECK (claim_version >= 0),
    ADD COLUMN lease_until timestamptz;

ALTER TABLE pools
    ADD COLUMN claim_version bigint NOT NULL DEFAULT 0 CHECK (claim_version >= 0),
    ADD COLUMN lease_until timestamptz;

-- +goose Down
ALTER TABLE pools DROP COLUMN lease_until, DROP COLUMN claim_version;
ALTER TABLE placements DROP COLUMN lease_until, DROP COLUMN claim_version;
