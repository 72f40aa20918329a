-- The audit log (package audit): one query writes, one pages.

-- name: AuditInsert :exec
-- An empty @tenant_id is stored as NULL: the event is about no tenant.
INSERT INTO audit_events (id, time, tenant_id, actor, action, target_type, target_id, request_id, outcome, detail)
VALUES (@id, @time, NULLIF(@tenant_id::text, ''), @actor, @action, @target_type, @target_id, @request_id, @outcome, @detail);

-- name: AuditList :many
-- An empty filter or a NULL bound matches every event; @from_time is
-- inclusive, @to_time exclusive.
SELECT * FROM audit_events
WHERE seq > @after_seq
    AND (@tenant_id::text = '' OR tenant_id = @tenant_id::text)
    AND (@actor::text = '' OR actor = @actor::text)
    AND (@action::text = '' OR action = @action::text)
    AND (sqlc.narg(from_time)::timestamptz IS NULL OR time >= sqlc.narg(from_time)::timestamptz)
    AND (sqlc.narg(to_time)::timestamptz IS NULL OR time < sqlc.narg(to_time)::timestamptz)
ORDER BY seq
LIMIT @max_rows::bigint;
