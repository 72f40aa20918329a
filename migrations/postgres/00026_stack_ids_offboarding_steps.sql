-- +goose Up

-- stack_id is CloudFormation's StackId of the record's latest stack (an
-- ARN; the local engine's own ID in the embedded default). It is kept
-- after the stack is deleted, when the name alone no longer finds the
-- stack's events: DescribeStackEvents takes the ID of a deleted stack.
ALTER TABLE placements ADD COLUMN stack_id text NOT NULL DEFAULT '';
ALTER TABLE pools ADD COLUMN stack_id text NOT NULL DEFAULT '';

-- offboarding_steps records the steps of a tenant's offboarding that have
-- finished (package offboarding), so that a job that dies midway resumes
-- at the first unfinished step and never runs a finished one again. Rows
-- are never deleted: a tenant is offboarded once.
CREATE TABLE offboarding_steps (
    tenant_id text NOT NULL REFERENCES tenants (id),
    step text NOT NULL,
    done_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, step)
);

-- +goose Down
DROP TABLE offboarding_steps;
ALTER TABLE pools DROP COLUMN stack_id;
ALTER TABLE placements DROP COLUMN stack_id;
