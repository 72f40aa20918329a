SELECT 'tracks' AS table_name, dt, hh, count(*) AS n FROM "cairn_ten_a"."tracks" WHERE dt = '2026-11-26' AND hh = '10' GROUP BY dt, hh
UNION ALL
SELECT 'id_graph_updates' AS table_name, CAST(NULL AS varchar) AS dt, CAST(NULL AS varchar) AS hh, count(*) AS n FROM "cairn_ten_a"."id_graph_updates"
