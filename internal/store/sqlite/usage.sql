-- name: UsageFlushRecord :execrows
-- A flush ID recorded before makes no row: the flush was applied.
INSERT INTO usage_flushes (id, at) VALUES (@id, @at) ON CONFLICT (id) DO NOTHING;

-- name: UsageAdd :exec
INSERT INTO usage_counts (tenant_id, metric, dimension, hour, value)
VALUES (@tenant_id, @metric, @dimension, @hour, @value)
ON CONFLICT (tenant_id, metric, dimension, hour) DO UPDATE SET value = usage_counts.value + excluded.value;

-- name: UsageCounts :many
SELECT tenant_id, metric, dimension, hour, value FROM usage_counts
WHERE (@tenant_id = '' OR tenant_id = @tenant_id) AND hour >= @from_hour AND hour < @to_hour
ORDER BY tenant_id, hour, metric, dimension;

-- name: UsageTotals :many
SELECT tenant_id, metric, CAST(sum(value) AS INTEGER) AS value FROM usage_counts
WHERE hour >= @from_hour AND hour < @to_hour AND tenant_id > @after_tenant
GROUP BY tenant_id, metric
ORDER BY tenant_id, metric
LIMIT @max_rows;

-- name: UsageForgetFlushes :exec
DELETE FROM usage_flushes WHERE at < @before;

-- name: UsageReportRecord :execrows
-- A day reported before makes no row.
INSERT INTO usage_reports (day, location, reported_at) VALUES (@day, @location, @reported_at)
ON CONFLICT (day) DO NOTHING;

-- name: UsageReportedDays :many
SELECT day FROM usage_reports WHERE day >= @from_day AND day < @to_day ORDER BY day;
