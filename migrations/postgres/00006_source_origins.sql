-- +goose Up

-- allowed_origins lists the browser origins a source's events may come
-- from; an empty array allows any origin.
ALTER TABLE sources ADD COLUMN allowed_origins text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE sources DROP COLUMN allowed_origins;
