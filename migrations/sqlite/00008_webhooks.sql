-- +goose Up

-- Timestamps are TEXT in the layout of 00001_cairn.sql,
-- 2006-01-02T15:04:05.000000Z, so they compare as strings.

-- webhook_endpoints are the HTTP endpoints that receive events: a
-- tenant's, or with tenant_id '' the ISV's fleet endpoints (which is why
-- tenant_id references nothing).
CREATE TABLE webhook_endpoints (
    -- seq is the creation order that list cursors carry. AUTOINCREMENT
    -- guarantees a seq is never handed out twice, even after deletes.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- JSON arrays of strings; an empty segment_ids is every segment.
    event_types TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(event_types) AND json_type(event_types) = 'array'),
    segment_ids TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(segment_ids) AND json_type(segment_ids) = 'array'),
    traits TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(traits) AND json_type(traits) = 'array'),
    enabled BOOLEAN NOT NULL CHECK (enabled IN (0, 1)),
    disabled_reason TEXT NOT NULL DEFAULT '',
    -- secret signs the deliveries, so it is kept as is (encrypting it at
    -- rest is issue #16's work); the API shows it only once.
    secret TEXT NOT NULL,
    -- previous_secret signs too until previous_secret_expires_at, the
    -- grace period of a rotation.
    previous_secret TEXT NOT NULL DEFAULT '',
    previous_secret_expires_at TEXT,
    -- failing_since is the first failed attempt of the current streak.
    failing_since TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0)
);

-- WebhookEndpointList pages a tenant's endpoints in seq order.
CREATE INDEX webhook_endpoints_tenant_seq_idx ON webhook_endpoints (tenant_id, seq);

-- webhook_deliveries are events on their way to endpoints, one row per
-- (endpoint, event), kept after they are delivered as the delivery log.
-- endpoint_id references nothing: a deleted endpoint's deliveries stay,
-- cancelled, and the claim query joins the endpoints anyway.
CREATE TABLE webhook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    endpoint_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    tenant_id TEXT NOT NULL DEFAULT '',
    -- order_key orders the deliveries of one endpoint: only the oldest
    -- pending one of a key is sent at a time.
    order_key TEXT NOT NULL,
    -- payload is the exact body sent.
    payload BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT,
    response_status INTEGER NOT NULL DEFAULT 0,
    -- response_body is the first KiB of the last answer.
    response_body BLOB NOT NULL DEFAULT x'',
    last_error TEXT NOT NULL DEFAULT '',
    -- claimed_until is the lease of the dispatcher sending it.
    claimed_until TEXT,
    created_at TEXT NOT NULL,
    -- Enqueuing an event twice creates nothing new.
    UNIQUE (endpoint_id, event_id)
);

-- The claim query: an endpoint's pending deliveries by order key, oldest
-- first, and the due ones.
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (endpoint_id, order_key, seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- WebhookDeliveryList pages an endpoint's deliveries, newest first.
CREATE INDEX webhook_deliveries_endpoint_seq_idx ON webhook_deliveries (endpoint_id, seq);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
