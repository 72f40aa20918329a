-- +goose Up

-- rollouts holds staged template rollouts (package rollouts). What is
-- only read whole (selector, plan, templates, wave, bake time, reason) is
-- the JSON body; the columns are what queries filter on.
CREATE TABLE rollouts (
    -- seq is the insertion order that list cursors carry.
    seq bigint NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('running', 'paused', 'halted', 'aborted', 'completed')),
    body jsonb NOT NULL CHECK (jsonb_typeof(body) = 'object'),
    version bigint NOT NULL CHECK (version > 0),
    created_at timestamptz NOT NULL,
    -- finished_at is set when the rollout will do nothing more; its stacks
    -- are released then.
    finished_at timestamptz
);

-- The sweep reads the unfinished rollouts.
CREATE INDEX rollouts_active_idx ON rollouts (seq) WHERE finished_at IS NULL;

-- rollout_targets holds each stack of a rollout: one row per stack, in
-- wave order (idx). held marks a stack the rollout still holds: the
-- unique index lets one rollout at a time hold a stack, which is how two
-- rollouts never run on one stack.
CREATE TABLE rollout_targets (
    rollout_id text NOT NULL REFERENCES rollouts (id),
    idx integer NOT NULL CHECK (idx >= 0),
    region text NOT NULL,
    stack_name text NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'reviewing', 'awaiting_approval', 'executing', 'succeeded', 'unchanged', 'failed', 'skipped')),
    held boolean NOT NULL,
    detail jsonb NOT NULL CHECK (jsonb_typeof(detail) = 'object'),
    version bigint NOT NULL CHECK (version > 0),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (rollout_id, idx)
);

-- The adapter maps a violation to rollouts.ErrStackBusy by this name.
CREATE UNIQUE INDEX rollout_targets_held_key ON rollout_targets (region, stack_name) WHERE held;

-- stack_drift records each stack's latest drift detection (package
-- drift): a dedicated tenant's stack or a Region's pool stack.
CREATE TABLE stack_drift (
    region text NOT NULL,
    stack_name text NOT NULL,
    -- status is IN_SYNC, DRIFTED, UNKNOWN or NOT_CHECKED; resources the
    -- drifted resources as [{"logical_id", "physical_id", "type", "status"}].
    status text NOT NULL,
    resources jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(resources) = 'array'),
    -- detection_id is the detection under way, '' once read.
    detection_id text NOT NULL DEFAULT '',
    checked_at timestamptz NOT NULL,
    PRIMARY KEY (region, stack_name)
);

-- +goose Down
DROP TABLE stack_drift;
DROP TABLE rollout_targets;
DROP TABLE rollouts;
