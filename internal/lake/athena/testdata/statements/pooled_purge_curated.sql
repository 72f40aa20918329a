WITH "erased" AS (SELECT "id" AS "id" FROM "cairn_pool_ten_a"."cairn_stage_erased" WHERE run = 'vrun')
SELECT 'id_graph_updates' AS table_name, count(*) AS n FROM "cairn_pool_shared"."id_graph_updates" WHERE tenant_id = 'ten_a' AND ("profile_id" IN (SELECT id FROM erased) OR "canonical_profile_id" IN (SELECT id FROM erased))
UNION ALL
SELECT 'id_graph' AS table_name, count(*) AS n FROM "cairn_pool_shared"."id_graph" WHERE tenant_id = 'ten_a' AND ("profile_id" IN (SELECT id FROM erased) OR "canonical_profile_id" IN (SELECT id FROM erased))
