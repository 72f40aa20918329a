UNLOAD (
SELECT * FROM (
WITH raw AS (SELECT "messageid" AS "message_id", "type" AS "type", "event" AS "event", "name" AS "name", "userid" AS "user_id", "anonymousid" AS "anonymous_id", "groupid" AS "group_id", "previousid" AS "previous_id", "timestamp" AS "ts", "originaltimestamp" AS "original_ts", "sentat" AS "sent_at", "properties" AS "properties", "traits" AS "traits", "context" AS "context", "$path" AS raw_object FROM "cairn_pool_ten_a"."raw_events" WHERE dt = '2026-11-26' AND hh = '10'),
"objects" AS (SELECT "raw_object" AS "raw_object", CAST(try(from_iso8601_timestamp("received_at")) AT TIME ZONE 'UTC' AS timestamp) AS "received_at" FROM "cairn_pool_ten_a"."cairn_stage_objects" WHERE run = 'vrun'),
"erased" AS (SELECT "id" AS "id" FROM "cairn_pool_ten_a"."cairn_stage_erased" WHERE run = 'vrun'),
"members" AS (SELECT "member_id" AS "member_id", "root" AS "root", CAST(try(from_iso8601_timestamp("created_at")) AT TIME ZONE 'UTC' AS timestamp) AS "created_at", CAST(try(from_iso8601_timestamp("updated_at")) AT TIME ZONE 'UTC' AS timestamp) AS "updated_at", "event" AS "event" FROM "cairn_pool_ten_a"."cairn_stage_members" WHERE run = 'vrun'),
"identifiers" AS (SELECT "member_id" AS "member_id", "type" AS "type", "value" AS "value", CAST(try(from_iso8601_timestamp("first_seen")) AT TIME ZONE 'UTC' AS timestamp) AS "first_seen", "event" AS "event" FROM "cairn_pool_ten_a"."cairn_stage_identifiers" WHERE run = 'vrun'),
clean_events AS (
WITH received AS (
  SELECT r.*, o.received_at
  FROM raw r JOIN objects o ON o.raw_object = r.raw_object
  WHERE r.message_id IS NOT NULL AND r.type IN ('track', 'identify', 'page', 'screen', 'group', 'alias')
),
copies AS (
  SELECT message_id, count(*) AS n FROM received GROUP BY message_id
),
-- Most events have one copy: only the others pay for ordering theirs.
deduped AS (
  SELECT r.* FROM received r JOIN copies c ON c.message_id = r.message_id WHERE c.n = 1
  UNION ALL
  SELECT message_id, type, event, name, user_id, anonymous_id, group_id, previous_id, ts, original_ts, sent_at,
    properties, traits, context, raw_object, received_at
  FROM (
    SELECT r.*, row_number() OVER (PARTITION BY r.message_id ORDER BY r.received_at, r.raw_object) AS copy
    FROM received r JOIN copies c ON c.message_id = r.message_id WHERE c.n > 1
  ) d
  WHERE copy = 1
),
resolved AS (
  SELECT m.root AS profile_id, i.type AS id_type, i.value AS id_value
  FROM identifiers i JOIN members m ON m.member_id = i.member_id
  WHERE i.type IN ('user_id', 'anonymous_id')
)
SELECT
  r.message_id,
  r.type,
  CASE WHEN r.type IN ('page', 'screen') THEN r.name WHEN r.type = 'track' THEN r.event END AS event,
  r.user_id,
  r.anonymous_id,
  coalesce(u.profile_id, a.profile_id) AS profile_id,
  coalesce(CAST(try(from_iso8601_timestamp(r.ts)) AT TIME ZONE 'UTC' AS timestamp), r.received_at - (CAST(try(from_iso8601_timestamp(r.sent_at)) AT TIME ZONE 'UTC' AS timestamp) - CAST(try(from_iso8601_timestamp(r.original_ts)) AT TIME ZONE 'UTC' AS timestamp)), CAST(try(from_iso8601_timestamp(r.original_ts)) AT TIME ZONE 'UTC' AS timestamp), r.received_at) AS "timestamp",
  r.received_at,
  json_extract_scalar(r.context, '$.library.name') AS source,
  r.group_id,
  r.previous_id,
  r.properties,
  r.traits,
  r.context
FROM deduped r
LEFT JOIN resolved u ON u.id_type = 'user_id' AND u.id_value = r.user_id
LEFT JOIN resolved a ON a.id_type = 'anonymous_id' AND a.id_value = r.anonymous_id
-- Erased IDs are unique: these joins find one row or none.
LEFT JOIN erased em ON em.id = r.message_id
LEFT JOIN erased ep ON ep.id = coalesce(u.profile_id, a.profile_id)
WHERE em.id IS NULL AND ep.id IS NULL
)
SELECT "message_id", "type", "event", "user_id", "anonymous_id", "profile_id", "timestamp", "received_at", "source", "group_id", "previous_id", "properties", "traits", "context", type AS event_type FROM clean_events
) q
) TO 's3://cairn-pool-clean/tenants/ten_a/events/dt=2026-11-26/hh=10/vversion/' WITH (format = 'PARQUET', compression = 'ZSTD', partitioned_by = ARRAY['event_type'])
