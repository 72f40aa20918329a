-- +goose Up

-- principals are the AWS principals (12-digit account IDs and IAM role
-- ARNs) registered to receive a tenant's grants. A principal belongs to one
-- tenant only, hence the key on the principal alone: two tenants racing to
-- register one principal cannot both win.
CREATE TABLE principals (
    -- seq is the registration order that list cursors carry; it only grows.
    seq bigint NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
    principal text PRIMARY KEY,
    -- Tenants are never deleted (they become tombstones), so the reference
    -- never blocks anything.
    tenant_id text NOT NULL REFERENCES tenants (id),
    created_at timestamptz NOT NULL
);

CREATE INDEX principals_tenant_seq_idx ON principals (tenant_id, seq);

-- grants is the broker's ledger: every Lake Formation grant a tenant asked
-- for, in whatever state it is. Revoked grants stay as records. principal
-- has no reference to principals: a principal may be deregistered while
-- the records of its revoked grants remain.
CREATE TABLE grants (
    seq bigint NOT NULL GENERATED ALWAYS AS IDENTITY UNIQUE,
    id text PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    principal text NOT NULL,
    region text NOT NULL,
    database text NOT NULL,
    -- table_name is empty for a grant on the database.
    table_name text NOT NULL DEFAULT '',
    -- columns is empty for a grant on a whole table or the database.
    columns jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(columns) = 'array'),
    permissions jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(permissions) = 'array'),
    -- grant_key is grants.Grant.Key(): the grant's content with columns and
    -- permissions as sorted sets.
    grant_key text NOT NULL,
    cells_filter text NOT NULL DEFAULT '',
    status text NOT NULL CHECK (status IN ('pending', 'active', 'failed', 'revoking', 'revoked', 'suspended')),
    reason text NOT NULL DEFAULT '',
    created_by text NOT NULL DEFAULT '',
    version bigint NOT NULL CHECK (version > 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- The same grant asked twice is one grant, even when the two requests
-- race: GrantInsert inserts with ON CONFLICT DO NOTHING on this index and
-- then reads the grant that holds the key. A revoked grant frees its key.
-- The adapter maps a violation (an update that would make two live grants
-- alike) to ErrConflict by this index's name.
CREATE UNIQUE INDEX grants_tenant_key_live_key ON grants (tenant_id, grant_key) WHERE status <> 'revoked';

-- List filters; seq last so a filtered page is an index range scan.
CREATE INDEX grants_tenant_seq_idx ON grants (tenant_id, seq);
CREATE INDEX grants_tenant_principal_seq_idx ON grants (tenant_id, principal, seq);
CREATE INDEX grants_tenant_status_seq_idx ON grants (tenant_id, status, seq);

-- audit_events is the broker's audit log: grants, revokes, refusals,
-- credential issues. It has no reference to tenants: events outlive the
-- tenants they are about, and some are about no tenant (tenant_id NULL).
CREATE TABLE audit_events (
    -- seq orders events as Cairn recorded them; list cursors carry it.
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    time timestamptz NOT NULL,
    tenant_id text,
    actor text NOT NULL,
    action text NOT NULL,
    resource text NOT NULL DEFAULT '',
    outcome text NOT NULL DEFAULT '',
    detail jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object')
);

-- List filters; seq last where a filtered page is read in seq order.
CREATE INDEX audit_events_tenant_seq_idx ON audit_events (tenant_id, seq);
CREATE INDEX audit_events_time_idx ON audit_events (time);
CREATE INDEX audit_events_actor_seq_idx ON audit_events (actor, seq);
CREATE INDEX audit_events_action_seq_idx ON audit_events (action, seq);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE grants;
DROP TABLE principals;
