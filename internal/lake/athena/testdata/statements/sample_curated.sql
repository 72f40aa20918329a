SELECT "profile_id", "canonical_profile_id", "triggering_event_id", "timestamp" FROM "cairn_ten_a"."id_graph_updates" LIMIT 300
