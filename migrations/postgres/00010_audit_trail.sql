-- +goose Up

-- The audit trail records every change made through the API, not only the
-- grants broker's: each event names its target by type and ID (resource
-- was the ID alone; the events before this version are about the broker's
-- grants and principals) and the request that caused it.
ALTER TABLE audit_events RENAME COLUMN resource TO target_id;
ALTER TABLE audit_events ADD COLUMN target_type text NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN request_id text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE audit_events DROP COLUMN request_id;
ALTER TABLE audit_events DROP COLUMN target_type;
ALTER TABLE audit_events RENAME COLUMN target_id TO resource;
