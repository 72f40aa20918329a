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
  coalesce(make_timestamp(epoch_us(TRY_CAST(r.ts AS TIMESTAMPTZ))), r.received_at - (make_timestamp(epoch_us(TRY_CAST(r.sent_at AS TIMESTAMPTZ))) - make_timestamp(epoch_us(TRY_CAST(r.original_ts AS TIMESTAMPTZ)))), make_timestamp(epoch_us(TRY_CAST(r.original_ts AS TIMESTAMPTZ))), r.received_at) AS "timestamp",
  r.received_at,
  json_extract_string(r.context, '$.library.name') AS source,
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
