-- +goose Up

-- usage_gauges holds the sampled metrics (package usage: the profiles a
-- tenant has): one value per tenant, metric and hour, the latest sample
-- taken in that hour. A sample replaces the kept one only if it was taken
-- later (sampled_at), so retried writes, in any order, leave the latest;
-- nothing is ever added up. A tenant's rows outlive it, for billing.
CREATE TABLE usage_gauges (
    tenant_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    -- hour is the start of the hour sampled, and sampled_at the time of
    -- the sample: TEXT in the layout of 00001_cairn.sql, so they sort as
    -- time does.
    hour TEXT NOT NULL,
    value INTEGER NOT NULL CHECK (value >= 0),
    sampled_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, metric, hour)
) WITHOUT ROWID;

CREATE INDEX usage_gauges_hour ON usage_gauges (hour);

-- usage_index_builds lists the tenants whose profile index (the profile
-- store's count of a tenant's profiles) wants building from their
-- profiles: those that may have had profiles before this version kept
-- it. Tenants onboarded since keep it from their first profile. A build
-- runs once, then once more an hour later (built_at); the row goes with
-- the second.
CREATE TABLE usage_index_builds (
    tenant_id TEXT PRIMARY KEY,
    built_at TEXT
);

INSERT INTO usage_index_builds (tenant_id) SELECT id FROM tenants WHERE status <> 'deleted';

-- +goose Down
DROP TABLE usage_index_builds;
DROP TABLE usage_gauges;
