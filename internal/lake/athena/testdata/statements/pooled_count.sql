SELECT 'tracks' AS table_name, dt, hh, count(*) AS n FROM "cairn_pool_shared"."tracks" WHERE tenant_id = 'ten_a' AND dt = '2026-11-26' AND hh = '10' GROUP BY dt, hh
UNION ALL
SELECT 'id_graph_updates' AS table_name, CAST(NULL AS varchar) AS dt, CAST(NULL AS varchar) AS hh, count(*) AS n FROM "cairn_pool_shared"."id_graph_updates" WHERE tenant_id = 'ten_a'
