-- +goose Up

-- Stack IDs and offboarding steps, as in the PostgreSQL migration of the
-- same number. done_at is TEXT in the layout of 00001_cairn.sql.
ALTER TABLE placements ADD COLUMN stack_id TEXT NOT NULL DEFAULT '';
ALTER TABLE pools ADD COLUMN stack_id TEXT NOT NULL DEFAULT '';

CREATE TABLE offboarding_steps (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    step TEXT NOT NULL,
    done_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, step)
);

-- +goose Down
DROP TABLE offboarding_steps;
ALTER TABLE pools DROP COLUMN stack_id;
ALTER TABLE placements DROP COLUMN stack_id;
