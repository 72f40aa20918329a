-- +goose Up

-- tags is a grant's LF-tag expression (grants.Resource.Tags): an object of
-- tag keys, each with the list of values it selects; {} for a grant on
-- named resources.
ALTER TABLE grants ADD COLUMN tags TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(tags) AND json_type(tags) = 'object');

-- +goose Down
ALTER TABLE grants DROP COLUMN tags;
