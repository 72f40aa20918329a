UNLOAD (
SELECT * FROM (
WITH "erased" AS (SELECT "id" AS "id" FROM "cairn_pool_ten_a"."cairn_stage_erased" WHERE run = 'vrun')
SELECT "message_id", "type", "event", "user_id", "anonymous_id", "profile_id", "timestamp", "received_at", "source", "group_id", "previous_id", "properties", "traits", "context" FROM "cairn_pool_shared"."tracks" WHERE tenant_id = 'ten_a' AND dt = '2026-11-26' AND hh = '10' AND NOT coalesce(("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)), false)
) q
) TO 's3://cairn-pool-clean/tenants/ten_a/events/dt=2026-11-26/hh=10/vversion/' WITH (format = 'PARQUET', compression = 'ZSTD')
