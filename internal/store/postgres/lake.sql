-- name: LakePartitions :many
SELECT partition, fingerprint, raw_objects, raw_bytes, erased_seq, refined_at FROM lake_partitions
WHERE tenant_id = @tenant_id ORDER BY partition;

-- name: LakePartitionPut :exec
INSERT INTO lake_partitions (tenant_id, partition, fingerprint, raw_objects, raw_bytes, erased_seq, refined_at)
VALUES (@tenant_id, @partition, @fingerprint, @raw_objects, @raw_bytes, @erased_seq, @refined_at)
ON CONFLICT (tenant_id, partition) DO UPDATE SET fingerprint = excluded.fingerprint, raw_objects = excluded.raw_objects,
  raw_bytes = excluded.raw_bytes, erased_seq = excluded.erased_seq, refined_at = excluded.refined_at;

-- name: LakeTablePut :exec
INSERT INTO lake_tables (tenant_id, table_name, partition, rows, bytes)
VALUES (@tenant_id, @table_name, @partition, @rows, @bytes)
ON CONFLICT (tenant_id, table_name, partition) DO UPDATE SET rows = excluded.rows, bytes = excluded.bytes;

-- name: LakeTableDelete :exec
DELETE FROM lake_tables WHERE tenant_id = @tenant_id AND table_name = @table_name AND partition = @partition;

-- name: LakeTables :many
SELECT table_name, partition, rows, bytes FROM lake_tables WHERE tenant_id = @tenant_id ORDER BY table_name, partition;

-- name: LakeErasedAdd :exec
INSERT INTO lake_erased (tenant_id, id, erasure_id) VALUES (@tenant_id, @id, @erasure_id)
ON CONFLICT (tenant_id, id) DO NOTHING;

-- name: LakeErased :many
SELECT seq, id FROM lake_erased WHERE tenant_id = @tenant_id ORDER BY seq;
