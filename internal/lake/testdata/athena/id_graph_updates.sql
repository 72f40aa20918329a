SELECT member_id AS profile_id, member_id AS canonical_profile_id, event AS triggering_event_id, created_at AS "timestamp"
FROM members
UNION ALL
SELECT member_id AS profile_id, root AS canonical_profile_id, event AS triggering_event_id, merged_at AS "timestamp"
FROM merges
