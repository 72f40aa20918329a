-- +goose Up

-- allowed_origins lists the browser origins a source's events may come
-- from, as a JSON array of strings; an empty array allows any origin.
ALTER TABLE sources ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]'
    CHECK (json_valid(allowed_origins) AND json_type(allowed_origins) = 'array');

-- +goose Down
ALTER TABLE sources DROP COLUMN allowed_origins;
