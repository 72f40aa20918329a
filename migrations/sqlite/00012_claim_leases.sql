-- +goose Up

-- Claims and their leases, as in the PostgreSQL migration of the same
-- number. lease_until is TEXT in the layout of 00001_cairn.sql, which
-- sorts as time does.
ALTER TABLE placements ADD COLUMN claim_version INTEGER NOT NULL DEFAULT 0 CHECK (claim_version >= 0);
ALTER TABLE placements ADD COLUMN lease_until TEXT;
ALTER TABLE pools ADD COLUMN claim_version INTEGER NOT NULL DEFAULT 0 CHECK (claim_version >= 0);
ALTER TABLE pools ADD COLUMN lease_until TEXT;

-- +goose Down
ALTER TABLE pools DROP COLUMN lease_until;
ALTER TABLE pools DROP COLUMN claim_version;
ALTER TABLE placements DROP COLUMN lease_until;
ALTER TABLE placements DROP COLUMN claim_version;
