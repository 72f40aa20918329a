-- name: SigningKeyList :many
SELECT * FROM signing_keys ORDER BY created_at DESC, kid;

-- name: SigningKeyInsert :execrows
-- A second current key, or a kid held, inserts nothing.
INSERT INTO signing_keys (kid, public_key, sealed_private_key, created_at, superseded_at)
VALUES (@kid, @public_key, @sealed_private_key, @created_at, @superseded_at)
ON CONFLICT DO NOTHING;

-- name: SigningKeySupersede :exec
UPDATE signing_keys SET superseded_at = @at WHERE superseded_at IS NULL;

-- name: SigningKeyForget :exec
DELETE FROM signing_keys WHERE superseded_at < @before;

-- name: ReplicaForgetLapsed :exec
DELETE FROM replicas WHERE expires_at <= @now;

-- name: ReplicaList :many
SELECT * FROM replicas ORDER BY started_at, id;

-- name: ReplicaUpsert :exec
INSERT INTO replicas (id, engine, host, data_dir, started_at, expires_at)
VALUES (@id, @engine, @host, @data_dir, @started_at, @expires_at)
ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at;

-- name: ReplicaRenew :execrows
UPDATE replicas SET expires_at = @expires_at WHERE id = @id;

-- name: ReplicaDelete :exec
DELETE FROM replicas WHERE id = @id;

-- name: ReplicaCountLive :one
SELECT count(*) FROM replicas WHERE expires_at > @now;

-- name: WrappedKeyGet :one
SELECT wrapped FROM wrapped_key_encryption_keys WHERE kms_key_arn = @kms_key_arn;

-- name: WrappedKeyInsert :exec
-- The first replica's data key stays; the others read it back.
INSERT INTO wrapped_key_encryption_keys (kms_key_arn, wrapped, created_at)
VALUES (@kms_key_arn, @wrapped, @created_at)
ON CONFLICT (kms_key_arn) DO NOTHING;
