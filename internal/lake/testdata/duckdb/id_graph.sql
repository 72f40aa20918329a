SELECT member_id AS profile_id, root AS canonical_profile_id, updated_at AS "timestamp"
FROM members
