-- +goose Up

-- plans holds the ISV's plans (package plans): a tenant's plan field names
-- one, and an empty or unknown name means the plan 'default'.
CREATE TABLE plans (
    name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
    description text NOT NULL DEFAULT '',
    -- limits is a JSON object of the plan's limits (plans.Limits); an
    -- absent member is no limit.
    limits jsonb NOT NULL CHECK (jsonb_typeof(limits) = 'object'),
    monthly_events_mode text NOT NULL CHECK (monthly_events_mode IN ('warn', 'block')),
    version bigint NOT NULL CHECK (version > 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- The default plan, as plans.Default describes it, and one plan with its
-- limits for every plan name tenants carry from when the field was free
-- text, so that each tenant's plan names a plan (a name that cannot name
-- one keeps the default plan's limits).
INSERT INTO plans (name, description, limits, monthly_events_mode, version, created_at, updated_at)
VALUES ('default', 'The plan of tenants that name none.',
        '{"events_per_second_per_source": 500, "events_per_second_per_tenant": 1000, "requests_per_second_per_token": 100}',
        'warn', 1, now(), now());
INSERT INTO plans (name, description, limits, monthly_events_mode, version, created_at, updated_at)
SELECT DISTINCT t.plan, '', p.limits, p.monthly_events_mode, 1, now(), now()
FROM tenants t, plans p
WHERE p.name = 'default' AND t.plan <> 'default' AND t.plan ~ '^[A-Za-z0-9._-]{1,64}$';

-- +goose Down
DROP TABLE plans;
