-- +goose Up

-- lake_partitions are the refinery's watermarks (package lake): for each
-- raw partition of a tenant refined into the clean zone, what the raw
-- partition held when it was (its objects' fingerprint), and the erased-ID
-- filter it was refined under. The row with partition '' is the curated
-- zone's last rebuild.
CREATE TABLE lake_partitions (
    tenant_id TEXT NOT NULL,
    -- partition is YYYY-MM-DDTHH, or '' for the curated zone.
    partition TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    raw_objects BIGINT NOT NULL,
    raw_bytes BIGINT NOT NULL,
    -- erased_seq is the highest lake_erased.seq of the filter applied.
    erased_seq BIGINT NOT NULL,
    refined_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, partition)
);

-- lake_tables is what each table of a tenant's clean and curated zones
-- holds, per partition ('' for a curated table): the status reads it.
CREATE TABLE lake_tables (
    tenant_id TEXT NOT NULL,
    table_name TEXT NOT NULL,
    partition TEXT NOT NULL,
    rows BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, table_name, partition)
);

-- lake_erased is each tenant's erased-ID filter: the message and profile
-- IDs of erased profiles, which every refinery run leaves out of the
-- zones, whatever the raw zone still holds.
CREATE TABLE lake_erased (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    erasure_id TEXT NOT NULL,
    UNIQUE (tenant_id, id)
);

-- +goose Down
DROP TABLE lake_erased;
DROP TABLE lake_tables;
DROP TABLE lake_partitions;
