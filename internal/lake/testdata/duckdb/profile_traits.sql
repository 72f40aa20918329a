WITH latest AS (
  SELECT m.root, t.name, t.value, t.set_at,
    row_number() OVER (PARTITION BY m.root, t.name ORDER BY t.set_at DESC, t.member_id) AS n
  FROM member_traits t JOIN members m ON m.member_id = t.member_id
)
SELECT root AS canonical_profile_id, CAST(json_group_object(name, CAST(value AS JSON)) AS JSON) AS traits, max(set_at) AS "timestamp"
FROM latest
WHERE n = 1
GROUP BY root
