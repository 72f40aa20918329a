-- +goose Up

-- signing_keys holds the Ed25519 keys that sign Cairn's tokens (package
-- signingkeys). The private half is sealed under the operator's
-- key-encryption key with the kid as associated data; the public half
-- verifies as is.
CREATE TABLE signing_keys (
    -- kid is the RFC 7638 thumbprint of public_key.
    kid TEXT PRIMARY KEY,
    public_key BLOB NOT NULL CHECK (length(public_key) = 32),
    sealed_private_key TEXT NOT NULL CHECK (sealed_private_key LIKE 'sealed.%'),
    -- Timestamps are TEXT in the layout of 00001_cairn.sql.
    created_at TEXT NOT NULL,
    -- superseded_at is when a rotation replaced the key; NULL for the one
    -- current key, which signs.
    superseded_at TEXT
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((superseded_at IS NULL)) WHERE superseded_at IS NULL;

-- replicas holds the lease of each live server replica (package
-- replicas). Two servers can open one SQLite file, so the local engine's
-- single-node rule is enforced here too.
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    engine TEXT NOT NULL CHECK (engine IN ('local', 'aws')),
    host TEXT NOT NULL,
    data_dir TEXT NOT NULL,
    started_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- wrapped_key_encryption_keys holds, per AWS KMS key, the data key that
-- serves as the key-encryption key when the operator names a KMS key
-- (package kmskek), encrypted by KMS: replicas share it through the
-- database and only KMS can open it.
CREATE TABLE wrapped_key_encryption_keys (
    kms_key_arn TEXT PRIMARY KEY,
    wrapped BLOB NOT NULL,
    created_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE wrapped_key_encryption_keys;
DROP TABLE replicas;
DROP TABLE signing_keys;
