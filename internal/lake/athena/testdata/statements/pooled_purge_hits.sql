WITH "erased" AS (SELECT "id" AS "id" FROM "cairn_pool_ten_a"."cairn_stage_erased" WHERE run = 'vrun')
SELECT 'tracks' AS table_name, dt, hh, count(*) AS n FROM "cairn_pool_shared"."tracks" WHERE tenant_id = 'ten_a' AND ("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)) GROUP BY dt, hh
UNION ALL
SELECT 'identifies' AS table_name, dt, hh, count(*) AS n FROM "cairn_pool_shared"."identifies" WHERE tenant_id = 'ten_a' AND ("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)) GROUP BY dt, hh
UNION ALL
SELECT 'pages' AS table_name, dt, hh, count(*) AS n FROM "cairn_pool_shared"."pages" WHERE tenant_id = 'ten_a' AND ("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)) GROUP BY dt, hh
UNION ALL
SELECT 'screens' AS table_name, dt, hh, count(*) AS n FROM "cairn_pool_shared"."screens" WHERE tenant_id = 'ten_a' AND ("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)) GROUP BY dt, hh
UNION ALL
SELECT 'groups' AS table_name, dt, hh, count(*) AS n FROM "cairn_pool_shared"."groups" WHERE tenant_id = 'ten_a' AND ("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)) GROUP BY dt, hh
UNION ALL
SELECT 'aliases' AS table_name, dt, hh, count(*) AS n FROM "cairn_pool_shared"."aliases" WHERE tenant_id = 'ten_a' AND ("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)) GROUP BY dt, hh
