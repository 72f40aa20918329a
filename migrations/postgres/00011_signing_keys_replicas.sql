-- +goose Up

-- signing_keys holds the Ed25519 keys that sign Cairn's tokens (package
-- signingkeys), so that every replica signs and verifies with the same
-- ones. The private half is sealed under the operator's key-encryption key
-- with the kid as associated data; the public half verifies as is.
CREATE TABLE signing_keys (
    -- kid is the RFC 7638 thumbprint of public_key.
    kid text PRIMARY KEY,
    public_key bytea NOT NULL CHECK (length(public_key) = 32),
    sealed_private_key text NOT NULL CHECK (sealed_private_key LIKE 'sealed.%'),
    created_at timestamptz NOT NULL,
    -- superseded_at is when a rotation replaced the key; NULL for the one
    -- current key, which signs.
    superseded_at timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((superseded_at IS NULL)) WHERE superseded_at IS NULL;

-- replicas holds the lease of each live server replica (package
-- replicas): the local engine is single-node, and a replica starts only
-- when no live lease forbids it.
CREATE TABLE replicas (
    id text PRIMARY KEY,
    engine text NOT NULL CHECK (engine IN ('local', 'aws')),
    host text NOT NULL,
    data_dir text NOT NULL,
    started_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- wrapped_key_encryption_keys holds, per AWS KMS key, the data key that
-- serves as the key-encryption key when the operator names a KMS key
-- (package kmskek), encrypted by KMS: replicas share it through the
-- database and only KMS can open it.
CREATE TABLE wrapped_key_encryption_keys (
    kms_key_arn text PRIMARY KEY,
    wrapped bytea NOT NULL,
    created_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE wrapped_key_encryption_keys;
DROP TABLE replicas;
DROP TABLE signing_keys;
