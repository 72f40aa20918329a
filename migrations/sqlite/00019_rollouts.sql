-- +goose Up

-- Rollouts, their targets and stacks' drift, as in the PostgreSQL
-- migration of the same number. Timestamps are TEXT in the layout of
-- 00001_cairn.sql.
CREATE TABLE rollouts (
    -- seq is the insertion order that list cursors carry; AUTOINCREMENT
    -- never hands one out twice.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('running', 'paused', 'halted', 'aborted', 'completed')),
    body TEXT NOT NULL CHECK (json_valid(body) AND json_type(body) = 'object'),
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    finished_at TEXT
);

CREATE INDEX rollouts_active_idx ON rollouts (seq) WHERE finished_at IS NULL;

CREATE TABLE rollout_targets (
    rollout_id TEXT NOT NULL REFERENCES rollouts (id),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    region TEXT NOT NULL,
    stack_name TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'reviewing', 'awaiting_approval', 'executing', 'succeeded', 'unchanged', 'failed', 'skipped')),
    held INTEGER NOT NULL CHECK (held IN (0, 1)),
    detail TEXT NOT NULL CHECK (json_valid(detail) AND json_type(detail) = 'object'),
    version INTEGER NOT NULL CHECK (version > 0),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (rollout_id, idx)
) WITHOUT ROWID;

CREATE UNIQUE INDEX rollout_targets_held_key ON rollout_targets (region, stack_name) WHERE held = 1;

CREATE TABLE stack_drift (
    region TEXT NOT NULL,
    stack_name TEXT NOT NULL,
    status TEXT NOT NULL,
    resources TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(resources) AND json_type(resources) = 'array'),
    detection_id TEXT NOT NULL DEFAULT '',
    checked_at TEXT NOT NULL,
    PRIMARY KEY (region, stack_name)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE stack_drift;
DROP TABLE rollout_targets;
DROP TABLE rollouts;
