-- +goose Up

-- Timestamps are TEXT in the layout of 00001_cairn.sql,
-- 2006-01-02T15:04:05.000000Z.

-- principals are the AWS principals (12-digit account IDs and IAM role
-- ARNs) registered to receive a tenant's grants. A principal belongs to one
-- tenant only, hence the unique key on the principal alone.
CREATE TABLE principals (
    -- seq is the registration order that list cursors carry.
    -- AUTOINCREMENT guarantees a seq is never handed out twice, even after
    -- deletes.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    principal TEXT NOT NULL UNIQUE,
    -- Tenants are never deleted (they become tombstones), so the reference
    -- never blocks anything.
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    created_at TEXT NOT NULL
);

CREATE INDEX principals_tenant_seq_idx ON principals (tenant_id, seq);

-- grants is the broker's ledger: every Lake Formation grant a tenant asked
-- for, in whatever state it is. Revoked grants stay as records. principal
-- has no reference to principals: a principal may be deregistered while
-- the records of its revoked grants remain.
CREATE TABLE grants (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    principal TEXT NOT NULL,
    region TEXT NOT NULL,
    database TEXT NOT NULL,
    -- table_name is empty for a grant on the database.
    table_name TEXT NOT NULL DEFAULT '',
    -- columns is empty for a grant on a whole table or the database.
    columns TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(columns) AND json_type(columns) = 'array'),
    permissions TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(permissions) AND json_type(permissions) = 'array'),
    -- grant_key is grants.Grant.Key(): the grant's content with columns and
    -- permissions as sorted sets.
    grant_key TEXT NOT NULL,
    cells_filter TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'failed', 'revoking', 'revoked', 'suspended')),
    reason TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT '',
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The same grant asked twice is one grant: GrantInsert inserts with ON
-- CONFLICT DO NOTHING on this index and then reads the grant that holds the
-- key. A revoked grant frees its key. The adapter maps a violation (an
-- update that would make two live grants alike) to ErrConflict.
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
    -- AUTOINCREMENT guarantees a seq is never handed out twice.
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    time TEXT NOT NULL,
    tenant_id TEXT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail) AND json_type(detail) = 'object')
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
