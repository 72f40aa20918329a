-- +goose Up

-- usage_counts holds what each tenant used, per metric, hour and dimension
-- (package usage): the meter adds its counts to these rows. A tenant's
-- rows outlive it, for billing.
CREATE TABLE usage_counts (
    tenant_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    -- dimension splits a metric (the source of accepted events); '' if none.
    dimension TEXT NOT NULL DEFAULT '',
    -- hour is the start of the hour counted: TEXT in the layout of
    -- 00001_cairn.sql, so it sorts as time does.
    hour TEXT NOT NULL,
    value INTEGER NOT NULL CHECK (value >= 0),
    PRIMARY KEY (tenant_id, metric, dimension, hour)
) WITHOUT ROWID;

CREATE INDEX usage_counts_hour ON usage_counts (hour);

-- usage_flushes records the flushes applied, so a flush retried after an
-- ambiguous failure is applied once. Rows are forgotten after a day.
CREATE TABLE usage_flushes (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL
);

-- usage_reports records the days whose usage report was written: the
-- daily report job writes each closed day once, and announces it
-- (usage.reported) in the transaction that records it.
CREATE TABLE usage_reports (
    -- day is the UTC day, YYYY-MM-DD.
    day TEXT PRIMARY KEY,
    location TEXT NOT NULL,
    reported_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE usage_reports;
DROP TABLE usage_flushes;
DROP TABLE usage_counts;
