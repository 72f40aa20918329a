SELECT e.profile_id, m.root AS canonical_profile_id, e.message_id AS triggering_event_id, e."timestamp", e.traits
FROM events e LEFT JOIN members m ON m.member_id = e.profile_id
WHERE e.type = 'identify' AND e.traits IS NOT NULL AND CAST(e.traits AS varchar) <> '{}'
