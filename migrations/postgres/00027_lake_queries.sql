-- +goose Up

-- lake_queries are tenants' SQL queries over their clean and curated
-- tables (package lake, QueryService): queued when accepted, run by a
-- lake_query job, their result a file under the server's data directory.
CREATE TABLE lake_queries (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL,
    sql TEXT NOT NULL,
    -- state is queued, running, succeeded, failed or cancelled.
    state TEXT NOT NULL,
    -- error says why a failed query failed, for its author.
    error TEXT NOT NULL DEFAULT '',
    rows BIGINT NOT NULL DEFAULT 0,
    bytes_scanned BIGINT NOT NULL DEFAULT 0,
    elapsed_ms BIGINT NOT NULL DEFAULT 0,
    -- result is the result file, relative to the results directory.
    result TEXT NOT NULL DEFAULT '',
    result_bytes BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);

CREATE INDEX lake_queries_tenant ON lake_queries (tenant_id, seq);

-- +goose Down
DROP TABLE lake_queries;
