SELECT message_id, type, event, user_id, anonymous_id, profile_id, "timestamp", received_at, source,
  group_id, previous_id, properties, traits, context
FROM clean_events
WHERE type = 'alias'
