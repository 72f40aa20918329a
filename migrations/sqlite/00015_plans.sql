-- +goose Up

-- plans holds the ISV's plans (package plans): a tenant's plan field names
-- one, and an empty or unknown name means the plan 'default'.
CREATE TABLE plans (
    name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^A-Za-z0-9._-]*'),
    description TEXT NOT NULL DEFAULT '',
    -- limits is a JSON object of the plan's limits (plans.Limits); an
    -- absent member is no limit.
    limits TEXT NOT NULL CHECK (json_valid(limits) AND json_type(limits) = 'object'),
    monthly_events_mode TEXT NOT NULL CHECK (monthly_events_mode IN ('warn', 'block')),
    version INTEGER NOT NULL CHECK (version > 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- The default plan, as plans.Default describes it, and one plan with its
-- limits for every plan name tenants carry from when the field was free
-- text, so that each tenant's plan names a plan (a name that cannot name
-- one keeps the default plan's limits).
INSERT INTO plans (name, description, limits, monthly_events_mode, version, created_at, updated_at)
VALUES ('default', 'The plan of tenants that name none.',
        '{"events_per_second_per_source": 500, "events_per_second_per_tenant": 1000, "requests_per_second_per_token": 100}',
        'warn', 1, strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'), strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));
INSERT INTO plans (name, description, limits, monthly_events_mode, version, created_at, updated_at)
SELECT DISTINCT t.plan, '', p.limits, p.monthly_events_mode, 1, p.created_at, p.created_at
FROM tenants t, plans p
WHERE p.name = 'default' AND t.plan <> 'default'
  AND length(t.plan) BETWEEN 1 AND 64 AND t.plan NOT GLOB '*[^A-Za-z0-9._-]*';

-- +goose Down
DROP TABLE plans;
