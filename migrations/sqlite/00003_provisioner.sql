-- +goose Up

-- Timestamps are TEXT in the layout of 00001_cairn.sql,
-- 2006-01-02T15:04:05.000000Z.

-- placements records where each tenant's data stack lives: one row per
-- tenant and Region, a stack of its own (dedicated) or a slice of the
-- Region's pool (pooled). Rows are never deleted: a deleted placement stays
-- with status 'deleted' for audit, which is also why PlacementEnsure may
-- read back the row it failed to insert without a transaction.
CREATE TABLE placements (
    -- Tenants are never deleted either (they become tombstones), so the
    -- reference never blocks anything.
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    region TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('dedicated', 'pooled')),
    stack_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'creating', 'ready', 'failed', 'replacing', 'deleting', 'deleted')),
    stack_status TEXT NOT NULL DEFAULT '',
    template_version TEXT NOT NULL DEFAULT '',
    outputs TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(outputs) AND json_type(outputs) = 'object'),
    last_error TEXT NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, region)
) WITHOUT ROWID;

-- The poller lists in-flight placements on every round.
CREATE INDEX placements_status_idx ON placements (status);

-- PoolList counts the live pooled placements of each Region.
CREATE INDEX placements_pooled_region_idx ON placements (region) WHERE kind = 'pooled' AND status <> 'deleted';

-- pools holds the shared stack of each Region that pooled tenants are
-- slices of.
CREATE TABLE pools (
    region TEXT PRIMARY KEY,
    stack_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'creating', 'ready', 'failed', 'replacing', 'deleting', 'deleted')),
    stack_status TEXT NOT NULL DEFAULT '',
    template_version TEXT NOT NULL DEFAULT '',
    outputs TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(outputs) AND json_type(outputs) = 'object'),
    last_error TEXT NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- stack_events keeps the CloudFormation events of tenants' stacks, so the
-- API can show them after the stack (and its events) are gone. There is no
-- reference to tenants: events are a log, kept as the engine reported them.
CREATE TABLE stack_events (
    -- seq orders events as Cairn recorded them; list cursors carry it.
    -- AUTOINCREMENT guarantees a seq is never handed out twice.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    region TEXT NOT NULL,
    -- event_id is CloudFormation's EventId; a repeat is ignored.
    event_id TEXT NOT NULL,
    time TEXT NOT NULL,
    logical_id TEXT NOT NULL DEFAULT '',
    resource_type TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    UNIQUE (tenant_id, region, event_id)
);

CREATE INDEX stack_events_tenant_region_seq_idx ON stack_events (tenant_id, region, seq);

-- +goose Down
DROP TABLE stack_events;
DROP TABLE pools;
DROP TABLE placements;
