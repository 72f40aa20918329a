-- The audit log (package audit): one query writes, one pages.

-- name: AuditInsert :exec
-- An empty @tenant_id is stored as NULL: the event is about no tenant.
INSERT INTO audit_events (id, time, tenant_id, actor, action, target_type, target_id, request_id, outcome, detail)
VALUES (@id, @time, NULLIF(CAST(@tenant_id AS TEXT), ''), @actor, @action, @target_type, @target_id, @request_id, @outcome, @detail);

-- name: AuditList :many
-- An empty filter or bound matches every event; @from_time is inclusive,
-- @to_time exclusive. Times compare as text (see the migrations).
SELECT * FROM audit_events
WHERE seq > @after_seq
    AND (CAST(@tenant_id AS TEXT) = '' OR tenant_id = @tenant_id)
    AND (CAST(@actor AS TEXT) = '' OR actor = @actor)
    AND (CAST(@action AS TEXT) = '' OR action = @action)
    AND (CAST(@from_time AS TEXT) = '' OR time >= @from_time)
    AND (CAST(@to_time AS TEXT) = '' OR time < @to_time)
ORDER BY seq
LIMIT @max_rows;
