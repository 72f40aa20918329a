-- +goose Up

-- tenants holds every tenant ever onboarded; offboarded ones stay as
-- tombstones with status 'deleted'.
CREATE TABLE tenants (
    -- seq is the insertion order that list cursors carry; it only grows.
    seq bigint NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    slug text NOT NULL,
    name text NOT NULL,
    tier text NOT NULL CHECK (tier IN ('pooled', 'dedicated')),
    status text NOT NULL CHECK (status IN ('provisioning', 'active', 'suspended', 'failed', 'deprovisioning', 'deleted')),
    status_reason text NOT NULL DEFAULT '',
    home_region text NOT NULL,
    regions jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(regions) = 'array'),
    plan text NOT NULL DEFAULT '',
    contact_email text NOT NULL DEFAULT '',
    labels jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    version bigint NOT NULL CHECK (version > 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);

-- A slug is unique among tenants that are not deleted, so a tombstone's
-- slug can be used again. The adapter maps a violation to ErrSlugTaken by
-- this index's name.
CREATE UNIQUE INDEX tenants_slug_live_key ON tenants (slug) WHERE status <> 'deleted';

-- List filters; seq last so a filtered page is an index range scan.
CREATE INDEX tenants_status_seq_idx ON tenants (status, seq);
CREATE INDEX tenants_tier_seq_idx ON tenants (tier, seq);
CREATE INDEX tenants_regions_idx ON tenants USING gin (regions jsonb_path_ops);

-- idempotency_keys remembers POST requests by (principal, Idempotency-Key).
CREATE TABLE idempotency_keys (
    principal text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    state text NOT NULL CHECK (state IN ('in_flight', 'completed')),
    locked_until timestamptz NOT NULL,
    -- status, header and body are the response to replay once completed.
    status integer NOT NULL DEFAULT 0,
    header bytea,
    body bytea,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (principal, key)
);

CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE tenants;
