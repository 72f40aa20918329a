WITH "erased" AS (SELECT "id" AS "id" FROM "cairn_ten_a"."cairn_stage_erased" WHERE run = 'vrun')
SELECT 'tracks' AS table_name, dt, hh, count(*) AS n FROM "cairn_ten_a"."tracks" WHERE ("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)) GROUP BY dt, hh
UNION ALL
SELECT 'identifies' AS table_name, dt, hh, count(*) AS n FROM "cairn_ten_a"."identifies" WHERE ("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)) GROUP BY dt, hh
UNION ALL
SELECT 'pages' AS table_name, dt, hh, count(*) AS n FROM "cairn_ten_a"."pages" WHERE ("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)) GROUP BY dt, hh
UNION ALL
SELECT 'screens' AS table_name, dt, hh, count(*) AS n FROM "cairn_ten_a"."screens" WHERE ("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)) GROUP BY dt, hh
UNION ALL
SELECT 'groups' AS table_name, dt, hh, count(*) AS n FROM "cairn_ten_a"."groups" WHERE ("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)) GROUP BY dt, hh
UNION ALL
SELECT 'aliases' AS table_name, dt, hh, count(*) AS n FROM "cairn_ten_a"."aliases" WHERE ("message_id" IN (SELECT id FROM erased) OR "profile_id" IN (SELECT id FROM erased)) GROUP BY dt, hh
