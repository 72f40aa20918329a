-- +goose Up

-- webhook_endpoints are the HTTP endpoints that receive events: a
-- tenant's, or with tenant_id '' the ISV's fleet endpoints (which is why
-- tenant_id references nothing).
CREATE TABLE webhook_endpoints (
    -- seq is the creation order that list cursors carry; it only grows.
    seq bigint NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    tenant_id text NOT NULL DEFAULT '',
    url text NOT NULL,
    description text NOT NULL DEFAULT '',
    -- An empty segment_ids is every segment.
    event_types text[] NOT NULL DEFAULT '{}',
    segment_ids text[] NOT NULL DEFAULT '{}',
    traits text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL,
    disabled_reason text NOT NULL DEFAULT '',
    -- secret signs the deliveries, so it is kept as is (encrypting it at
    -- rest is issue #16's work); the API shows it only once.
    secret text NOT NULL,
    -- previous_secret signs too until previous_secret_expires_at, the
    -- grace period of a rotation.
    previous_secret text NOT NULL DEFAULT '',
    previous_secret_expires_at timestamptz,
    -- failing_since is the first failed attempt of the current streak.
    failing_since timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version bigint NOT NULL CHECK (version > 0)
);

-- WebhookEndpointList pages a tenant's endpoints in seq order.
CREATE INDEX webhook_endpoints_tenant_seq_idx ON webhook_endpoints (tenant_id, seq);

-- webhook_deliveries are events on their way to endpoints, one row per
-- (endpoint, event), kept after they are delivered as the delivery log.
-- endpoint_id references nothing: a deleted endpoint's deliveries stay,
-- cancelled, and the claim query joins the endpoints anyway.
CREATE TABLE webhook_deliveries (
    seq bigint NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    endpoint_id text NOT NULL,
    event_id text NOT NULL,
    event_type text NOT NULL,
    tenant_id text NOT NULL DEFAULT '',
    -- order_key orders the deliveries of one endpoint: only the oldest
    -- pending one of a key is sent at a time.
    order_key text NOT NULL,
    -- payload is the exact body sent (bytea, not jsonb, which would
    -- reorder its keys).
    payload bytea NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    last_attempt_at timestamptz,
    response_status integer NOT NULL DEFAULT 0,
    -- response_body is the first KiB of the last answer, in any encoding.
    response_body bytea NOT NULL DEFAULT '',
    last_error text NOT NULL DEFAULT '',
    -- claimed_until is the lease of the dispatcher sending it.
    claimed_until timestamptz,
    created_at timestamptz NOT NULL,
    -- Enqueuing an event twice creates nothing new.
    CONSTRAINT webhook_deliveries_endpoint_event_key UNIQUE (endpoint_id, event_id)
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
