-- name: FleetEventInsert :exec
-- An ID the outbox holds is left as it is: a retried change announces once.
INSERT INTO fleet_events (id, type, data, at)
VALUES (@id, @type, @data, @at)
ON CONFLICT (id) DO NOTHING;

-- name: FleetEventList :many
SELECT * FROM fleet_events ORDER BY seq LIMIT @max_rows;

-- name: FleetEventDelete :exec
DELETE FROM fleet_events WHERE id IN (sqlc.slice('ids'));
