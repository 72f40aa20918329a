UNLOAD (
SELECT * FROM (
WITH "members" AS (SELECT "member_id" AS "member_id", "root" AS "root", CAST(try(from_iso8601_timestamp("created_at")) AT TIME ZONE 'UTC' AS timestamp) AS "created_at", CAST(try(from_iso8601_timestamp("updated_at")) AT TIME ZONE 'UTC' AS timestamp) AS "updated_at", "event" AS "event" FROM "cairn_pool_ten_a"."cairn_stage_members" WHERE run = 'vrun'),
"identifiers" AS (SELECT "member_id" AS "member_id", "type" AS "type", "value" AS "value", CAST(try(from_iso8601_timestamp("first_seen")) AT TIME ZONE 'UTC' AS timestamp) AS "first_seen", "event" AS "event" FROM "cairn_pool_ten_a"."cairn_stage_identifiers" WHERE run = 'vrun'),
"merges" AS (SELECT "root" AS "root", "merged_profile_id" AS "merged_profile_id", "member_id" AS "member_id", CAST(try(from_iso8601_timestamp("merged_at")) AT TIME ZONE 'UTC' AS timestamp) AS "merged_at", "event" AS "event" FROM "cairn_pool_ten_a"."cairn_stage_merges" WHERE run = 'vrun'),
"memberships" AS (SELECT "profile_id" AS "profile_id", "segment_id" AS "segment_id", CAST(try(from_iso8601_timestamp("entered_at")) AT TIME ZONE 'UTC' AS timestamp) AS "entered_at" FROM "cairn_pool_ten_a"."cairn_stage_memberships" WHERE run = 'vrun'),
"member_traits" AS (SELECT "member_id" AS "member_id", "name" AS "name", "value" AS "value", CAST(try(from_iso8601_timestamp("set_at")) AT TIME ZONE 'UTC' AS timestamp) AS "set_at" FROM "cairn_pool_ten_a"."cairn_stage_member_traits" WHERE run = 'vrun'),
events AS (SELECT "message_id", "type", "event", "user_id", "anonymous_id", "profile_id", "timestamp", "received_at", "source", "group_id", "previous_id", "properties", "traits", "context" FROM "cairn_pool_shared"."tracks" WHERE tenant_id = 'ten_a' UNION ALL SELECT "message_id", "type", "event", "user_id", "anonymous_id", "profile_id", "timestamp", "received_at", "source", "group_id", "previous_id", "properties", "traits", "context" FROM "cairn_pool_shared"."identifies" WHERE tenant_id = 'ten_a' UNION ALL SELECT "message_id", "type", "event", "user_id", "anonymous_id", "profile_id", "timestamp", "received_at", "source", "group_id", "previous_id", "properties", "traits", "context" FROM "cairn_pool_shared"."pages" WHERE tenant_id = 'ten_a' UNION ALL SELECT "message_id", "type", "event", "user_id", "anonymous_id", "profile_id", "timestamp", "received_at", "source", "group_id", "previous_id", "properties", "traits", "context" FROM "cairn_pool_shared"."screens" WHERE tenant_id = 'ten_a' UNION ALL SELECT "message_id", "type", "event", "user_id", "anonymous_id", "profile_id", "timestamp", "received_at", "source", "group_id", "previous_id", "properties", "traits", "context" FROM "cairn_pool_shared"."groups" WHERE tenant_id = 'ten_a' UNION ALL SELECT "message_id", "type", "event", "user_id", "anonymous_id", "profile_id", "timestamp", "received_at", "source", "group_id", "previous_id", "properties", "traits", "context" FROM "cairn_pool_shared"."aliases" WHERE tenant_id = 'ten_a')
SELECT "canonical_profile_id", "traits", "timestamp" FROM (
WITH latest AS (
  SELECT m.root, t.name, t.value, t.set_at,
    row_number() OVER (PARTITION BY m.root, t.name ORDER BY t.set_at DESC, t.member_id) AS n
  FROM member_traits t JOIN members m ON m.member_id = t.member_id
)
SELECT root AS canonical_profile_id, json_format(CAST(map_agg(name, json_parse(value)) AS JSON)) AS traits, max(set_at) AS "timestamp"
FROM latest
WHERE n = 1
GROUP BY root
) t
) q
) TO 's3://cairn-pool-clean/tenants/ten_a/events/dt=2026-11-26/hh=10/vversion/' WITH (format = 'PARQUET', compression = 'ZSTD')
