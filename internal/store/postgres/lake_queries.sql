-- name: LakeQueryInsert :one
INSERT INTO lake_queries (id, tenant_id, sql, state, created_at)
VALUES (@id, @tenant_id, @sql, @state, @created_at)
RETURNING seq;

-- name: LakeQueryGet :one
SELECT * FROM lake_queries WHERE tenant_id = @tenant_id AND id = @id;

-- name: LakeQueryList :many
SELECT * FROM lake_queries
WHERE tenant_id = @tenant_id AND (@before_seq::bigint = 0 OR seq < @before_seq::bigint)
ORDER BY seq DESC LIMIT @max_rows;

-- name: LakeQueryUpdate :execrows
UPDATE lake_queries SET state = @state, error = @error, rows = @rows, bytes_scanned = @bytes_scanned,
  elapsed_ms = @elapsed_ms, result = @result, result_bytes = @result_bytes, started_at = @started_at, finished_at = @finished_at
WHERE tenant_id = @tenant_id AND id = @id AND state = ANY(@from_states::text[]);

-- name: LakeQueryDeleteTenant :many
DELETE FROM lake_queries WHERE tenant_id = @tenant_id RETURNING result;
