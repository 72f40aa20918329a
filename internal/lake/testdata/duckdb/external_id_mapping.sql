SELECT m.root AS canonical_profile_id, i.member_id AS profile_id, i.type AS external_id_type,
  i.value AS external_id_value, i.first_seen AS "timestamp"
FROM identifiers i JOIN members m ON m.member_id = i.member_id
