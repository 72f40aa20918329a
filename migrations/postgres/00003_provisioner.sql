-- +goose Up

-- placements records where each tenant's data stack lives: one row per
-- tenant and Region, a stack of its own (dedicated) or a slice of the
-- Region's pool (pooled). Rows are never deleted: a deleted placement stays
-- with status 'deleted' for audit, which is also why PlacementEnsure may
-- read back the row it failed to insert without a transaction.
CREATE TABLE placements (
    -- Tenants are never deleted either (they become tombstones), so the
    -- reference never blocks anything.
    tenant_id text NOT NULL REFERENCES tenants (id),
    region text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('dedicated', 'pooled')),
    stack_name text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'creating', 'ready', 'failed', 'replacing', 'deleting', 'deleted')),
    stack_status text NOT NULL DEFAULT '',
    template_version text NOT NULL DEFAULT '',
    outputs jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(outputs) = 'object'),
    last_error text NOT NULL DEFAULT '',
    attempt bigint NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    version bigint NOT NULL CHECK (version > 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, region)
);

-- The poller lists in-flight placements on every round.
CREATE INDEX placements_status_idx ON placements (status);

-- PoolList counts the live pooled placements of each Region.
CREATE INDEX placements_pooled_region_idx ON placements (region) WHERE kind = 'pooled' AND status <> 'deleted';

-- pools holds the shared stack of each Region that pooled tenants are
-- slices of.
CREATE TABLE pools (
    region text PRIMARY KEY,
    stack_name text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'creating', 'ready', 'failed', 'replacing', 'deleting', 'deleted')),
    stack_status text NOT NULL DEFAULT '',
    template_version text NOT NULL DEFAULT '',
    outputs jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(outputs) = 'object'),
    last_error text NOT NULL DEFAULT '',
    attempt bigint NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    version bigint NOT NULL CHECK (version > 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- stack_events keeps the CloudFormation events of tenants' stacks, so the
-- API can show them after the stack (and its events) are gone. There is no
-- reference to tenants: events are a log, kept as the engine reported them.
CREATE TABLE stack_events (
    -- seq orders events as Cairn recorded them; list cursors carry it.
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL,
    region text NOT NULL,
    -- event_id is CloudFormation's EventId; a repeat is ignored.
    event_id text NOT NULL,
    time timestamptz NOT NULL,
    logical_id text NOT NULL DEFAULT '',
    resource_type text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT '',
    reason text NOT NULL DEFAULT '',
    UNIQUE (tenant_id, region, event_id)
);

CREATE INDEX stack_events_tenant_region_seq_idx ON stack_events (tenant_id, region, seq);

-- +goose Down
DROP TABLE stack_events;
DROP TABLE pools;
DROP TABLE placements;
