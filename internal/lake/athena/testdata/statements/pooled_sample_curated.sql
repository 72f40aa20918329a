SELECT "profile_id", "canonical_profile_id", "triggering_event_id", "timestamp" FROM "cairn_pool_shared"."id_graph_updates" WHERE tenant_id = 'ten_a' LIMIT 300
