SELECT profile_id, segment_id, entered_at
FROM memberships
