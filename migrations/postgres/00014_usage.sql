-- +goose Up

-- usage_counts holds what each tenant used, per metric, hour and dimension
-- (package usage): every replica's meter adds its counts to these rows.
-- A tenant's rows outlive it, for billing.
CREATE TABLE usage_counts (
    tenant_id text NOT NULL,
    metric text NOT NULL,
    -- dimension splits a metric (the source of accepted events); '' if none.
    dimension text NOT NULL DEFAULT '',
    -- hour is the start of the hour counted, in UTC.
    hour timestamptz NOT NULL,
    value bigint NOT NULL CHECK (value >= 0),
    PRIMARY KEY (tenant_id, metric, dimension, hour)
);

-- Fleet reports read one range of hours across tenants.
CREATE INDEX usage_counts_hour ON usage_counts (hour);

-- usage_flushes records the flushes applied, so a flush retried after an
-- ambiguous failure is applied once. Rows are forgotten after a day.
CREATE TABLE usage_flushes (
    id text PRIMARY KEY,
    at timestamptz NOT NULL
);

-- usage_reports records the days whose usage report was written: the
-- daily report job writes each closed day once, and announces it
-- (usage.reported) in the transaction that records it.
CREATE TABLE usage_reports (
    -- day is the UTC day, YYYY-MM-DD.
    day text PRIMARY KEY,
    location text NOT NULL,
    reported_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE usage_reports;
DROP TABLE usage_flushes;
DROP TABLE usage_counts;
