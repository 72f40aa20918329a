-- name: UsageFlushRecord :execrows
-- A flush ID recorded before makes no row: the flush was applied.
INSERT INTO usage_flushes (id, at) VALUES (@id, @at) ON CONFLICT (id) DO NOTHING;

-- name: UsageAdd :exec
INSERT INTO usage_counts (tenant_id, metric, dimension, hour, value)
VALUES (@tenant_id, @metric, @dimension, @hour, @value)
ON CONFLICT (tenant_id, metric, dimension, hour) DO UPDATE SET value = usage_counts.value + excluded.value;

-- name: UsageCounts :many
-- The counters' rows, and the gauges' (one per tenant, metric and hour,
-- with no dimension).
SELECT c.tenant_id, c.metric, c.dimension, c.hour, c.value FROM usage_counts c
WHERE (@tenant_id = '' OR c.tenant_id = @tenant_id) AND c.hour >= @from_hour AND c.hour < @to_hour
UNION ALL
SELECT g.tenant_id, g.metric, '' AS dimension, g.hour, g.value FROM usage_gauges g
WHERE (@tenant_id = '' OR g.tenant_id = @tenant_id) AND g.hour >= @from_hour AND g.hour < @to_hour
ORDER BY 1, 4, 2, 3;

-- name: UsageTotals :many
-- Each counter's sum over [from_hour, to_hour), and each gauge's latest
-- value in [gauge_from, to_hour).
SELECT tenant_id, metric, value FROM (
    SELECT c.tenant_id, c.metric, CAST(sum(c.value) AS INTEGER) AS value FROM usage_counts c
    WHERE c.hour >= @from_hour AND c.hour < @to_hour AND c.tenant_id > @after_tenant
    GROUP BY c.tenant_id, c.metric
    UNION ALL
    SELECT g.tenant_id, g.metric, g.value FROM usage_gauges g
    WHERE g.hour >= @gauge_from AND g.hour < @to_hour AND g.tenant_id > @after_tenant
    AND g.hour = (SELECT max(l.hour) FROM usage_gauges l WHERE l.tenant_id = g.tenant_id AND l.metric = g.metric
        AND l.hour >= @gauge_from AND l.hour < @to_hour)
) AS totals
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

-- name: UsageSample :exec
-- A sample replaces the hour's kept one only if taken later.
INSERT INTO usage_gauges (tenant_id, metric, hour, value, sampled_at)
VALUES (@tenant_id, @metric, @hour, @value, @sampled_at)
ON CONFLICT (tenant_id, metric, hour) DO UPDATE SET value = excluded.value, sampled_at = excluded.sampled_at
WHERE excluded.sampled_at >= usage_gauges.sampled_at;

-- name: UsageIndexBuilds :many
SELECT tenant_id, built_at FROM usage_index_builds ORDER BY tenant_id;

-- name: UsageIndexBuilt :exec
UPDATE usage_index_builds SET built_at = @built_at WHERE tenant_id = @tenant_id;

-- name: UsageIndexBuildDone :exec
DELETE FROM usage_index_builds WHERE tenant_id = @tenant_id;
