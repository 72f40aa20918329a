SELECT member_id AS profile_id, type AS external_id_type, value AS external_id_value,
  event AS triggering_event_id, first_seen AS "timestamp"
FROM identifiers
